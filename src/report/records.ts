// What a results file holds, line by line: task records (both spellings) and run metadata, normalised once.

/** How a task ended, as the report colours it. */
export type Outcome = 'ok' | 'retried' | 'redispatched' | 'failed';

/** Outcome codes in the order the report draws them (failed on top). */
export const OUTCOMES: readonly Outcome[] = ['ok', 'retried', 'redispatched', 'failed'];
export const OK = 0;
export const RETRIED = 1;
export const REDISPATCHED = 2;
export const FAILED = 3;

/** A node as the run's metadata describes it. */
export interface MetaNode {
  node: string;
  workers?: number;
  cpus?: number;
}

/** What a run says about itself: a `{"slurmpool": {...}}` line of the results file, or passed in. Every field optional. */
export interface RunMeta {
  version?: number;
  /** The command line that ran, as the user typed it. */
  command?: string;
  /** local, emulate, slurm or ssh. */
  mode?: string;
  jobId?: string;
  /** The task's export name (`map`). */
  fn?: string;
  nodes?: MetaNode[];
  /** Epoch ms. */
  started?: number;
  ended?: number;
  /** Tasks the run was given, when known (progress and ETA in `status`). */
  tasks?: number;
  /** Nodes lost during the run (`{"slurmpool":{"event":"nodeLost",…}}` lines), in file order. */
  lost?: LostNode[];
  /** Jobs submitted to grow the pool (`{"slurmpool":{"event":"grow",…}}` lines, or passed in), in order. */
  grown?: string[];
}

/** A node whose agent was lost mid-run: when, and why. */
export interface LostNode {
  node: string;
  /** Epoch ms. */
  at: number;
  reason: string;
}

/** A task's error as the report keeps it. */
export interface ReportError {
  name: string;
  message: string;
  kind?: string;
  stack?: string;
}

/** One task record, normalised: times in epoch ms (NaN when unknown), an outcome, what ran. */
export interface NormRecord {
  index: number;
  ok: boolean;
  node: string;
  worker: number;
  started: number;
  ended: number;
  attempts: number;
  outcome: number;
  error?: ReportError;
  /** The shell command of a `run` task. */
  what?: string;
  /** The end of a failed task's stderr (its last lines), or where its stderr went (`--log-dir`). */
  stderrTail?: string;
}

/** Lines and characters of stderr a failed task's row keeps. */
export const STDERR_TAIL_LINES = 8;
export const STDERR_TAIL_CHARS = 1000;

/** The last lines of a stderr text, at most STDERR_TAIL_LINES lines and STDERR_TAIL_CHARS characters. */
export function stderrTail(text: string): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  let tail = lines.slice(-STDERR_TAIL_LINES).join('\n');
  if (tail.length > STDERR_TAIL_CHARS) tail = `…${tail.slice(-(STDERR_TAIL_CHARS - 1))}`;
  else if (lines.length > STDERR_TAIL_LINES) tail = `…\n${tail}`;
  return tail;
}

/** A results-file line: metadata, a task record, or why it is neither. */
export type ParsedLine = { kind: 'meta'; meta: RunMeta } | { kind: 'record'; record: NormRecord } | { kind: 'bad'; why: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function time(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? Number(v) : t;
  }
  return NaN;
}

function str(v: unknown, max: number): string {
  const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Run metadata from a `slurmpool` object, keeping only well-typed fields. */
export function metaOf(v: unknown): RunMeta {
  const m: RunMeta = {};
  if (!isObj(v)) return m;
  if (v.event === 'nodeLost') {
    // An event line, not a header: it says only that a node was lost.
    const at = time(v.at);
    if (typeof v.node === 'string' && Number.isFinite(at)) m.lost = [{ node: v.node, at, reason: str(v.reason ?? '', 500) }];
    return m;
  }
  if (v.event === 'grow') {
    // An event line: the pool submitted a job whose nodes join it.
    if (typeof v.job === 'string' || typeof v.job === 'number') m.grown = [String(v.job)];
    return m;
  }
  if (typeof v.version === 'number') m.version = v.version;
  if (typeof v.command === 'string') m.command = v.command;
  else if (Array.isArray(v.command)) m.command = v.command.map(String).join(' ');
  if (typeof v.mode === 'string') m.mode = v.mode;
  if (typeof v.jobId === 'string' || typeof v.jobId === 'number') m.jobId = String(v.jobId);
  if (typeof v.fn === 'string') m.fn = v.fn;
  if (Array.isArray(v.grown)) m.grown = v.grown.map(String);
  const started = time(v.started ?? v.start);
  if (Number.isFinite(started)) m.started = started;
  const ended = time(v.ended ?? v.end);
  if (Number.isFinite(ended)) m.ended = ended;
  if (typeof v.tasks === 'number' && v.tasks >= 0) m.tasks = v.tasks;
  if (Array.isArray(v.nodes)) {
    m.nodes = [];
    for (const n of v.nodes) {
      const name = typeof n === 'string' ? n : isObj(n) && typeof n.node === 'string' ? n.node : null;
      if (name === null) continue;
      const node: MetaNode = { node: name };
      if (isObj(n) && typeof n.workers === 'number' && n.workers > 0) node.workers = Math.floor(n.workers);
      if (isObj(n) && typeof n.cpus === 'number' && n.cpus > 0) node.cpus = n.cpus;
      m.nodes.push(node);
    }
  }
  return m;
}

/** Fill `into` with the fields of `from` (later metadata wins). */
export function mergeMeta(into: RunMeta, from: RunMeta): RunMeta {
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    // Lost nodes add up across the file's lines; every other field: later metadata wins.
    if (k === 'lost') into.lost = [...(into.lost ?? []), ...(v as LostNode[])];
    else if (k === 'grown') into.grown = [...new Set([...(into.grown ?? []), ...(v as string[])])];
    else (into as Obj)[k] = v;
  }
  return into;
}

