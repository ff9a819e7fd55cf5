// Grow past one allocation: submit sbatch jobs whose nodes join the pool (`slurmpool join FILE`)
// while the backlog would keep them busy, and cancel them (scancel) when the pool stops.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GrowOptions } from '../options.js';
import { expandHostlist } from '../slurm/index.js';
import { shellWords } from './shell-words.js';

export { shellWords };

// Not agents.js's CLI_MAIN: importing it would load TCP and auth into the pools that grow.
const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Before any job of this pool has started, a new job is taken to need this long to start and join. */
export const GROW_START_GUESS_MS = 10_000;
/** How often the backlog is weighed against a new job's start (and squeue read while jobs are out). */
export const GROW_CHECK_MS = 1000;
/** Jobs that end with none of their nodes joining, in a row, before growth stops. */
export const GROW_MAX_FAILED = 3;
/** With no task left this long (a library pool between calls), the grown jobs out are cancelled. */
export const GROW_IDLE_MS = 60_000;

/** What the pool tells the grower each time it weighs the backlog. */
export interface GrowState {
  /** Tasks not finished yet (Infinity: an endless input). */
  backlog: number;
  /** Workers on nodes that take work now (not leaving). */
  workers: number;
  /** Such nodes. */
  nodes: number;
  /** Mean milliseconds a task takes on a worker, from the tasks finished so far; null before any. */
  taskMs: number | null;
}

/** One submitted job. */
export interface GrownJob {
  id: string;
  nodes: number;
  submitted: number;
  /** PENDING, RUNNING…, or 'ended' once squeue no longer lists it as pending or running. */
  state: string;
  /** Its nodes, once squeue names them. */
  nodeNames: string[];
  /** When the first of its nodes joined the pool (0: none yet). */
  joinedAt: number;
}

/**
 * The estimate rule, pure. A job submitted now is expected to have its nodes in the pool after
 * `startMs`; meanwhile the current workers run `workers × startMs / taskMs` tasks. What is left then
 * (beyond the tasks running now, one per worker) could keep `⌊left / per-node workers⌋` new nodes
 * busy for at least one task each; jobs are submitted while the nodes out (pending or running, not
 * yet ended) are fewer than that, and never more than `max` nodes out at once. No job when the
 * remaining work would be done before a new job could start (left ≤ 0), or before any task has
 * finished (no duration known).
 */
export function nodesWanted(s: GrowState, startMs: number, max: number): number {
  if (s.taskMs === null || !(s.backlog > 0)) return 0;
  const workers = Math.max(1, s.workers);
  const perNode = Math.max(1, s.workers / Math.max(1, s.nodes));
  const notStarted = s.backlog - workers;
  const left = notStarted - (workers * startMs) / Math.max(1, s.taskMs);
  if (!(left >= perNode)) return 0;
  return Math.min(max, Math.floor(left / perNode));
}

