// What run and map share: results file and resume, signals and grace, the time limit, progress and the summary.
import { existsSync, statSync } from 'node:fs';
import { Pool } from '../pool.js';
import { OptionError, SlurmpoolError } from '../errors.js';
import type { TaskRecord } from '../ordering.js';
import type { CommandResult } from '../agent/shell.js';
import { JournalMismatch, prepareResume, readJournal, ResumeWriteError, type SavedRecord } from '../results/journal.js';
import { toJsonLine } from '../results/record.js';
import { headerLine, kindMismatch, workMismatch, type MapWork, type RunWork } from '../results/header.js';
import { LockHeld, RunLock, STALE_MS } from '../results/lock.js';
import { makeLogDir } from '../results/logdir.js';
import { ResultsFile, StdoutRecords, unwritable, type RecordOut } from '../results/writer.js';
import { ReportBuilder, writeModel, writeReport, type RunMeta } from '../report/index.js';
import { formatDuration } from './durations.js';
import { CliError, EXIT } from './errors.js';
import { Feed, type StopReason } from './feed.js';
import { describeHalt, haltExitCode, haltReached } from './halt.js';
import { checkNodeCounts, poolOptions, type Common } from './options.js';
import type { FailureLine, NodeSummary, Place, ProgressInfo, Renderer, Summary } from './render.js';
import { END_MARGIN_MS, findEndTime, TimeGate } from './timeleft.js';

/** One CLI run's tasks and how their records look. */
export interface Plan {
  command: 'run' | 'map';
  kind: 'shell' | 'call';
  /** The export to call (map). */
  fn: string;
  /** The task module's path (map). */
  module?: string;
  star?: boolean;
  total: number;
  /** What the pool gets for task `index`. */
  item(index: number): unknown;
  /** The record written for task `index`. */
  record(index: number, r: TaskRecord): Record<string, unknown>;
  /** Does a saved record still describe this input? (resume) Returns why not. */
  check?(saved: SavedRecord): string | null;
  /** Without a results file: show a finished task's output (run, human mode). */
  show?(index: number, r: TaskRecord): void;
  /** Where task `index` is, for people: its line in the input, its number (templates), or its index. Default: the index. */
  place?(index: number): Place;
  /** Records go to standard output when there is no results file. */
  recordsToStdout: boolean;
  /** What defines the work, for the results file's header and --resume's check of it. */
  work: RunWork | MapWork;
  /** Tasks carry their own CPU and GPU requests (task file lines): packed per node, chunks of one, unpinned. */
  taskResources?: boolean;
  /** With taskResources: the first task that fits on none of these nodes, in words (checked before any task runs). */
  misfit?(nodes: { node: string; cpus: number; gpus: number }[]): string | null;
}

/** The longest delay a Node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Signals that stop a run gracefully: Slurm's walltime/scancel (TERM) and the --signal warnings (USR1/USR2). */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP'];

