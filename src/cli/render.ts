// One interface for everything the CLI prints: commands compute data, a renderer (human, JSON or quiet) shows it.
import { formatRanges } from '../util/ranges.js';
import { formatDuration } from './durations.js';
import { CliError, EXIT } from './errors.js';
import type { StopReason } from './feed.js';

/** The live state of a run. */
export interface ProgressInfo {
  done: number;
  failed: number;
  total: number;
  elapsedMs: number;
  /** Tasks per second over the last stretch. */
  rate: number;
  etaMs: number | null;
  nodesAlive: number;
  nodes: number;
  workers: number;
  stopping: string | null;
}

/** Where a task is, for people: its line in the input file, its number (a template's {#}), or its 0-based index. */
export interface Place {
  unit: 'line' | 'task' | 'index';
  n: number;
}

/** A task's final failure, shown when it happens. */
export interface FailureLine {
  index: number;
  unit: Place['unit'];
  at: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  node: string;
  attempts: number;
  /** The last line of its stderr ('' when none). */
  stderr: string;
  message: string;
}

export interface NodeSummary {
  node: string;
  workers: number;
  tasks: number;
  /** Share of the run's wall time its workers were busy. */
  busy: number;
  alive: boolean;
  /** It left the pool cleanly (its allocation ended). */
  left?: boolean;
}

/** The outcome of a run or map. */
export interface Summary {
  command: 'run' | 'map';
  total: number;
  /** Tasks that succeeded in this run. */
  succeeded: number;
  failed: number;
  /** Tasks that needed more than one attempt. */
  retried: number;
  /** Tasks stopped or not started by --halt, recorded as cancelled (--resume runs them). */
  cancelled: number;
  /** Tasks skipped because an earlier run recorded them (--resume). */
  resumed: number;
  /** Tasks not run (stopped early). */
  notRun: number;
  /** Where the failed tasks are: 1-based lines of the task file (or input), template task numbers, or indices. */
  failedAt: { unit: Place['unit']; list: number[] };
  /** The first failures, with their error text. */
  failures: { at: string; message: string }[];
  mode: string;
  workers: number;
  nodes: NodeSummary[];
  wallMs: number;
  startupMs: number;
  /** Share of workers × wall time spent in tasks. */
  busy: number;
  output: string | null;
  stopped: StopReason | null;
  /** The command line that continues this run. */
  resumeCommand: string | null;
  /** Jobs submitted to grow the pool (--grow), in order. */
  grownJobs: string[];
  exitCode: number;
}

/** What `slurmpool env` reports. */
export interface EnvReport {
  mode: string;
  why: string;
  allocation: {
    jobId: string;
    nodes: string[];
    nodelist: string;
    cpusPerNode: number[];
    tasksPerNode: number[] | null;
    cpusPerTask: number | null;
    ntasks: number | null;
    nodeName: string | null;
    endTime: string | null;
    timeLeftSeconds: number | null;
    endSource: string | null;
    sources: Record<string, string>;
  } | null;
  allocationError: string | null;
  here: { hostname: string; cpus: number; cpusAllowed: string; workers: number };
  /** The GPUs an agent here would find; with --gpus-per-task, each worker slot's GPU variables. */
  gpus: { ids: string[]; source: string; what: string; perTask: number; slots: Record<string, string>[] };
  variables: Record<string, string>;
  threads: Record<string, string | null>;
  tools: Record<string, string | null>;
}

/** What `slurmpool demo` measured. */
export interface DemoReport {
  limit: number;
  primes: number;
  mode: string;
  nodes: number;
  workers: number;
  seconds: number;
  oneWorkerSeconds: number;
  speedup: number;
}

export interface Renderer {
  readonly kind: 'human' | 'json' | 'quiet';
  /** Something the user should know (resume notes, stopping). */
  note(text: string): void;
  warn(text: string): void;
  error(e: unknown): number;
  progress(p: ProgressInfo, live: boolean): void;
  /** Clear a live progress line before other output. */
  clearLive(): void;
  /** A task failed for good (after its retries): one line, at once. */
  failure(f: FailureLine): void;
  summary(s: Summary, toStdout: boolean): void;
  env(r: EnvReport): void;
  demo(d: DemoReport): void;
}

