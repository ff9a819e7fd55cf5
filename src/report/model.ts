// From task records to a compact report model: lanes, bars or per-lane time bins, utilization, tables. Pure.
import { FAILED, OK, OUTCOMES, REDISPATCHED, RETRIED, classify, mergeMeta, type NormRecord, type ParsedLine, type Outcome, type ReportError, type RunMeta } from './records.js';

/** Limits of the model; every field optional. */
export interface ModelOptions {
  /** More bars than this and the timeline becomes per-lane time bins (failed, retried and re-dispatched bars stay). Default 20,000. */
  maxBars?: number;
  /** Time bins per lane in binned mode. Default 2,000, fewer when lanes × bins would pass 4,000,000. */
  bins?: number;
  /** Time bins of the utilization series. Default 600. */
  utilBins?: number;
  /** Rows of the slowest table. Default 20. */
  top?: number;
  /** Rows kept for the failed and retries tables. Default 500. */
  maxRows?: number;
  /** Individual bars kept over the bins in binned mode. Default 20,000. */
  maxSpecialBars?: number;
}

const DEFAULTS = { maxBars: 20_000, bins: 2_000, utilBins: 600, top: 20, maxRows: 500, maxSpecialBars: 20_000 };
const MAX_BIN_CELLS = 4_000_000;
/** Error stacks kept only for the first failures (they dominate the file size otherwise). */
const STACKS_KEPT = 100;

/** One worker's row of the timeline. */
export interface Lane {
  node: string;
  /** -1: tasks of this node with no worker (lost with it). */
  worker: number;
  label: string;
  tasks: number;
  failed: number;
  busyMs: number;
}

/** A node's totals. */
export interface NodeSummary {
  node: string;
  workers: number;
  cpus: number;
  /** Its lanes are lanes[firstLane .. firstLane + laneCount). */
  firstLane: number;
  laneCount: number;
  tasks: number;
  failed: number;
  retried: number;
  redispatched: number;
  busyMs: number;
  /** busy / (workers × wall), 0..1. */
  utilization: number;
  idleCoreHours: number;
  meanTaskMs: number;
  /** When its agent was lost mid-run (epoch ms) and why; the last loss when there were several. */
  lost?: { at: number; reason: string; times: number };
}

/** Bars as columns; times are ms after the report's t0. A bar is one task, or the items of a chunk that ran together. */
export interface Bars {
  lane: number[];
  start: number[];
  dur: number[];
  /** Index into OUTCOMES. */
  outcome: number[];
  /** First task index. */
  index: number[];
  /** Tasks in the bar (a chunk's items share their times). */
  count: number[];
}

/** The timeline: every bar, or per-lane bins with the notable bars kept on top. */
export type Timeline =
  | { mode: 'bars'; bars: Bars }
  | {
      mode: 'bins';
      bins: number;
      binMs: number;
      /** lanes × bins, lane-major: busy share of the bin, 0..255. */
      busy: Uint8Array;
      /** lanes × bins: tasks that started in the bin (saturates at 65,535). */
      tasks: Uint16Array;
      /** Failed, retried and re-dispatched bars, drawn over the bins. */
      special: Bars;
      /** Notable bars left out of `special` past its limit. */
      specialDropped: number;
    };

/** Busy workers / all workers over time, for the whole run and per node (0..1, rounded to 0.001). */
export interface Utilization {
  bins: number;
  binMs: number;
  overall: number[];
  perNode: number[][];
}

/** A row of the slowest, failed and retries tables. */
export interface TaskRow {
  index: number;
  /** Tasks in its bar (a chunk): > 1 only in the slowest table. */
  count: number;
  node: string;
  worker: number;
  /** ms after t0; NaN when the record has no times. */
  start: number;
  durMs: number;
  outcome: Outcome;
  attempts: number;
  error?: ReportError;
  what?: string;
  /** The end of a failed task's stderr, when its record carries one. */
  stderrTail?: string;
}

/** The run's header. */
export interface Header {
  command?: string;
  mode?: string;
  jobId?: string;
  /** Jobs submitted to grow the pool. */
  grown?: string[];
  fn?: string;
  nodes: number;
  cpus: number;
  workers: number;
  /** Epoch ms; NaN when nothing ran. */
  started: number;
  ended: number;
  wallMs: number;
  tasksPerSec: number;
  busyMs: number;
  /** busy / (workers × wall). */
  utilization: number;
  allocCoreHours: number;
  idleCoreHours: number;
  /** Wall time beyond a perfect packing of the busy time on all workers (wall − busy / workers). */
  overheadMs: number;
}