/** Quote an argument for a shell command line shown to the user. */
export function shellQuote(a: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** This invocation with --resume, to print as the way to continue. */
function resumeCommand(argv: readonly string[]): string {
  const args = argv.filter((a) => a !== '--overwrite' && a !== '--no-resume');
  // With a template, right after the subcommand: the words after its command (its ::: arguments) are not options.
  const template = args.some((a) => /^::::?\+?$/.test(a));
  if (!args.includes('--resume')) args.splice(template ? args.findIndex((a) => !a.startsWith('-')) + 1 : args.length, 0, '--resume');
  return ['slurmpool', ...args.map(shellQuote)].join(' ');
}

interface Counters {
  succeeded: number;
  failed: number;
  retried: number;
  interrupted: number;
  /** Tasks a --halt stopped (recorded as cancelled). */
  cancelled: number;
  received: number;
  /** Where each failed task is (line or task number), for the summary, and in what unit. */
  failedAt: number[];
  failedUnit: Place['unit'];
  /** The first failures with their error text, for the summary. */
  failures: { n: number; at: string; message: string }[];
}

/** Failures listed with their error text in the summary; the rest only by line. */
const SUMMARY_FAILURES = 20;

/** The last non-empty line of a command's stderr, cut to a line's width. */
function lastLine(s: unknown): string {
  if (typeof s !== 'string') return '';
  const l = s.trimEnd().split('\n').pop() ?? '';
  return l.length > 300 ? `${l.slice(0, 300)}…` : l;
}

/** One failure as it is shown when it happens, from the record written for it. */
function failureLine(index: number, place: Place, rec: Record<string, unknown>): FailureLine {
  const err = (rec.error ?? {}) as { message?: unknown; kind?: unknown };
  return {
    index,
    unit: place.unit,
    at: place.n,
    exitCode: typeof rec.exitCode === 'number' ? rec.exitCode : null,
    signal: typeof rec.signal === 'string' ? rec.signal : null,
    timedOut: rec.timedOut === true || err.kind === 'timeout',
    node: typeof rec.node === 'string' ? rec.node : '?',
    attempts: typeof rec.attempts === 'number' ? rec.attempts : 1,
    stderr: lastLine(rec.stderr),
    message: typeof err.message === 'string' ? err.message : 'unknown failure',
  };
}

/** Run a plan to the end (or to a stop) and return the exit status. */
export async function execute(plan: Plan, c: Common, r: Renderer, argv: readonly string[]): Promise<number> {
  const t0 = Date.now();
  checkNodeCounts(c, process.env);
  if (c.report) {
    const why = unwritable(c.report);
    if (why) throw new CliError(`cannot write the report to ${c.report}: ${why}`);
  }
  // 0. One run per results file, for the whole run (resume's rewrite included).
  let lock: RunLock | null = null;
  if (c.output) {
    const why = unwritable(c.output);
    if (why) throw new CliError(`cannot write results to ${c.output}: ${why}`);
    try {
      lock = RunLock.acquire(c.output, { log: (l) => r.warn(l), command: ['slurmpool', ...argv].map(shellQuote).join(' ') });
    } catch (e) {
      if (e instanceof LockHeld) {
        throw new CliError(e.message, EXIT.usage, `wait for that run to end; a lock whose run died is taken over by itself (same host: at once; another host: after ${STALE_MS / 1000} s without a refresh)`);
      }
      throw new CliError(`cannot lock ${c.output}: ${(e as Error).message}`);
    }
  }
  try {
    return await executeLocked(plan, c, r, argv, t0, lock);
  } finally {
    lock?.release();
  }
}

async function executeLocked(plan: Plan, c: Common, r: Renderer, argv: readonly string[], t0: number, lock: RunLock | null): Promise<number> {
  // 1. The results file: checked, repaired and read back (resume) before any work starts.
  let done = new Set<number>();
  let out: RecordOut | null = null;
  const report = c.report && !c.output ? new ReportBuilder() : null;
  if (c.output) {
    if (c.resume) {
      try {
        const state = prepareResume(c.output, plan.check, {
          kind: (h, name) => kindMismatch(h.header, plan.command, name, h.line),
          work: (h, name) => workMismatch(h.header, { run: plan.command, work: plan.work }, name, h.line),
        });
        for (const n of state.notes) r.warn(n);
        done = state.done;
        if (done.size > 0 || state.failedBefore.length > 0) {
          r.note(`resuming ${c.output}: ${done.size} task(s) done before are skipped${state.failedBefore.length ? `, ${state.failedBefore.length} that failed run again` : ''}`);
        }
      } catch (e) {
        if (e instanceof JournalMismatch) throw new CliError(`cannot resume: ${e.message}`, EXIT.usage, 'write to a new --output file, or use --overwrite to start again');
        if (e instanceof ResumeWriteError) throw new CliError(e.message, EXIT.usage, 'free space on that disk (or move the results file to one with room) and run the same command again');
        throw e;
      }
    } else if (!c.overwrite && existsSync(c.output) && statSync(c.output).size > 0 && holdsSomething(c.output)) {
      const n = readJournal(c.output)?.records.size ?? 0;
      throw new CliError(`${c.output} already holds ${n} record${n === 1 ? '' : 's'}`, EXIT.usage, 'add --resume to continue that run (its finished tasks are skipped), or --overwrite to start again');
    }
    const file = new ResultsFile(c.output, !c.resume);
    file.onError = (e) => {
      stop({ kind: 'write-error', message: `cannot write to ${c.output} (${e.message}); the file keeps every record written before it, and the tasks not recorded run again with --resume` });
    };
    out = file;
    if (lock) lock.onLost = (why) => stop({ kind: 'lock-lost', message: `${why}; another run may be writing ${c.output}` });
  } else if (plan.recordsToStdout) {
    out = new StdoutRecords();
  }
  if (c.logDir) {
    try {
      makeLogDir(c.logDir);
    } catch (e) {
      throw new CliError(`cannot create --log-dir ${c.logDir}: ${(e as Error).message}`);
    }
    const why = unwritable(`${c.logDir}/x`);
    if (why) throw new CliError(`--log-dir ${c.logDir} cannot be written: ${why}`);
  }

  // Tasks handed to the pool and not yet recorded: what a --halt now stops is recorded as cancelled.
  const outstanding = new Set<number>();
  const feed = new Feed(plan.total, done, (i) => {
    outstanding.add(i);
    return plan.item(i);
  });
  const counters: Counters = { succeeded: 0, failed: 0, retried: 0, interrupted: 0, cancelled: 0, received: 0, failedAt: [], failedUnit: 'index', failures: [] };
  const place = (i: number): Place => plan.place?.(i) ?? { unit: 'index', n: i };
  const summaryToStdout = !(out instanceof StdoutRecords) && !(plan.show && !c.json);
  if (feed.pending === 0) {
    await out?.close();
    r.note(`every task is already recorded in ${c.output}; nothing to run`);
    r.summary(makeSummary(plan, c, feed, counters, [], 'none', 0, Date.now() - t0, 0, null, argv, EXIT.ok), summaryToStdout);
    return EXIT.ok;
  }

  // 2. Signals: stop handing out tasks, give the running ones the grace period, then stop them.
  let pool: Pool | null = null;
  let stopping: StopReason | null = null;
  let forced = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const force = () => {
    if (forced) return;
    forced = true;
    clearTimeout(graceTimer);
    if (pool) void pool.terminate();
  };
  const stop = (reason: StopReason) => {
    if (stopping) return;
    stopping = reason;
    feed.stop(reason);
    // Chunks that no worker has started are dropped (they run again on --resume); running ones finish.
    pool?.stopStarting();
    r.note(`${reason.message}; waiting up to ${formatDuration(c.graceMs)} for running tasks`);
    graceTimer = setTimeout(() => {
      r.note(`grace period over: stopping the tasks still running`);
      force();
    }, c.graceMs);
    graceTimer.unref();
  };
  // --halt: stop as GNU parallel does, once; a stop already under way (a signal, the time limit) wins.
  let halted: { lastExit: number | null } | null = null;
  const halt = (lastExit: number | null) => {
    if (stopping || !c.halt) return;
    halted = { lastExit };
    const reason: StopReason = { kind: 'halt', message: describeHalt(c.halt, counters) };
    stopping = reason;
    feed.stop(reason);
    // Chunks no worker has started come back cancelled; with `now` the running tasks are stopped too.
    pool?.stopStarting();
    r.note(reason.message);
    if (c.halt.when === 'now') force();
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping && (sig === 'SIGINT' || sig === 'SIGTERM')) {
      r.note(`${sig} again: stopping now`);
      force();
      return;
    }
    stop({ kind: sig, message: `${sig} received: not starting more tasks` });
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const unhook = () => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };

  let exitCode: number = EXIT.ok;
  const grownJobs: string[] = [];
  let startupMs = 0;
  let runStart = Date.now();
  let fatal: unknown = null;
  let nodes: NodeSummary[] = [];
  let ticker: NodeJS.Timeout | undefined;
  let endTimer: NodeJS.Timeout | undefined;
  try {
    // 3. Workers.
    const extraEnv: Record<string, string> = {};
    if (c.logDir) extraEnv.SLURMPOOL_LOG_DIR = c.logDir;
    if (c.inlineMax !== undefined) extraEnv.SLURMPOOL_INLINE_MAX = String(c.inlineMax);
    // Tasks with their own CPU counts are not pinned by worker slot (a slot's cores would not match them).
    if (c.cpusPerTask !== undefined && !plan.taskResources) extraEnv.SLURMPOOL_PIN_CPUS = String(c.cpusPerTask);
    const opts = poolOptions(c, extraEnv, r.kind === 'quiet' ? false : (line) => r.note(line));
    if (plan.module) opts.module = plan.module;
    if (plan.taskResources) opts.taskResources = true;
    // A node lost mid-run is said in the results file, so that the report can mark it (its bars stop there).
    if (out instanceof ResultsFile) {
      const file = out;
      opts.onNodeLost = (node, reason, at) => file.write(JSON.stringify({ slurmpool: { event: 'nodeLost', node, at, reason } }));
    }
    if (opts.grow) {
      // What the pool cannot know of a feed of unknown length: the tasks not recorded yet.
      opts.grow.backlog = () => Math.max(0, feed.pending - counters.received);
      const file = out instanceof ResultsFile ? out : null;
      opts.grow.onSubmit = (j) => {
        grownJobs.push(j.id);
        file?.write(JSON.stringify({ slurmpool: { event: 'grow', job: j.id, nodes: j.nodes, at: j.at } }));
      };
    }
    try {
      pool = await Pool.open(opts);
    } catch (e) {
      if (e instanceof OptionError) throw new CliError(e.message);
      throw new CliError(e instanceof Error ? e.message : String(e), EXIT.launch);
    }
    if (forced) void pool.terminate();
    const misfit = plan.misfit?.(pool.nodes);
    if (misfit) {
      await pool.terminate();
      throw new CliError(misfit);
    }
    runStart = Date.now();
    // The results file starts with the run's header (a resumed run appends its own, before its records).
    if (out instanceof ResultsFile) {
      out.write(
        headerLine({
          version: 1,
          run: plan.command,
          kind: plan.kind,
          command: ['slurmpool', ...argv].map(shellQuote).join(' '),
          mode: pool.mode,
          ...(process.env.SLURM_JOB_ID ? { jobId: process.env.SLURM_JOB_ID } : {}),
          ...(opts.grow ? { grow: { nodes: opts.grow.nodes, nodesPerJob: opts.grow.nodesPerJob ?? 1, ...(opts.grow.sbatch !== undefined ? { sbatch: opts.grow.sbatch } : {}) } } : {}),
          tasks: plan.total,
          ...(plan.command === 'map' ? { fn: plan.fn } : {}),
          started: runStart,
          work: plan.work,
        }),
      );
    }
    startupMs = runStart - t0;

    // 4. The time limit: learn task durations, start none that cannot finish, stop before the end.
    const end = await findEndTime(process.env, c.timeLeftMs);
    let gate: TimeGate | null = null;
    if (end) {
      // Short allocations (tests, debug partitions) get proportionally smaller margins.
      const horizon = Math.max(0, end.at - Date.now());
      gate = new TimeGate(end, Math.min(END_MARGIN_MS, Math.max(1000, horizon * 0.05)));
      const g = gate;
      const p = pool;
      feed.gate = () => g.check(feed.handedOut - counters.received, p.workers);
      const stopAt = end.at - c.graceMs - Math.min(5000, Math.max(500, horizon * 0.05));
      // A Node timer holds at most 2^31 − 1 ms (about 24.8 days); a longer one fires at once. Slurm
      // gives a job without a time limit an end a year away: such a stop is re-armed when it comes nearer.
      const arm = () => {
        const wait = Math.max(0, stopAt - Date.now());
        endTimer = setTimeout(
          () => (wait > MAX_TIMER_MS ? arm() : stop({ kind: 'time', message: `the allocation ends in ${formatDuration(end.at - Date.now())} (${end.source}): not starting more tasks` })),
          Math.min(wait, MAX_TIMER_MS),
        );
        endTimer.unref();
      };
      arm();
    }

    // 5. Progress.
    const tty = r.kind === 'human' && process.stderr.isTTY === true;
    const samples: [number, number][] = [[Date.now(), 0]];
    const info = (): ProgressInfo => {
      const now = Date.now();
      const d = counters.succeeded + counters.failed;
      samples.push([now, d]);
      while (samples.length > 2 && now - samples[0]![0] > 20_000) samples.shift();
      const [t, d0] = samples[0]!;
      const rate = now > t ? ((d - d0) * 1000) / (now - t) : 0;
      const total = feed.pending;
      const stats = pool?.stats() ?? [];
      return {
        done: d,
        failed: counters.failed,
        total,
        elapsedMs: now - runStart,
        rate,
        etaMs: rate > 0 ? ((total - d) / rate) * 1000 : null,
        nodesAlive: stats.filter((s) => s.alive).length,
        nodes: stats.length,
        workers: pool?.workers ?? 0,
        stopping: stopping ? (stopping as StopReason).kind : null,
      };
    };
    if (r.kind !== 'quiet') {
      ticker = setInterval(() => r.progress(info(), tty), tty ? 250 : c.progressEveryMs);
      ticker.unref();
    }

    // 6. The tasks.
    // Tasks with their own requests go one per chunk unless --chunksize says otherwise: a chunk holds its largest request.
    // --retries: failed tasks run again too (the pool's own retries cover only worker deaths).
    const chunksize = c.chunksize ?? (plan.taskResources ? 1 : undefined);
    const ro = { ...(chunksize !== undefined ? { chunksize } : {}), ...(c.timeoutMs > 0 ? { timeout: c.timeoutMs } : {}), ...(c.retries ? { retryFailed: c.retries } : {}) };
    const iter = plan.kind === 'shell' ? pool.runCommands(feed, ro) : pool.imapRecords(plan.fn, feed, { ...ro, star: plan.star === true });
    try {
      for await (const rec of iter) {
        counters.received++;
        const index = feed.originalIndex(rec.index);
        outstanding.delete(index);
        const v = rec.value as CommandResult | undefined;
        gate?.learn(rec, plan.kind === 'shell' && v && typeof v.durationMs === 'number' ? v.durationMs : undefined);
        const cancelled = !rec.ok && rec.error?.kind === 'cancelled';
        if (stopping && !rec.ok && !halted) {
          // Failed while the run was being stopped (often killed by the same signal): it runs again on --resume.
          counters.interrupted++;
          continue;
        }
        const recObj = plan.record(index, rec);
        const { line, ok } = toJsonLine(recObj);
        out?.write(line);
        report?.add(recObj);
        if (rec.attempts > 1) counters.retried++;
        // The task's own output first (human mode without a results file), then its failure line.
        plan.show?.(index, rec);
        if (ok) counters.succeeded++;
        else if (cancelled) counters.cancelled++;
        else {
          counters.failed++;
          const p = place(index);
          counters.failedAt.push(p.n);
          counters.failedUnit = p.unit;
          const f = failureLine(index, p, recObj);
          if (counters.failures.length < SUMMARY_FAILURES) counters.failures.push({ n: p.n, at: `${p.unit} ${p.n}`, message: f.stderr ? `${f.message} — ${f.stderr}` : f.message });
          r.failure(f);
        }
        if (c.halt && !cancelled && haltReached(c.halt, counters, feed.pending)) halt(v && typeof v.exitCode === 'number' ? v.exitCode : null);
      }
    } catch (e) {
      if (!stopping && !forced) fatal = e;
    }
    if (halted && outstanding.size > 0) {
      // --halt now stopped these while they ran: recorded as cancelled, so that --resume runs them.
      const error = { name: 'CancelledError', message: `stopped while running: ${stopping ? (stopping as StopReason).message.split(';')[0] : '--halt'}`, kind: 'cancelled' as const };
      for (const index of [...outstanding].sort((a, b) => a - b)) {
        const recObj = plan.record(index, { index, ok: false, error, node: '-', worker: -1, started: 0, ended: 0, attempts: 1 });
        out?.write(toJsonLine(recObj).line);
        report?.add(recObj);
        counters.cancelled++;
      }
      outstanding.clear();
    }
    clearInterval(ticker);
    r.clearLive();
    nodes = nodeSummaries(pool, Date.now() - runStart);
    if (!forced) await pool.close();
    else await pool.terminate();
  } finally {
    clearInterval(ticker);
    clearTimeout(graceTimer);
    clearTimeout(endTimer);
    unhook();
    await out?.close();
  }

  const wallMs = Date.now() - runStart;
  const stopped: StopReason | null = stopping ?? feed.stopped;
  if (c.report && pool) {
    // From the results file when there is one, so that records of earlier (resumed) runs are in it too.
    const meta: RunMeta = {
      version: 1,
      command: ['slurmpool', ...argv].join(' '),
      mode: pool.mode,
      ...(process.env.SLURM_JOB_ID ? { jobId: process.env.SLURM_JOB_ID } : {}),
      ...(grownJobs.length ? { grown: [...grownJobs] } : {}),
      nodes: nodes.map((n) => ({ node: n.node, workers: n.workers, cpus: n.workers })),
      started: runStart,
      ended: Date.now(),
    };
    try {
      const w = c.output ? await writeReport(c.output, c.report, meta, { onWarning: (t) => r.note(t) }) : await writeModel(report!.finish(meta), c.report);
      r.note(`report: ${w.path} (${Math.round(w.bytes / 1024)} KB)`);
    } catch (e) {
      r.note(`could not write the report ${c.report}: ${(e as Error).message}`);
    }
  }
  if (fatal) {
    const msg = fatal instanceof Error ? fatal.message : String(fatal);
    r.error(new CliError(msg, fatal instanceof SlurmpoolError && fatal.code === 'ELAUNCH' ? EXIT.launch : EXIT.launch));
    exitCode = EXIT.launch;
  } else if (halted && c.halt) exitCode = haltExitCode(c.halt, counters, feed.pending, (halted as { lastExit: number | null }).lastExit);
  else if (stopped) exitCode = EXIT.stopped;
  else if (counters.failed > 0) exitCode = EXIT.failed;
  const workers = nodes.length > 0 ? nodes.reduce((s, n) => s + n.workers, 0) : 0;
  r.summary(makeSummary(plan, c, feed, counters, nodes, pool?.mode ?? 'none', workers, wallMs, startupMs, fatal ? { kind: 'error', message: String((fatal as Error).message ?? fatal) } : stopped, argv, exitCode, grownJobs), summaryToStdout);
  return exitCode;
}