/** Classify one parsed JSON value of a results file. */
export function classify(v: unknown): ParsedLine {
  if (!isObj(v)) return { kind: 'bad', why: 'not a JSON object' };
  if (isObj(v.slurmpool)) return { kind: 'meta', meta: metaOf(v.slurmpool) };
  const r = normalizeRecord(v);
  return r ? { kind: 'record', record: r } : { kind: 'bad', why: 'not a task record (no numeric "index")' };
}

/** Parse one line; null for a blank line. */
export function parseLine(text: string): ParsedLine | null {
  if (text.trim() === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { kind: 'bad', why: `not JSON (${(e as Error).message})` };
  }
  return classify(v);
}

/**
 * A task record in any spelling the CLI writes (`started`/`ended` or `start`/`end`, shell fields at
 * the top or inside `value`), or null when it has no index. Outcome: failed when not ok; else
 * re-dispatched (flag `redispatched`, or an error of kind `lost` kept on a successful record); else
 * retried (attempts > 1); else ok.
 */
export function normalizeRecord(r: Obj): NormRecord | null {
  if (typeof r.index !== 'number' || !Number.isFinite(r.index)) return null;
  const value = isObj(r.value) ? r.value : undefined;
  const exitCode = typeof r.exitCode === 'number' ? r.exitCode : typeof value?.exitCode === 'number' ? value.exitCode : null;
  const signal = typeof r.signal === 'string' ? r.signal : typeof value?.signal === 'string' ? value.signal : null;
  let started = time(r.started ?? r.start ?? value?.startedAt);
  let ended = time(r.ended ?? r.end);
  if (Number.isNaN(ended) && Number.isFinite(started)) {
    const d = typeof r.durationMs === 'number' ? r.durationMs : typeof value?.durationMs === 'number' ? value.durationMs : NaN;
    ended = started + d;
  }
  if (!(started > 0) || !(ended >= started)) started = ended = NaN;
  const ok = typeof r.ok === 'boolean' ? r.ok : r.error == null && (exitCode === null || exitCode === 0) && signal === null;
  let error: ReportError | undefined;
  if (isObj(r.error)) {
    error = { name: str(r.error.name ?? 'Error', 200), message: str(r.error.message, 2000) };
    if (typeof r.error.kind === 'string') error.kind = r.error.kind;
    if (typeof r.error.stack === 'string') error.stack = str(r.error.stack, 4000);
  } else if (!ok) {
    const why = r.timedOut === true ? 'timed out' : signal ? `killed by ${signal}` : exitCode !== null ? `exited with status ${exitCode}` : 'failed';
    const stderr = str(r.stderr ?? value?.stderr, 100_000).trim().split('\n').pop() ?? '';
    error = { name: 'CommandFailed', message: stderr ? `${why}: ${str(stderr, 500)}` : why };
  }
  const attempts = typeof r.attempts === 'number' && r.attempts >= 1 ? Math.floor(r.attempts) : 1;
  const redispatched = r.redispatched === true || error?.kind === 'lost';
  const outcome = !ok ? FAILED : redispatched ? REDISPATCHED : attempts > 1 ? RETRIED : OK;
  const out: NormRecord = {
    index: r.index,
    ok,
    node: typeof r.node === 'string' && r.node !== '' ? r.node : '?',
    worker: typeof r.worker === 'number' && Number.isInteger(r.worker) && r.worker >= 0 ? r.worker : -1,
    started,
    ended,
    attempts,
    outcome,
  };
  if (error) out.error = error;
  const what = r.command ?? value?.command;
  if (typeof what === 'string') out.what = str(what, 300);
  if (!ok) {
    const stderr = r.stderr ?? value?.stderr;
    const file = r.stderrFile ?? value?.stderrFile;
    if (typeof stderr === 'string' && stderr.trim() !== '') out.stderrTail = stderrTail(stderr);
    else if (typeof file === 'string' && file !== '') out.stderrTail = `(stderr in ${str(file, 500)})`;
  }
  return out;
}