export interface Counts {
  /** Distinct task indices. */
  tasks: number;
  ok: number;
  failed: number;
  retried: number;
  redispatched: number;
  /** Records with no start/end (lost with a node): in the tables, not on the timeline. */
  untimed: number;
  /** Records read (more than tasks when a task was recorded twice, as after --resume). */
  records: number;
  /** Bars before binning. */
  bars: number;
}

/** Everything the HTML report shows. */
export interface ReportModel {
  version: 1;
  header: Header;
  counts: Counts;
  /** Epoch ms of the timeline's left and right edges. */
  t0: number;
  t1: number;
  nodes: NodeSummary[];
  lanes: Lane[];
  timeline: Timeline;
  utilization: Utilization;
  slowest: TaskRow[];
  failed: TaskRow[];
  failedTotal: number;
  retries: TaskRow[];
  retriesTotal: number;
  /** Of those, records that failed in the end. */
  retriesFailed: number;
  warnings: string[];
}

/** A growable column of numbers. */
class Column<A extends Float64Array | Uint32Array | Uint8Array> {
  length = 0;
  constructor(
    public data: A,
    private readonly make: (n: number) => A,
  ) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = this.make(this.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
}
const f64 = () => new Column(new Float64Array(1024), (n) => new Float64Array(n));
const u32 = () => new Column(new Uint32Array(1024), (n) => new Uint32Array(n));
const u8 = () => new Column(new Uint8Array(1024), (n) => new Uint8Array(n));

/** Per-index final state beyond this index is kept in a Map rather than an array. */
const DENSE_INDEX_LIMIT = 50_000_000;

/**
 * Collects records one at a time in compact columns (about 30 bytes per bar), then builds the model.
 * Use it while a run goes on (`add` each record) or over a results file (`addLine` each parsed value).
 */
export class ReportBuilder {
  private readonly meta: RunMeta = {};
  private readonly laneIds = new Map<string, number>();
  private readonly laneKeys: { node: string; worker: number }[] = [];
  private readonly bLane = u32();
  private readonly bStart = f64();
  private readonly bEnd = f64();
  private readonly bOutcome = u8();
  private readonly bIndex = f64();
  private readonly bCount = u32();
  /** 1 when the bar repeats its lane's previous time span (another outcome of the same chunk): its busy time is counted once. */
  private readonly bDup = u8();
  private readonly laneLastStart: number[] = [];
  private readonly laneLastEnd: number[] = [];
  private state = new Uint8Array(1024);
  private readonly stateMap = new Map<number, number>();
  private readonly failedRows = new Map<number, TaskRow>();
  private readonly retryRows: TaskRow[] = [];
  private retriesTotal = 0;
  private retriesFailed = 0;
  /** Per node: records, failed, retried and re-dispatched records (every attempt the file holds). */
  private readonly perNode = new Map<string, { records: number; failed: number; retried: number; redispatched: number }>();
  private readonly o: Required<ModelOptions>;
  private records = 0;
  private untimed = 0;
  private stacks = 0;
  private readonly warnings: string[] = [];
  private warningsDropped = 0;
  private firstStart = Infinity;
  private lastEnd = -Infinity;