function quote(a: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The sbatch arguments of a grown job: ours first, the user's after (so theirs win), the join command as its script. */
export function growSbatchArgs(joinFile: string, nodes: number, userArgs: string[]): string[] {
  const hasOutput = userArgs.some((a) => /^(-o|--output)(=|$)/.test(a) || /^-o./.test(a));
  return [
    '--parsable',
    '--job-name=slurmpool-grow',
    `--nodes=${nodes}`,
    ...(hasOutput ? [] : [`--output=${dirname(joinFile)}/grow-%j.out`]),
    ...userArgs,
    `--wrap=exec ${quote(process.execPath)} ${quote(CLI_MAIN)} join ${quote(joinFile)}`,
  ];
}

export interface GrowerDeps {
  grow: GrowOptions;
  joinFile: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** The pool's state, read at every check. */
  state: () => GrowState;
}

/** Submits, watches and cancels the grown jobs of one pool. */
export class Grower {
  readonly jobs: GrownJob[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private halted = false;
  private failedInRow = 0;
  private readonly userArgs: string[];
  private readonly max: number;
  private readonly perJob: number;
  private lastSqueue = 0;
  /** Since when no task is left while jobs are out (0: there is work). */
  private idleSince = 0;

  constructor(private readonly d: GrowerDeps) {
    this.userArgs = shellWords(d.grow.sbatch ?? '');
    this.max = d.grow.nodes;
    this.perJob = d.grow.nodesPerJob ?? 1;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), GROW_CHECK_MS);
    this.timer.unref();
  }

  /** Every job id submitted, in order. */
  get ids(): string[] {
    return this.jobs.map((j) => j.id);
  }

  /** Jobs out (pending or running, not ended): an empty pool waits for them. */
  get pending(): number {
    return this.jobs.filter((j) => j.state !== 'ended').length;
  }

  private nodesOut(): number {
    return this.jobs.filter((j) => j.state !== 'ended').reduce((n, j) => n + j.nodes, 0);
  }

  /** How long a new job is expected to take to start and join: learned from this pool's jobs, raised by one pending longer. */
  startEstimate(now = Date.now()): number {
    const seen = this.jobs.filter((j) => j.joinedAt > 0).slice(-5);
    let est = seen.length ? seen.reduce((s, j) => s + (j.joinedAt - j.submitted), 0) / seen.length : GROW_START_GUESS_MS;
    for (const j of this.jobs) if (j.joinedAt === 0 && j.state !== 'ended') est = Math.max(est, now - j.submitted);
    return est;
  }

  /** A joined agent is ready on `node`: the job that holds that node has started. */
  joined(node: string, now = Date.now()): void {
    const j = this.jobs.find((x) => x.joinedAt === 0 && x.nodeNames.includes(node)) ?? this.jobs.find((x) => x.joinedAt === 0 && x.state !== 'ended' && x.nodeNames.length === 0);
    if (!j) return;
    j.joinedAt = now;
    this.failedInRow = 0;
    this.d.log(`grow: job ${j.id}'s node ${node} joined the pool ${((now - j.submitted) / 1000).toFixed(1)} s after it was submitted`);
  }

  private async check(): Promise<void> {
    if (this.busy || this.halted) return;
    this.busy = true;
    try {
      const now = Date.now();
      if (this.pending > 0 && now - this.lastSqueue >= 2 * GROW_CHECK_MS) {
        this.lastSqueue = now;
        await this.readSqueue();
      }
      if (this.halted) return;
      const s = this.d.state();
      if (s.backlog > 0 || this.pending === 0) this.idleSince = 0;
      else if (this.idleSince === 0) this.idleSince = now;
      else if (now - this.idleSince >= GROW_IDLE_MS) {
        // Nodes with nothing to do cost their allocation: let them go; work that comes later grows again.
        this.idleSince = 0;
        const ids = this.jobs.filter((j) => j.state !== 'ended').map((j) => j.id);
        for (const j of this.jobs) j.state = 'ended';
        this.d.log(`grow: no task for ${GROW_IDLE_MS / 1000} s; cancelling the grown jobs`);
        await this.scancel(ids);
        return;
      }
      const want = nodesWanted(s, this.startEstimate(now), this.max);
      const out = this.nodesOut();
      if (out < want && out + this.perJob <= this.max) await this.submit(s);
    } finally {
      this.busy = false;
    }
  }

  private async submit(s: GrowState): Promise<void> {
    const { execa } = await import('execa');
    const args = growSbatchArgs(this.d.joinFile, this.perJob, this.userArgs);
    const r = await execa('sbatch', args, { env: this.d.env, reject: false, timeout: 30_000, stdin: 'ignore' });
    if (this.halted) {
      // Stopped while sbatch ran: cancel what it may have submitted.
      const id = /^(\d+)/.exec(String(r.stdout).trim())?.[1];
      if (id) await this.scancel([id]);
      return;
    }
    const id = r.exitCode === 0 ? /^(\d+)/.exec(String(r.stdout).trim())?.[1] : undefined;
    if (!id) {
      const why = (String(r.stderr).trim() || (r as { shortMessage?: string }).shortMessage || `exit status ${r.exitCode}`).split('\n').slice(-3).join(' ');
      this.d.log(`grow: sbatch failed (${why}); the pool grows no further (sbatch ${args.slice(0, -1).map(quote).join(' ')})`);
      this.halted = true;
      return;
    }
    const at = Date.now();
    this.jobs.push({ id, nodes: this.perJob, submitted: at, state: 'PENDING', nodeNames: [], joinedAt: 0 });
    const backlog = Number.isFinite(s.backlog) ? `${s.backlog} task(s) left` : 'an input of unknown length';
    this.d.log(
      `grow: submitted job ${id} (${this.perJob} node${this.perJob === 1 ? '' : 's'}): ${backlog}, about ${Math.round(s.taskMs ?? 0)} ms each on ${s.workers} worker(s); a new job is expected to join within ${(this.startEstimate(at) / 1000).toFixed(0)} s`,
    );
    this.d.grow.onSubmit?.({ id, nodes: this.perJob, at });
  }

  private async readSqueue(): Promise<void> {
    const { execa } = await import('execa');
    const r = await execa('squeue', ['-h', '--me', '-o', '%i|%T|%N'], { env: this.d.env, reject: false, timeout: 10_000, stdin: 'ignore' });
    if (r.exitCode !== 0) return;
    const seen = new Map<string, { state: string; nodes: string }>();
    for (const line of String(r.stdout).split('\n')) {
      const [id, state, nodes] = line.trim().split('|');
      if (id && state) seen.set(id, { state, nodes: nodes ?? '' });
    }
    for (const j of this.jobs) {
      if (j.state === 'ended') continue;
      const q = seen.get(j.id);
      if (!q || !['PENDING', 'RUNNING', 'CONFIGURING', 'SUSPENDED', 'REQUEUED', 'RESIZING'].includes(q.state)) {
        j.state = 'ended';
        if (j.joinedAt === 0) {
          this.failedInRow++;
          this.d.log(`grow: job ${j.id} ended without any of its nodes joining${this.failedInRow >= GROW_MAX_FAILED ? `; ${GROW_MAX_FAILED} in a row: the pool grows no further (see ${dirname(this.d.joinFile)}/grow-${j.id}.out)` : ''}`);
          if (this.failedInRow >= GROW_MAX_FAILED) this.halted = true;
        } else this.d.log(`grow: job ${j.id} ended`);
        continue;
      }
      j.state = q.state;
      if (j.nodeNames.length === 0 && q.nodes && q.state === 'RUNNING') {
        try {
          j.nodeNames = expandHostlist(q.nodes);
        } catch {
          // a name squeue prints we cannot read: the job is matched by order instead
        }
      }
    }
  }

  /** Submit nothing more; cancel jobs still pending (their nodes would arrive to no work). */
  async halt(): Promise<void> {
    this.halted = true;
    const pending = this.jobs.filter((j) => j.state === 'PENDING' && j.joinedAt === 0).map((j) => j.id);
    if (pending.length) await this.scancel(pending);
  }

  /** Submit nothing more and cancel every job (pending and running): the pool stops. */
  async stop(): Promise<void> {
    this.halted = true;
    clearInterval(this.timer);
    // Wait for a check in progress (an sbatch under way) so that its job is cancelled too.
    for (let i = 0; i < 600 && this.busy; i++) await new Promise((r) => setTimeout(r, 50));
    const ids = this.jobs.filter((j) => j.state !== 'ended').map((j) => j.id);
    for (const j of this.jobs) j.state = 'ended';
    if (ids.length) await this.scancel(ids);
  }

  private async scancel(ids: string[]): Promise<void> {
    const { execa } = await import('execa');
    const r = await execa('scancel', ids, { env: this.d.env, reject: false, timeout: 30_000, stdin: 'ignore' });
    if (r.exitCode === 0) this.d.log(`grow: cancelled job${ids.length === 1 ? '' : 's'} ${ids.join(', ')} (scancel)`);
    else this.d.log(`grow: scancel ${ids.join(' ')} failed: ${String(r.stderr).trim() || `exit status ${r.exitCode}`}`);
  }
}
