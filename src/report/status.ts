// The live view: progress per node from a results file that a running job appends to (`slurmpool status`).
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { duration, num, pct, rate, utc } from './format.js';
import { FAILED, REDISPATCHED, RETRIED, mergeMeta, parseLine, type RunMeta } from './records.js';

/** One node's progress. */
export interface NodeProgress {
  node: string;
  /** Workers from the metadata, else distinct workers seen. */
  workers: number;
  /** Records of this node (done = ok + failed). */
  done: number;
  ok: number;
  failed: number;
  retried: number;
  redispatched: number;
  /** Epoch ms of its first start and last end; NaN before any. */
  firstStart: number;
  lastEnded: number;
  /** Tasks per second over its active span, and over the last `windowMs` before `at`. */
  rate: number;
  recentRate: number;
}

/** Where a run stands, as read from its results file. */
export interface RunStatus {
  file: string;
  meta: RunMeta;
  nodes: NodeProgress[];
  done: number;
  ok: number;
  failed: number;
  /** Tasks the run was given, when its metadata says. */
  total?: number;
  /** Epoch ms: the run's start (metadata, else first task start), last record end. */
  started: number;
  lastActivity: number;
  rate: number;
  recentRate: number;
  /** Estimated ms left at the recent rate, when the total is known. */
  etaMs?: number;
  /** Skipped lines, `file:line: why`. */
  warnings: string[];
  /** A line still being written at the end of the file (not counted yet). */
  partialBytes: number;
  /** When this status was taken (epoch ms). */
  at: number;
}

export interface StatusOptions {
  /** The clock (tests). Default Date.now. */
  now?: () => number;
  /** Window of the recent rate. Default 60 s. */
  windowMs?: number;
}

interface NodeAcc {
  workers: Set<number>;
  done: number;
  ok: number;
  failed: number;
  retried: number;
  redispatched: number;
  firstStart: number;
  lastEnded: number;
  /** Records per second of end time, for the recent rate. */
  perSecond: Map<number, number>;
}

/**
 * Follows a results file: each `poll()` reads only what was appended since the last one (a job of a
 * million tasks is read once, then a few KB per poll), so `slurmpool status --watch` stays cheap.
 */
export class StatusTracker {
  private offset = 0;
  private partial = Buffer.alloc(0);
  private lineNo = 0;
  private meta: RunMeta = {};
  private nodes = new Map<string, NodeAcc>();
  private warnings: string[] = [];
  private readonly now: () => number;
  private readonly windowMs: number;

  constructor(
    readonly path: string,
    options?: StatusOptions,
  ) {
    this.now = options?.now ?? Date.now;
    this.windowMs = options?.windowMs ?? 60_000;
  }