  constructor(options?: ModelOptions) {
    const o: Required<ModelOptions> = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options ?? {})) if (typeof v === 'number' && v >= 0) o[k as keyof ModelOptions] = v;
    this.o = o;
  }

  /** Add a parsed results-file value: metadata, a record, or something to warn about (`where` names it). */
  addLine(v: unknown, where?: string): void {
    this.addParsed(classify(v), where);
  }

  /** Add a line already classified (as `readResults` yields them). */
  addParsed(p: ParsedLine, where?: string): void {
    if (p.kind === 'meta') mergeMeta(this.meta, p.meta);
    else if (p.kind === 'record') this.addNormalized(p.record);
    else this.warn(`${where ?? 'a line'}: ${p.why}; skipped`);
  }

  /** Add one task record (a TaskRecord, or a results-file record in either spelling). */
  add(record: object): void {
    this.addLine(record, `record ${this.records + 1}`);
  }

  /** Merge run metadata (later fields win). */
  setMeta(meta: RunMeta): void {
    mergeMeta(this.meta, meta);
  }

  /** Note something the report should say it skipped. */
  warn(text: string): void {
    if (this.warnings.length < 50) this.warnings.push(text);
    else this.warningsDropped++;
  }

  /**
   * Record a task's latest state (0 unseen, else 1 + base outcome + 4 × outcome of a success) and
   * return the previous one. A success is final: a later failure of the same index does not undo it.
   */
  private setState(index: number, s: number): number {
    if (index >= 0 && index < DENSE_INDEX_LIMIT && Number.isInteger(index)) {
      if (index >= this.state.length) {
        let n = this.state.length;
        while (n <= index) n *= 2;
        const a = new Uint8Array(n);
        a.set(this.state);
        this.state = a;
      }
      const prev = this.state[index] ?? 0;
      if (!succeeded(prev)) this.state[index] = s;
      return prev;
    }
    const prev = this.stateMap.get(index) ?? 0;
    if (!succeeded(prev)) this.stateMap.set(index, s);
    return prev;
  }

  private addNormalized(r: NormRecord): void {
    this.records++;
    const prev = this.setState(r.index, r.ok ? 1 + OK + 4 * r.outcome : 1 + FAILED);
    let pn = this.perNode.get(r.node);
    if (!pn) this.perNode.set(r.node, (pn = { records: 0, failed: 0, retried: 0, redispatched: 0 }));
    pn.records++;
    if (r.outcome === FAILED) pn.failed++;
    else if (r.outcome === RETRIED) pn.retried++;
    else if (r.outcome === REDISPATCHED) pn.redispatched++;
    const timed = Number.isFinite(r.started);
    const row = (): TaskRow => {
      const t: TaskRow = { index: r.index, count: 1, node: r.node, worker: r.worker, start: r.started, durMs: timed ? r.ended - r.started : NaN, outcome: OUTCOMES[r.outcome] ?? 'ok', attempts: r.attempts };
      if (r.error) {
        t.error = { ...r.error };
        if (t.error.stack !== undefined && this.stacks++ >= STACKS_KEPT) delete t.error.stack;
      }
      if (r.what !== undefined) t.what = r.what;
      if (r.stderrTail !== undefined) t.stderrTail = r.stderrTail;
      return t;
    };
    if (r.outcome === FAILED) {
      if (!succeeded(prev) && !this.failedRows.has(r.index) && this.failedRows.size < this.o.maxRows) this.failedRows.set(r.index, row());
    } else this.failedRows.delete(r.index);
    if (r.attempts > 1 || r.outcome === REDISPATCHED) {
      this.retriesTotal++;
      if (!r.ok) this.retriesFailed++;
      if (this.retryRows.length < this.o.maxRows) this.retryRows.push(row());
    }
    if (!timed) {
      this.untimed++;
      return;
    }
    const key = `${r.node}\0${r.worker}`;
    let lane = this.laneIds.get(key);
    if (lane === undefined) {
      lane = this.laneKeys.length;
      this.laneIds.set(key, lane);
      this.laneKeys.push({ node: r.node, worker: r.worker });
      this.laneLastStart.push(NaN);
      this.laneLastEnd.push(NaN);
    }
    if (r.started < this.firstStart) this.firstStart = r.started;
    if (r.ended > this.lastEnd) this.lastEnd = r.ended;
    // The items of one chunk arrive together with the same times: one bar for them.
    const b = this.bLane.length - 1;
    if (
      b >= 0 &&
      this.bLane.data[b] === lane &&
      this.bStart.data[b] === r.started &&
      this.bEnd.data[b] === r.ended &&
      this.bOutcome.data[b] === r.outcome &&
      (this.bIndex.data[b] ?? NaN) + (this.bCount.data[b] ?? 0) === r.index
    ) {
      this.bCount.data[b]!++;
      return;
    }
    const dup = this.laneLastStart[lane] === r.started && this.laneLastEnd[lane] === r.ended;
    this.laneLastStart[lane] = r.started;
    this.laneLastEnd[lane] = r.ended;
    this.bLane.push(lane);
    this.bStart.push(r.started);
    this.bEnd.push(r.ended);
    this.bOutcome.push(r.outcome);
    this.bIndex.push(r.index);
    this.bCount.push(1);
    this.bDup.push(dup ? 1 : 0);
  }

  /** The model of everything added so far. `meta` fills in what the file's metadata did not say. */
  finish(meta?: RunMeta): ReportModel {
    const o = this.o;
    const m: RunMeta = mergeMeta(mergeMeta({}, this.meta), meta ?? {});
    const nBars = this.bLane.length;

    // Nodes and lanes: every node of the metadata or the records, by name (emu2 before emu10).
    const metaNode = new Map<string, { workers?: number; cpus?: number }>();
    for (const n of m.nodes ?? []) metaNode.set(n.node, n);
    const seenWorkers = new Map<string, Set<number>>();
    for (const k of this.laneKeys) {
      let s = seenWorkers.get(k.node);
      if (!s) seenWorkers.set(k.node, (s = new Set()));
      s.add(k.worker);
    }
    const collator = new Intl.Collator('en', { numeric: true });
    // Nodes that only lost tasks (no timed record) still get a row.
    for (const name of this.perNode.keys()) if (!seenWorkers.has(name)) seenWorkers.set(name, new Set());
    const nodeOrder = [...new Set([...metaNode.keys(), ...seenWorkers.keys()])].sort(collator.compare);

    const lanes: Lane[] = [];
    const nodes: NodeSummary[] = [];
    const laneOf = new Map<string, number>();
    const nodeOfLane: number[] = [];
    for (const name of nodeOrder) {
      const mn = metaNode.get(name);
      const seen = seenWorkers.get(name) ?? new Set<number>();
      const ws = new Set<number>(seen);
      for (let w = 0; w < (mn?.workers ?? 0); w++) ws.add(w);
      const sorted = [...ws].sort((a, b) => (a < 0 ? 1 : b < 0 ? -1 : a - b));
      const realWorkers = sorted.filter((w) => w >= 0).length;
      const workers = mn?.workers ?? Math.max(1, realWorkers);
      const cpus = mn?.cpus ?? workers;
      const ni = nodes.length;
      nodes.push({ node: name, workers, cpus, firstLane: lanes.length, laneCount: sorted.length, tasks: 0, failed: 0, retried: 0, redispatched: 0, busyMs: 0, utilization: 0, idleCoreHours: 0, meanTaskMs: 0 });
      for (const w of sorted) {
        laneOf.set(`${name}\0${w}`, lanes.length);
        nodeOfLane.push(ni);
        lanes.push({ node: name, worker: w, label: `${name}/${w < 0 ? '?' : w}`, tasks: 0, failed: 0, busyMs: 0 });
      }
    }
    const remap = this.laneKeys.map((k) => laneOf.get(`${k.node}\0${k.worker}`) ?? 0);

    // Time frame.
    let t0 = this.firstStart;
    let t1 = this.lastEnd;
    if (m.started !== undefined && (m.started < t0 || !Number.isFinite(t0))) t0 = m.started;
    if (m.ended !== undefined && (m.ended > t1 || !Number.isFinite(t1))) t1 = m.ended;
    const anyTime = Number.isFinite(t0) && Number.isFinite(t1);
    if (!anyTime) t0 = t1 = NaN;
    const wallMs = anyTime ? t1 - t0 : 0;
    const span = Math.max(wallMs, 1);

    // Bars: lanes remapped, busy time per lane, node and bin.
    const L = this.bLane.data;
    const S = this.bStart.data;
    const E = this.bEnd.data;
    const O = this.bOutcome.data;
    const I = this.bIndex.data;
    const C = this.bCount.data;
    const Dup = this.bDup.data;
    const binned = nBars > o.maxBars;
    const B = binned ? Math.max(1, Math.min(o.bins, Math.max(100, Math.floor(MAX_BIN_CELLS / Math.max(1, lanes.length))))) : 0;
    const binMs = binned ? span / B : 0;
    const busyBins = binned ? new Float64Array(lanes.length * B) : null;
    const taskBins = binned ? new Uint16Array(lanes.length * B) : null;
    const U = Math.max(1, Math.min(o.utilBins, 10_000));
    const uMs = span / U;
    const uAll = new Float64Array(U);
    const uNode = nodes.map(() => new Float64Array(U));
    const bars: Bars = { lane: [], start: [], dur: [], outcome: [], index: [], count: [] };
    const special: Bars = { lane: [], start: [], dur: [], outcome: [], index: [], count: [] };
    let specialDropped = 0;
    const specialOrder: number[] = [];
    for (let b = 0; b < nBars; b++) {
      const lane = remap[L[b]!]!;
      const s = S[b]! - t0;
      const e = E[b]! - t0;
      const ln = lanes[lane]!;
      const c = C[b]!;
      const oc = O[b]!;
      ln.tasks += c;
      if (oc === FAILED) ln.failed += c;
      if (!Dup[b]) {
        ln.busyMs += e - s;
        spread(uAll, 0, s, e, uMs, U);
        spread(uNode[nodeOfLane[lane]!]!, 0, s, e, uMs, U);
        if (busyBins) spread(busyBins, lane * B, s, e, binMs, B);
      }
      if (taskBins) {
        const k = lane * B + Math.min(B - 1, Math.floor(s / binMs));
        taskBins[k] = Math.min(65_535, taskBins[k]! + c);
      }
      if (!binned) pushBar(bars, lane, s, e - s, oc, I[b]!, c);
      else if (oc !== OK) specialOrder.push(b);
    }
    if (binned) {
      // Failures first, then retries and re-dispatches, up to the limit.
      specialOrder.sort((a, b) => O[b]! - O[a]! || S[a]! - S[b]!);
      for (const b of specialOrder) {
        if (special.lane.length >= o.maxSpecialBars) {
          specialDropped++;
          continue;
        }
        pushBar(special, remap[L[b]!]!, S[b]! - t0, E[b]! - S[b]!, O[b]!, I[b]!, C[b]!);
      }
    }

    // Per-node totals from the final state of each task.
    const counts: Counts = { tasks: 0, ok: 0, failed: 0, retried: 0, redispatched: 0, untimed: this.untimed, records: this.records, bars: nBars };
    const tally = (s: number) => {
      if (s === 0) return;
      counts.tasks++;
      const base = (s - 1) & 3;
      if (base === FAILED) counts.failed++;
      else {
        counts.ok++;
        const extra = (s - 1) >> 2;
        if (extra === RETRIED) counts.retried++;
        else if (extra === REDISPATCHED) counts.redispatched++;
      }
    };
    for (let i = 0; i < this.state.length; i++) tally(this.state[i]!);
    for (const s of this.stateMap.values()) tally(s);

    let totalWorkers = 0;
    let totalCpus = 0;
    let busyAll = 0;
    let busyCore = 0;
    for (const n of nodes) {
      let timedTasks = 0;
      for (let l = n.firstLane; l < n.firstLane + n.laneCount; l++) {
        timedTasks += lanes[l]!.tasks;
        n.busyMs += lanes[l]!.busyMs;
      }
      const pn = this.perNode.get(n.node);
      if (pn) Object.assign(n, { tasks: pn.records, failed: pn.failed, retried: pn.retried, redispatched: pn.redispatched });
      const losses = (this.meta.lost ?? []).filter((x) => x.node === n.node);
      if (losses.length) n.lost = { at: losses[losses.length - 1]!.at, reason: losses[losses.length - 1]!.reason, times: losses.length };
      totalWorkers += n.workers;
      totalCpus += n.cpus;
      busyAll += n.busyMs;
      const coreMs = n.busyMs * (n.cpus / n.workers);
      busyCore += coreMs;
      n.utilization = wallMs > 0 ? n.busyMs / (n.workers * wallMs) : 0;
      n.idleCoreHours = Math.max(0, n.cpus * wallMs - coreMs) / 3.6e6;
      n.meanTaskMs = timedTasks > 0 ? n.busyMs / timedTasks : 0;
    }

    const timeline: Timeline = binned
      ? { mode: 'bins', bins: B, binMs, busy: quantize(busyBins!, binMs), tasks: taskBins!, special, specialDropped }
      : { mode: 'bars', bars };
    const utilization: Utilization = {
      bins: U,
      binMs: uMs,
      overall: Array.from(uAll, (v) => round3(totalWorkers > 0 ? v / (uMs * totalWorkers) : 0)),
      perNode: uNode.map((a, i) => Array.from(a, (v) => round3(v / (uMs * nodes[i]!.workers)))),
    };

    const rel = (r: TaskRow): TaskRow => ({ ...r, start: r.start - t0 });
    const failed = [...this.failedRows.values()].sort((a, b) => a.index - b.index);
    const retries = this.retryRows.sort((a, b) => a.index - b.index);
    const allocCoreHours = (totalCpus * wallMs) / 3.6e6;
    const header: Header = {
      nodes: nodes.length,
      cpus: totalCpus,
      workers: totalWorkers,
      started: anyTime ? t0 : NaN,
      ended: anyTime ? t1 : NaN,
      wallMs,
      tasksPerSec: wallMs > 0 ? counts.tasks / (wallMs / 1000) : 0,
      busyMs: busyAll,
      utilization: wallMs > 0 && totalWorkers > 0 ? busyAll / (totalWorkers * wallMs) : 0,
      allocCoreHours,
      idleCoreHours: Math.max(0, allocCoreHours - busyCore / 3.6e6),
      overheadMs: totalWorkers > 0 ? Math.max(0, wallMs - busyAll / totalWorkers) : 0,
    };
    for (const k of ['command', 'mode', 'jobId', 'fn'] as const) if (m[k] !== undefined) header[k] = m[k];
    if (m.grown?.length) header.grown = [...m.grown];
    const warnings = [...this.warnings];
    if (this.warningsDropped) warnings.push(`… and ${this.warningsDropped} more lines skipped`);
    return {
      version: 1,
      header,
      counts,
      t0: anyTime ? t0 : 0,
      t1: anyTime ? t1 : 0,
      nodes,
      lanes,
      timeline,
      utilization,
      slowest: slowestBars(S, E, O, I, C, L, nBars, o.top, this.laneKeys).map((r) => ({ ...r, start: r.start - t0 })),
      failed: failed.map(rel),
      failedTotal: counts.failed,
      retries: retries.map(rel),
      retriesTotal: this.retriesTotal,
      retriesFailed: this.retriesFailed,
      warnings,
    };
  }
}