/** "3,7,100-102", at most `max` entries then "…". */
export function compressIndices(xs: readonly number[], max = 40): string {
  return formatRanges(xs, max);
}

function pct(x: number): string {
  return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`;
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

/** "line 3 failed: exit 7 on n1 after 2 attempts: last stderr line"; "line 4 failed on n1: bad item 3" (map). */
export function failureText(f: FailureLine): string {
  const tries = f.attempts > 1 ? ` after ${f.attempts} attempts` : '';
  const how = f.timedOut ? 'timed out' : f.signal ? `killed by ${f.signal}` : f.exitCode !== null ? `exit ${f.exitCode}` : null;
  if (how === null) return `${f.unit} ${f.at} failed on ${f.node}${tries}: ${f.message}`;
  return `${f.unit} ${f.at} failed: ${how} on ${f.node}${tries}${f.stderr ? `: ${f.stderr}` : ''}`;
}

/** "lines 3,7,100-102: " and the first failures with their error text. */
function failedLines(s: Summary, max: number): string[] {
  const unit = s.failedAt.unit;
  const out = [`  failed ${unit === 'index' ? 'indices' : `${unit}s`}: ${compressIndices(s.failedAt.list, max)}`];
  for (const f of s.failures.slice(0, 10)) out.push(`    ${f.at}: ${f.message}`);
  if (s.failures.length > 10 || s.failed > s.failures.length) out.push(`    … ${num(s.failed - Math.min(10, s.failures.length))} more in the results${s.output ? ` (${s.output})` : ''}`);
  return out;
}

function progressText(p: ProgressInfo): string {
  const pctDone = p.total > 0 ? ` (${pct(p.done / p.total)})` : '';
  const eta = p.etaMs === null ? '' : `, ETA ${formatDuration(p.etaMs)}`;
  const failed = p.failed > 0 ? `, ${num(p.failed)} failed` : '';
  const stopping = p.stopping ? ` — stopping: ${p.stopping}` : '';
  return `${num(p.done)}/${num(p.total)} done${pctDone}, ${p.rate.toFixed(p.rate < 10 ? 1 : 0)}/s${eta}; ${p.nodesAlive}/${p.nodes} node${p.nodes === 1 ? '' : 's'}, ${p.workers} workers${failed}, ${formatDuration(p.elapsedMs)}${stopping}`;
}

/** Text for people, on stderr; a live progress line on a terminal. */
export class HumanRenderer implements Renderer {
  readonly kind: 'human' | 'quiet' = 'human';
  private live = false;

  constructor(
    protected readonly err: NodeJS.WriteStream = process.stderr,
    protected readonly out: NodeJS.WriteStream = process.stdout,
  ) {}

  protected line(text: string): void {
    this.clearLive();
    this.err.write(`${text}\n`);
  }

  note(text: string): void {
    this.line(`slurmpool: ${text}`);
  }

  warn(text: string): void {
    this.line(`slurmpool: warning: ${text}`);
  }

  error(e: unknown): number {
    if (e instanceof CliError) {
      this.line(`slurmpool: error: ${e.message}`);
      if (e.hint) this.line(`  ${e.hint}`);
      return e.exitCode;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    this.line(`slurmpool: error: ${err.message}`);
    return EXIT.launch;
  }

  progress(p: ProgressInfo, live: boolean): void {
    const text = `slurmpool: ${progressText(p)}`;
    if (live) {
      const width = this.err.columns || 120;
      this.err.write(`\r\x1b[2K${text.slice(0, Math.max(20, width - 1))}`);
      this.live = true;
    } else this.line(text);
  }

  failure(f: FailureLine): void {
    this.line(`slurmpool: ${failureText(f)}`);
  }

  clearLive(): void {
    if (!this.live) return;
    this.err.write('\r\x1b[2K');
    this.live = false;
  }

  summary(s: Summary, _toStdout: boolean): void {
    const lines: string[] = [];
    const rate = s.wallMs > 0 ? ((s.succeeded + s.failed) / (s.wallMs / 1000)).toFixed(1) : '0';
    const parts = [`${num(s.succeeded)} succeeded`];
    if (s.failed) parts.push(`${num(s.failed)} failed`);
    if (s.retried) parts.push(`${num(s.retried)} retried`);
    if (s.cancelled) parts.push(`${num(s.cancelled)} cancelled`);
    if (s.resumed) parts.push(`${num(s.resumed)} done before (resumed)`);
    if (s.notRun) parts.push(`${num(s.notRun)} not run`);
    const where = s.workers > 0 ? `; ${formatDuration(s.wallMs)} (${rate} tasks/s) on ${s.workers} workers, ${s.mode} mode` : '';
    lines.push(`slurmpool: ${num(s.total)} tasks: ${parts.join(', ')}${where}`);
    if (s.nodes.length > 0) {
      const w = Math.max(4, ...s.nodes.map((n) => n.node.length));
      lines.push(`  ${'node'.padEnd(w)}  workers    tasks  busy`);
      for (const n of s.nodes) {
        lines.push(`  ${n.node.padEnd(w)}  ${String(n.workers).padStart(7)}  ${String(num(n.tasks)).padStart(7)}  ${pct(n.busy).padStart(4)}${n.alive ? '' : n.left ? '  (left)' : '  (lost)'}`);
      }
    }
    if (s.grownJobs.length > 0) lines.push(`  grown by ${s.grownJobs.length} job${s.grownJobs.length === 1 ? '' : 's'} (sbatch): ${s.grownJobs.join(', ')}`);
    if (s.workers > 0) lines.push(`  startup ${formatDuration(s.startupMs)}; workers busy ${pct(s.busy)} of the time (overhead and idle ${pct(1 - s.busy)})${s.output ? `; results in ${s.output}` : ''}`);
    if (s.failed > 0) lines.push(...failedLines(s, 40));
    if (s.stopped) lines.push(`  stopped early (${s.stopped.kind}): ${s.stopped.message}`);
    if (s.resumeCommand && (s.failed > 0 || s.stopped)) lines.push(`  ${s.stopped ? 'to continue' : 'to run the failed tasks again'}: ${s.resumeCommand}`);
    else if (!s.output && (s.failed > 0 || s.stopped)) lines.push(`  add --output FILE to keep a results file that --resume can continue from`);
    this.line(lines.join('\n'));
  }

  env(r: EnvReport): void {
    const L: string[] = [];
    L.push(`mode: ${r.mode} — ${r.why}`);
    if (r.allocationError) L.push(`allocation: cannot be read: ${r.allocationError}`);
    else if (r.allocation) {
      const a = r.allocation;
      L.push(`allocation: job ${a.jobId}, ${a.nodes.length} node${a.nodes.length === 1 ? '' : 's'} (${a.nodelist})`);
      L.push(`  CPUs per node: ${a.cpusPerNode.join(',')}${a.tasksPerNode ? `; tasks per node: ${a.tasksPerNode.join(',')}` : ''}${a.ntasks ? `; tasks: ${a.ntasks}` : ''}${a.cpusPerTask ? `; CPUs per task: ${a.cpusPerTask}` : ''}`);
      L.push(`  this node: ${a.nodeName ?? '(not in a step on a node: salloc shell?)'}`);
      L.push(`  time left: ${a.timeLeftSeconds === null ? 'unknown' : `${formatDuration(a.timeLeftSeconds * 1000)} (ends ${a.endTime}, from ${a.endSource})`}`);
      L.push(`  read from: ${Object.entries(a.sources).map(([k, v]) => `${k}←${v}`).join(', ')}`);
    } else L.push('allocation: none (no SLURM_JOB_ID)');
    L.push(`here: ${r.here.hostname}, ${r.here.cpus} CPUs usable (allowed: ${r.here.cpusAllowed}), ${r.here.workers} workers by default`);
    L.push(`GPUs: ${r.gpus.what}`);
    if (r.gpus.perTask > 0) {
      if (r.gpus.slots.length === 0) L.push(`  --gpus-per-task ${r.gpus.perTask}: no slot; a run here would fail (fewer GPUs than each task asks for)`);
      else L.push(`  --gpus-per-task ${r.gpus.perTask}: ${r.gpus.slots.length} slot${r.gpus.slots.length === 1 ? '' : 's'}: ${r.gpus.slots.map((s, i) => `[${i}] ${Object.entries(s).filter(([k]) => k !== 'SLURMPOOL_TASK_GPUS').map(([k, v]) => `${k}=${v}`).join(' ')}`).join('; ')}`);
    }
    const threads = Object.entries(r.threads).map(([k, v]) => `${k}=${v ?? '(unset)'}`);
    L.push(`thread variables: ${threads.join(' ')}`);
    L.push(`tools: ${Object.entries(r.tools).map(([k, v]) => `${k}=${v ?? '(not found)'}`).join(' ')}`);
    const vars = Object.entries(r.variables);
    if (vars.length) {
      L.push('variables:');
      for (const [k, v] of vars) L.push(`  ${k}=${v}`);
    }
    this.out.write(`${L.join('\n')}\n`);
  }

  demo(d: DemoReport): void {
    this.out.write(
      [
        `${num(d.primes)} primes below ${num(d.limit)}`,
        `  ${d.mode} mode, ${d.nodes} node${d.nodes === 1 ? '' : 's'}, ${d.workers} worker${d.workers === 1 ? '' : 's'}: ${d.seconds.toFixed(2)} s`,
        `  one worker: ${d.oneWorkerSeconds.toFixed(2)} s — speedup ${d.speedup.toFixed(2)}×`,
      ].join('\n') + '\n',
    );
  }
}

/** Only errors, and a one-line account of failures or an early stop. */
export class QuietRenderer extends HumanRenderer {
  override readonly kind = 'quiet' as const;
  override note(): void {}
  override warn(): void {}
  override progress(): void {}
  override summary(s: Summary): void {
    if (s.failed > 0) this.line(`slurmpool: ${num(s.failed)} of ${num(s.total)} tasks failed, ${s.failedAt.unit === 'index' ? 'indices' : `${s.failedAt.unit}s`} ${compressIndices(s.failedAt.list)}`);
    if (s.stopped) this.line(`slurmpool: stopped early (${s.stopped.kind}): ${num(s.notRun)} tasks not run${s.resumeCommand ? `; to continue: ${s.resumeCommand}` : ''}`);
  }
}

/** JSON: events on stderr, one object a line; the summary, env and demo reports as one object. */
export class JsonRenderer implements Renderer {
  readonly kind = 'json' as const;
  constructor(
    private readonly err: NodeJS.WriteStream = process.stderr,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {}
  private event(o: Record<string, unknown>): void {
    this.err.write(`${JSON.stringify(o)}\n`);
  }
  note(text: string): void {
    this.event({ event: 'note', message: text });
  }
  warn(text: string): void {
    this.event({ event: 'warning', message: text });
  }
  error(e: unknown): number {
    const code = e instanceof CliError ? e.exitCode : EXIT.launch;
    const message = e instanceof Error ? e.message : String(e);
    this.event({ event: 'error', exitCode: code, message, ...(e instanceof CliError && e.hint ? { hint: e.hint } : {}) });
    return code;
  }
  progress(p: ProgressInfo): void {
    this.event({ event: 'progress', ...p });
  }
  clearLive(): void {}
  failure(f: FailureLine): void {
    const { unit, at, ...rest } = f;
    this.event({ event: 'failed', [unit]: at, ...rest });
  }
  summary(s: Summary, toStdout: boolean): void {
    const line = `${JSON.stringify({ event: 'summary', ...s })}\n`;
    (toStdout ? this.out : this.err).write(line);
  }
  env(r: EnvReport): void {
    this.out.write(`${JSON.stringify(r)}\n`);
  }
  demo(d: DemoReport): void {
    this.out.write(`${JSON.stringify(d)}\n`);
  }
}

/** The renderer for --json / --quiet / neither. */
export function makeRenderer(opts: { json?: boolean; quiet?: boolean }): Renderer {
  if (opts.json) return new JsonRenderer();
  if (opts.quiet) return new QuietRenderer();
  return new HumanRenderer();
}