  /** Read what was appended and return the status now. Starts over if the file was replaced by a shorter one. */
  async poll(): Promise<RunStatus> {
    const size = (await stat(this.path)).size;
    if (size < this.offset) this.resetAll();
    if (size > this.offset) {
      const fh = await open(this.path, 'r');
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        while (this.offset < size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - this.offset), this.offset);
          if (bytesRead === 0) break;
          this.offset += bytesRead;
          this.feed(buf.subarray(0, bytesRead));
        }
      } finally {
        await fh.close();
      }
    }
    return this.status();
  }

  private resetAll(): void {
    this.offset = 0;
    this.partial = Buffer.alloc(0);
    this.lineNo = 0;
    this.meta = {};
    this.nodes = new Map();
    this.warnings = [];
  }

  private feed(chunk: Buffer): void {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      this.line(data.toString('utf8', start, nl));
      start = nl + 1;
    }
    data = data.subarray(start);
    this.partial = Buffer.from(data);
  }

  private line(text: string): void {
    this.lineNo++;
    const p = parseLine(text);
    if (p === null) return;
    if (p.kind === 'bad') {
      if (this.warnings.length < 20) this.warnings.push(`${basename(this.path)}:${this.lineNo}: ${p.why}; skipped`);
      return;
    }
    if (p.kind === 'meta') {
      // A resumed run appends its own header: the run started with the first one.
      const first = this.meta.started;
      mergeMeta(this.meta, p.meta);
      if (first !== undefined && !(first >= (this.meta.started ?? Infinity))) this.meta.started = first;
      return;
    }
    const r = p.record;
    let n = this.nodes.get(r.node);
    if (!n) this.nodes.set(r.node, (n = { workers: new Set(), done: 0, ok: 0, failed: 0, retried: 0, redispatched: 0, firstStart: NaN, lastEnded: NaN, perSecond: new Map() }));
    if (r.worker >= 0) n.workers.add(r.worker);
    n.done++;
    if (r.ok) n.ok++;
    if (r.outcome === FAILED) n.failed++;
    else if (r.outcome === RETRIED) n.retried++;
    else if (r.outcome === REDISPATCHED) n.redispatched++;
    if (Number.isFinite(r.started)) {
      if (!(r.started >= n.firstStart)) n.firstStart = r.started;
      if (!(r.ended <= n.lastEnded)) n.lastEnded = r.ended;
      const sec = Math.floor(r.ended / 1000);
      n.perSecond.set(sec, (n.perSecond.get(sec) ?? 0) + 1);
      // Keep only what the recent-rate window can still need.
      if (n.perSecond.size > 2 * (this.windowMs / 1000) + 10) {
        const keep = Math.floor((n.lastEnded - this.windowMs) / 1000) - 1;
        for (const s of n.perSecond.keys()) if (s < keep) n.perSecond.delete(s);
      }
    }
  }

  /** The status of what was read so far. */
  status(): RunStatus {
    const at = this.now();
    const from = Math.floor((at - this.windowMs) / 1000);
    const firstStarts = [...this.nodes.values()].map((n) => n.firstStart).filter(Number.isFinite);
    const runStart = this.meta.started ?? (firstStarts.length ? Math.min(...firstStarts) : NaN);
    // The recent rate's window: the last windowMs, or the time since the run started when that is shorter
    // (10 tasks in the first 5 s are 2 tasks/s, not 10/60). At least a second, so that the first records do not spike it.
    const windowS = Math.max(1, Math.min(this.windowMs, at - runStart > 0 ? at - runStart : this.windowMs) / 1000);
    const metaNodes = new Map((this.meta.nodes ?? []).map((n) => [n.node, n]));
    const names = [...metaNodes.keys(), ...[...this.nodes.keys()].filter((n) => !metaNodes.has(n)).sort(new Intl.Collator('en', { numeric: true }).compare)];
    const nodes: NodeProgress[] = names.map((name) => {
      const a = this.nodes.get(name);
      let recent = 0;
      if (a) for (const [s, c] of a.perSecond) if (s >= from) recent += c;
      const active = a ? a.lastEnded - a.firstStart : NaN;
      return {
        node: name,
        workers: metaNodes.get(name)?.workers ?? a?.workers.size ?? 0,
        done: a?.done ?? 0,
        ok: a?.ok ?? 0,
        failed: a?.failed ?? 0,
        retried: a?.retried ?? 0,
        redispatched: a?.redispatched ?? 0,
        firstStart: a?.firstStart ?? NaN,
        lastEnded: a?.lastEnded ?? NaN,
        rate: active > 0 ? (a?.done ?? 0) / (active / 1000) : 0,
        recentRate: recent / windowS,
      };
    });
    const sum = (f: (n: NodeProgress) => number) => nodes.reduce((s, n) => s + f(n), 0);
    const lasts = nodes.map((n) => n.lastEnded).filter(Number.isFinite);
    const started = runStart;
    const lastActivity = lasts.length ? Math.max(...lasts) : NaN;
    const done = sum((n) => n.done);
    const recentRate = sum((n) => n.recentRate);
    const s: RunStatus = {
      file: this.path,
      meta: { ...this.meta },
      nodes,
      done,
      ok: sum((n) => n.ok),
      failed: sum((n) => n.failed),
      started,
      lastActivity,
      rate: lastActivity > started ? done / ((lastActivity - started) / 1000) : 0,
      recentRate,
      warnings: [...this.warnings],
      partialBytes: this.partial.length,
      at,
    };
    if (this.meta.tasks !== undefined) {
      s.total = this.meta.tasks;
      if (recentRate > 0) s.etaMs = (Math.max(0, this.meta.tasks - done) / recentRate) * 1000;
    }
    return s;
  }
}

/** Progress per node of the run writing `path`, read once. */
export function statusFromResults(path: string, options?: StatusOptions): Promise<RunStatus> {
  return new StatusTracker(path, options).poll();
}

/** The status as plain text: a header line, one line per node, and what was skipped. */
export function renderStatus(s: RunStatus): string {
  const lines: string[] = [];
  const what = s.meta.command ? ` ${s.meta.command}` : '';
  const job = [s.meta.jobId ? `job ${s.meta.jobId}` : '', s.meta.mode ? `${s.meta.mode} mode` : ''].filter(Boolean).join(', ');
  const total = s.total !== undefined ? ` of ${num(s.total)} (${pct(s.total > 0 ? s.done / s.total : 1)})` : '';
  const eta =
    s.total === undefined ? '' : s.done >= s.total ? ', all recorded' : s.etaMs !== undefined ? `, about ${duration(s.etaMs)} left` : ', time left unknown (no task ended in the last minute)';
  lines.push(`slurmpool status:${what}`);
  lines.push(`  ${job ? `${job}, ` : ''}${num(s.done)} tasks done${total}, ${num(s.failed)} failed; ${rate(s.recentRate)} tasks/s now, ${rate(s.rate)} on average${eta}`);
  lines.push(`  started ${utc(s.started)}; last task ended ${Number.isFinite(s.lastActivity) ? `${duration(Math.max(0, s.at - s.lastActivity))} ago` : 'never'}`);
  const header = ['node', 'workers', 'done', 'failed', 'retried', 'tasks/s now', 'tasks/s avg', 'last activity'];
  const rows = s.nodes.map((n) => [
    n.node,
    num(n.workers),
    num(n.done),
    num(n.failed),
    num(n.retried + n.redispatched),
    rate(n.recentRate),
    rate(n.rate),
    Number.isFinite(n.lastEnded) ? `${duration(Math.max(0, s.at - n.lastEnded))} ago` : 'nothing yet',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => `  ${r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`.trimEnd();
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