/** The report model of records (any iterable, sync or async; metadata lines allowed among them) and optional run metadata. */
export async function buildReport(records: Iterable<unknown> | AsyncIterable<unknown>, meta?: RunMeta, options?: ModelOptions): Promise<ReportModel> {
  const b = new ReportBuilder(options);
  let n = 0;
  for await (const r of records as AsyncIterable<unknown>) b.addLine(r, `record ${++n}`);
  return b.finish(meta);
}

/** The same, for a synchronous iterable. */
export function buildReportSync(records: Iterable<unknown>, meta?: RunMeta, options?: ModelOptions): ReportModel {
  const b = new ReportBuilder(options);
  let n = 0;
  for (const r of records) b.addLine(r, `record ${++n}`);
  return b.finish(meta);
}

/** A task state that records a success. */
const succeeded = (s: number) => s !== 0 && ((s - 1) & 3) === OK;

function pushBar(bars: Bars, lane: number, start: number, dur: number, outcome: number, index: number, count: number): void {
  bars.lane.push(lane);
  bars.start.push(round1(start));
  bars.dur.push(round1(dur));
  bars.outcome.push(outcome);
  bars.index.push(index);
  bars.count.push(count);
}

/** Add the part of [s, e) that falls in each bin of width `w` to `arr[off + bin]`. Exported for tests. */
export function spread(arr: Float64Array, off: number, s: number, e: number, w: number, n: number): void {
  if (!(e > s) || !(w > 0)) return;
  const b0 = Math.min(n - 1, Math.max(0, Math.floor(s / w)));
  const b1 = Math.min(n - 1, Math.max(0, Math.floor(e / w)));
  if (b0 === b1) {
    arr[off + b0]! += e - s;
    return;
  }
  arr[off + b0]! += (b0 + 1) * w - s;
  for (let b = b0 + 1; b < b1; b++) arr[off + b]! += w;
  arr[off + b1]! += e - b1 * w;
}