/** Whether a results file holds anything but run headers and blank lines (records, or lines we would lose). */
function holdsSomething(path: string): boolean {
  const j = readJournal(path);
  return j !== null && (j.records.size > 0 || j.bad.length > 0 || j.torn !== null);
}

function nodeSummaries(pool: Pool, wallMs: number): NodeSummary[] {
  return pool.stats().map((s) => ({
    node: s.node,
    workers: s.workers,
    tasks: s.tasks,
    busy: wallMs > 0 && s.workers > 0 ? s.busyMs / (wallMs * s.workers) : 0,
    alive: s.alive,
    ...(s.left ? { left: true } : {}),
  }));
}

function makeSummary(
  plan: Plan,
  c: Common,
  feed: Feed,
  k: Counters,
  nodes: NodeSummary[],
  mode: string,
  workers: number,
  wallMs: number,
  startupMs: number,
  stopped: StopReason | null,
  argv: readonly string[],
  exitCode: number,
  grownJobs: string[] = [],
): Summary {
  const recorded = k.succeeded + k.failed;
  const busyMs = nodes.reduce((s, n) => s + n.busy * n.workers * wallMs, 0);
  const capacity = nodes.reduce((s, n) => s + n.workers, 0) * wallMs;
  return {
    command: plan.command,
    total: plan.total,
    succeeded: k.succeeded,
    failed: k.failed,
    retried: k.retried,
    cancelled: k.cancelled,
    resumed: plan.total - feed.pending,
    notRun: Math.max(0, feed.pending - recorded - k.cancelled),
    failedAt: { unit: k.failedUnit, list: [...k.failedAt].sort((a, b) => a - b) },
    failures: [...k.failures].sort((a, b) => a.n - b.n).map(({ at, message }) => ({ at, message })),
    mode,
    workers,
    nodes,
    wallMs,
    startupMs,
    busy: capacity > 0 ? busyMs / capacity : 0,
    output: c.output,
    stopped,
    resumeCommand: c.output ? resumeCommand(argv) : null,
    grownJobs,
    exitCode,
  };
}