function quantize(busy: Float64Array, binMs: number): Uint8Array {
  const out = new Uint8Array(busy.length);
  for (let i = 0; i < busy.length; i++) {
    const f = busy[i]! / binMs;
    out[i] = f <= 0 ? 0 : Math.max(1, Math.min(255, Math.round(f * 255)));
  }
  return out;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** The N longest bars, longest first, with their epoch start (the caller makes it relative). */
function slowestBars(S: Float64Array, E: Float64Array, O: Uint8Array, I: Float64Array, C: Uint32Array, L: Uint32Array, n: number, top: number, keys: { node: string; worker: number }[]): TaskRow[] {
  // A min-heap of the best `top` by duration.
  const heap: number[] = [];
  const dur = (b: number) => E[b]! - S[b]!;
  const less = (a: number, b: number) => dur(a) < dur(b) || (dur(a) === dur(b) && I[a]! > I[b]!);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let b = 0; b < n && top > 0; b++) {
    if (heap.length < top) {
      heap.push(b);
      up(heap.length - 1);
    } else if (less(heap[0]!, b)) {
      heap[0] = b;
      down(0);
    }
  }
  return heap
    .sort((a, b) => (less(a, b) ? 1 : -1))
    .map((b) => {
      const k = keys[L[b]!]!;
      return { index: I[b]!, count: C[b]!, node: k.node, worker: k.worker, start: S[b]!, durMs: dur(b), outcome: OUTCOMES[O[b]!] ?? 'ok', attempts: 1 };
    });
}
