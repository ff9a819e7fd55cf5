// The only file that runs inside a worker thread: import the task module once, run chunks.
import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorRecord } from '../errors.js';
import type { ChunkResult, ChunkSpec, ItemFailure } from '../protocol/messages.js';
import type { FromWorker, SharedEntry, ToWorker, WorkerInit } from './thread-messages.js';
import { SHARED_KEY, viewOf } from '../shared.js';
import { SLOT_CHUNK, SLOT_OFFSET, SLOT_STARTED, SLOT_STOP } from './thread-messages.js';
import { decode, decodeListLike, doubleArray, encode, encodeList, encodeListOver, encodeTransferable, loadCodec, ownsBuffer, splitMovable } from '../protocol/codec.js';
import type { CommandResult } from './shell.js';
import { codeWarm } from '../util/code-cache.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const slot = new Float64Array(init.slot);
slot[SLOT_CHUNK] = -1;

type Fn = (...args: unknown[]) => unknown;
let mod: Record<string, unknown> = {};
const fns = new Map<string, Fn | Error>();
let tasksDone = 0;
/** Loaded on the first shell command, so that workers running module tasks never load it. */
let shell: typeof import('./shell.js') | undefined;
const queue: ChunkSpec[][] = [];
let running = false;

/** Shared values on this node, and what each resolved to in this worker (decoded once). */
const shared = new Map<number, { entry: SharedEntry; resolved?: unknown }>();
for (const e of init.shared) shared.set(e.id, { entry: e });
let everShared = shared.size > 0;

function sharedValue(ref: Record<string, unknown>): unknown {
  const id = ref[SHARED_KEY] as number;
  const s = shared.get(id);
  if (!s) throw new Error(`shared value #${id} is not on this node (was it unshared with pool.unshare?)`);
  if (s.resolved === undefined) {
    s.resolved = s.entry.kind === 'bytes' ? viewOf(s.entry.ctor, s.entry.sab) : decode(new Uint8Array(s.entry.sab));
  }
  return s.resolved;
}

function isRef(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[SHARED_KEY] === 'number';
}

/** Replace shared handles in an item: the item itself, the elements of an array item, the values of an object item. */
function resolveShared(item: unknown): unknown {
  if (isRef(item)) return sharedValue(item);
  if (Array.isArray(item)) {
    for (let i = 0; i < item.length; i++) if (isRef(item[i])) item[i] = sharedValue(item[i] as Record<string, unknown>);
  } else if (typeof item === 'object' && item !== null && !ArrayBuffer.isView(item)) {
    const o = item as Record<string, unknown>;
    for (const k in o) if (isRef(o[k])) o[k] = sharedValue(o[k] as Record<string, unknown>);
  }
  return item;
}

/** The task a piece of code runs for: async work a task starts (timers, promises) carries it along. */
const taskContext = new AsyncLocalStorage<{ first: number; last: number; fn: string }>();

// A promise a task rejected after the task returned (nobody awaits it) must not end this thread: that
// would be blamed on whatever task runs next. It is logged, naming the task that started it (the async
// context of the code that rejected it); no task's outcome changes. (An exception thrown by such code,
// in a timer say, still ends the thread, as a crash does: the task running then is retried alone.)
function strayError(what: string, e: unknown): void {
  const t = taskContext.getStore();
  // The context is the chunk's (entering one per item cost 0.05 µs × every item); a chunk of one item names it exactly.
  const items = t ? (t.first === t.last ? `item ${t.first}` : `items ${t.first}–${t.last}`) : '';
  const who = t ? `started by ${t.fn ? `'${t.fn}' on ${items}` : `task ${t.first}`}` : 'not traced to a task';
  const text = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  const node = init.env.SLURMPOOL_NODE ? `node ${init.env.SLURMPOOL_NODE} ` : '';
  process.stderr.write(`slurmpool: ${node}worker ${init.workerIndex}: ${what} (${who}; no task is failed for it): ${text}\n`);
}
process.on('unhandledRejection', (reason) => strayError('a promise rejected with nobody waiting for it', reason));

/** Why a value cannot be encoded, and where in it: a cycle, a Symbol, or what msgpackr said. */
export function unencodable(value: unknown, e: unknown): string {
  // The objects on the path from the result to where the walk is, with where each is.
  const ancestors = new Map<object, string>();
  const walk = (v: unknown, at: string, depth: number): string | null => {
    if (typeof v === 'symbol') return `${at} is a Symbol (${String(v)})`;
    if (v === null || typeof v !== 'object') return null;
    const back = ancestors.get(v);
    if (back !== undefined) return `${at} refers back to ${back}: a circular structure`;
    if (depth > 2000) return `${at} is nested more than 2,000 levels deep`;
    ancestors.set(v, at);
    const entries: [string, unknown][] = v instanceof Map ? [...v.entries()].map(([k, x]) => [`.get(${String(k)})`, x]) : Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x]) : ArrayBuffer.isView(v) ? [] : Object.entries(v).map(([k, x]) => [`.${k}`, x]);
    for (const [k, x] of entries) {
      const why = walk(x, `${at}${k}`, depth + 1);
      if (why) return why;
    }
    ancestors.delete(v);
    return null;
  };
  const why = walk(value, 'the result', 0);
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  return `the task's result (${kind}) could not be encoded to send back: ${why ?? (e instanceof Error ? e.message : String(e))}`;
}

/**
 * Encode a chunk's values. A value msgpack cannot hold (a cycle, a Symbol) fails its own item with a
 * clear error and is sent as undefined; the other items keep their values.
 */
function encodeValues(c: ChunkSpec, values: unknown[], failures: ItemFailure[]): Uint8Array {
  try {
    // Numbers from numbers: written over the chunk's spent items, whose buffer then moves back.
    return encodeListOver(values, c.items);
  } catch {
    const failed = new Set(failures.map((f) => f.offset));
    for (let i = 0; i < values.length; i++) {
      if (failed.has(i)) continue;
      try {
        encode(values[i]);
      } catch (e) {
        failures.push({ offset: i, error: { name: 'ResultNotEncodable', message: `item ${c.start + i}: ${unencodable(values[i], e)}`, kind: 'error' } });
        values[i] = undefined;
      }
    }
    failures.sort((a, b) => a.offset - b.offset);
    if (c.stopOnError && failures.length > 0) values.length = failures[0]!.offset;
    return encodeOwnedList(values);
  }
}

/** Every item of a chunk failed by an error outside its tasks (a bad chunk, an internal error): the thread goes on. */
function chunkFailed(c: ChunkSpec, e: unknown, started: number): ChunkResult {
  const error = toErrorRecord(e, 'error');
  error.message = `this chunk could not be run (items ${c.start}–${c.start + c.count - 1}): ${error.message}`;
  const failures: ItemFailure[] = c.stopOnError ? [{ offset: 0, error }] : Array.from({ length: c.count }, (_, i) => ({ offset: i, error }));
  return { id: c.id, worker: init.workerIndex, values: encodeOwnedList([]), failures, started, ended: Date.now() };
}

/** Flush results at least this often while a batch runs, so finished work is not held back (a batch aims at about 2 ms of work). */
const FLUSH_MS = 2;

function post(msg: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(msg, transfer);
}

/** A chunk's values; they are copied once more into the results message, so no buffer of their own is needed. */
function encodeOwnedList(values: unknown[]): Uint8Array {
  return encodeList(values, false);
}

function postResults(results: ChunkResult[]): void {
  // Large values (a numeric chunk's Float64Array, in a buffer of its own) are moved beside the message, not copied into it.
  const [list, large] = splitMovable(results, 'values', (v) => (ownsBuffer(v) ? v : null));
  const data = encodeTransferable(list);
  const transfer = [data.buffer as ArrayBuffer];
  for (const [, v] of large) transfer.push(v.buffer as ArrayBuffer);
  if (large.length > 0) return post({ t: 'results', data, large }, transfer);
  // Each chunk's id and duration beside the bytes: what the agent needs to forward them unread.
  const head: number[] = new Array(2 * results.length);
  for (let i = 0; i < results.length; i++) {
    head[2 * i] = results[i]!.id;
    head[2 * i + 1] = results[i]!.ended - results[i]!.started;
  }
  post({ t: 'results', data, head }, transfer);
}

function resolveFn(name: string): Fn | Error {
  let f = fns.get(name);
  if (f === undefined) {
    const v = mod[name];
    if (typeof v === 'function') f = v as Fn;
    else {
      const exportsList = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      f = new TypeError(
        v === undefined
          ? `task module ${init.module} has no export named '${name}' (its function exports: ${exportsList.join(', ') || 'none'})`
          : `export '${name}' of task module ${init.module} is not a function (it is ${typeof v})`,
      );
      f.name = 'TypeError';
    }
    fns.set(name, f);
  }
  return f;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

const CANCELLED = { name: 'CancelledError', message: 'not started: the pool was told to start no more tasks', kind: 'cancelled' as const };

/** The pool stopped starting tasks: items from i on are not started; each is reported cancelled (or the first, for map). */
function stopAt(c: ChunkSpec, i: number, n: number, values: unknown[], failures: ItemFailure[]): void {
  for (let k = i; k < n; k++) {
    failures.push({ offset: k, error: CANCELLED });
    if (c.stopOnError) {
      values.length = k;
      return;
    }
    values[k] = undefined;
  }
}

/** Epoch ms with sub-millisecond precision: chunk durations size the next chunks, and tiny ones must not read as 0 or 1 ms. */
const clock = (): number => performance.timeOrigin + performance.now();

/**
 * Run one chunk. Synchronous tasks finish it synchronously (no promise, no microtask turn per chunk:
 * a tiny chunk's round trip is mostly such overhead); a task that returns a promise makes the rest async.
 */
function runChunk(c: ChunkSpec): ChunkResult | Promise<ChunkResult> {
  const started = clock();
  const items = decodeListLike(c.items);
  const n = items.length;
  // Numbers in, most likely numbers out: an array V8 keeps as unboxed doubles from the start (new Array(n) is copied on its first double).
  const values: unknown[] = items instanceof Float64Array ? doubleArray(n) : new Array(n);
  const failures: ItemFailure[] = [];
  slot[SLOT_CHUNK] = c.id;
  if (c.kind === 'shell') return runShellChunk(c, items as unknown[], values, failures, started);
  const fn = resolveFn(c.fn);
  if (fn instanceof Error) {
    failures.push({ offset: 0, error: toErrorRecord(fn) });
    values.length = 0;
    return { id: c.id, worker: init.workerIndex, values: encodeOwnedList(values), failures, started, ended: clock() };
  }
  const context = { first: c.start, last: c.start + n - 1, fn: c.fn };
  if (!c.env) return taskContext.run(context, () => runCalls(c, fn, items, values, failures, started));
  return runPacked(c, context, () => runCalls(c, fn, items, values, failures, started));
}

/**
 * A packed chunk (taskResources): the GPUs and thread counts it was given, in this thread's
 * process.env while it runs (a packed worker runs one chunk at a time), then as they were.
 */
async function runPacked(c: ChunkSpec, context: { first: number; last: number; fn: string }, run: () => ChunkResult | Promise<ChunkResult>): Promise<ChunkResult> {
  const env = c.env!;
  const before = new Map(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await taskContext.run(context, run);
  } finally {
    for (const [k, v] of before) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function runShellChunk(c: ChunkSpec, items: unknown[], values: unknown[], failures: ItemFailure[], started: number): Promise<ChunkResult> {
  const n = items.length;
  for (let i = 0; i < n; i++) {
    if (slot[SLOT_STOP] === 1) {
      stopAt(c, i, n, values, failures);
      break;
    }
    slot[SLOT_OFFSET] = i;
    slot[SLOT_STARTED] = Date.now();
    let r: CommandResult;
    try {
      r = await (shell ??= await import('./shell.js')).runShell(items[i], c.start + i, init.workerIndex, init.env, c.timeoutMs, c.env);
    } catch (e) {
      // Not the command's failure (it has its exit status): the machinery around it. This item fails, the thread goes on.
      failures.push({ offset: i, error: toErrorRecord(e, 'error') });
      values[i] = undefined;
      continue;
    }
    values[i] = r;
    if (r.outputError) {
      failures.push({ offset: i, error: { name: 'OutputError', message: r.outputError.message, ...(r.outputError.code ? { code: r.outputError.code } : {}), kind: 'error' } });
    } else if (r.exitCode !== 0) {
      const why = r.timedOut ? `timed out after ${shell!.timeoutOf(items[i], c.timeoutMs)} ms` : r.signal ? `killed by ${r.signal}` : `exited with status ${r.exitCode}`;
      failures.push({ offset: i, error: { name: 'CommandError', message: `command ${why}: ${r.command}`, kind: r.timedOut ? 'timeout' : 'error' } });
    }
  }
  return chunkDone(c, values, failures, started);
}

/** Item i failed with e: recorded; true when the chunk stops there (map stops at its first failure). */
function failed(c: ChunkSpec, i: number, e: unknown, values: unknown[], failures: ItemFailure[]): boolean {
  failures.push({ offset: i, error: toErrorRecord(e, 'error') });
  if (c.stopOnError) {
    values.length = i;
    return true;
  }
  values[i] = undefined;
  return false;
}

/** Before item i: false when the pool stopped starting tasks (item i on reported cancelled), else the slot says item i runs. */
function mayStart(c: ChunkSpec, i: number, n: number, values: unknown[], failures: ItemFailure[]): boolean {
  if (slot[SLOT_STOP] === 1) {
    stopAt(c, i, n, values, failures);
    return false;
  }
  slot[SLOT_OFFSET] = i;
  if (c.timeoutMs > 0) slot[SLOT_STARTED] = Date.now();
  return true;
}

/** The task on one item (its arguments, for starmap). */
function callOn(c: ChunkSpec, fn: Fn, item: unknown): unknown {
  const x = everShared ? resolveShared(item) : item;
  return c.kind === 'star' ? fn(...(x as unknown[])) : fn(x);
}

function chunkDone(c: ChunkSpec, values: unknown[], failures: ItemFailure[], started: number): ChunkResult {
  return { id: c.id, worker: init.workerIndex, values: encodeValues(c, values, failures), failures, started, ended: clock() };
}

/**
 * The items of a module-function chunk, in order, inside the chunk's async context: synchronously
 * while the task returns plain values, from the first promise on in runCallsAsync.
 */
function runCalls(c: ChunkSpec, fn: Fn, items: unknown[] | Float64Array, values: unknown[], failures: ItemFailure[], started: number): ChunkResult | Promise<ChunkResult> {
  for (let i = 0; i < items.length && mayStart(c, i, items.length, values, failures); i++) {
    try {
      const v = callOn(c, fn, items[i]);
      if (isThenable(v)) return runCallsAsync(c, fn, items, values, failures, started, i, v);
      values[i] = v;
    } catch (e) {
      if (failed(c, i, e, values, failures)) break;
    }
  }
  return chunkDone(c, values, failures, started);
}

/** runCalls from item i on, whose task returned the promise `pending`. */
async function runCallsAsync(c: ChunkSpec, fn: Fn, items: unknown[] | Float64Array, values: unknown[], failures: ItemFailure[], started: number, i: number, pending: PromiseLike<unknown>): Promise<ChunkResult> {
  try {
    values[i] = await pending;
  } catch (e) {
    if (failed(c, i, e, values, failures)) return chunkDone(c, values, failures, started);
  }
  for (i++; i < items.length && mayStart(c, i, items.length, values, failures); i++) {
    try {
      const v = callOn(c, fn, items[i]);
      values[i] = isThenable(v) ? await v : v;
    } catch (e) {
      if (failed(c, i, e, values, failures)) break;
    }
  }
  return chunkDone(c, values, failures, started);
}

/** Results finished but not yet posted (batched with the next ones unless they wait too long). */
let out: ChunkResult[] = [];
let lastFlush = 0;
let flushTimer: NodeJS.Timeout | undefined;

function flushOut(): void {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (out.length === 0) return;
  // Before the first results go (the thread may be terminated any time after): this thread's code cache.
  codeWarm();
  postResults(out);
  out = [];
  lastFlush = clock();
}

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    let batch: ChunkSpec[] | undefined;
    while ((batch = queue.shift()) !== undefined) {
      lastFlush = clock();
      for (let k = 0; k < batch.length; k++) {
        const c = batch[k]!;
        const t = Date.now();
        let r: ChunkResult;
        try {
          const p = runChunk(c);
          // A chunk of synchronous tasks is done already: no microtask turn for it.
          r = p instanceof Promise ? await p : p;
        } catch (e) {
          r = chunkFailed(c, e, t);
        }
        out.push(r);
        tasksDone += c.count;
        if (init.maxTasks > 0 && tasksDone >= init.maxTasks) {
          slot[SLOT_CHUNK] = -1;
          flushOut();
          post({ t: 'retire' });
          // Chunks not run are requeued by the agent when this thread exits.
          process.exit(0);
        }
        // A finished result never waits long behind the next chunk: posted once FLUSH_MS have passed,
        // and by a timer while an asynchronous task runs (a long task must not hold back short ones).
        if (r.ended - lastFlush >= FLUSH_MS) flushOut();
        // The batch's last chunk is flushed just below: no timer to arm and clear (a round trip's worth on a tiny chunk).
        else if (k < batch.length - 1) flushTimer ??= setTimeout(flushOut, FLUSH_MS);
      }
      slot[SLOT_CHUNK] = -1;
      flushOut();
    }
  } finally {
    running = false;
  }
}

async function main(): Promise<void> {
  try {
    if (init.module !== null) {
      const ns = (await import(init.module)) as Record<string, unknown>;
      // CommonJS `module.exports = { name: fn }`: Node names no exports for it, the object is the default.
      const d = ns.default;
      mod = d !== null && typeof d === 'object' && !Array.isArray(d) ? { ...(d as Record<string, unknown>), ...ns } : ns;
    }
    if (init.initializer !== null) {
      const f = mod[init.initializer];
      if (typeof f !== 'function') {
        throw new TypeError(`initializer '${init.initializer}' is not a function exported by ${init.module} (it is ${typeof f})`);
      }
      const r = (f as Fn)(...init.initArgs);
      if (isThenable(r)) await r;
    }
  } catch (e) {
    post({ t: 'initError', error: toErrorRecord(e) });
    return;
  }
  port.on('message', (msg: ToWorker) => {
    if (msg.t === 'batch') {
      const specs = decode(msg.data) as ChunkSpec[];
      for (const [i, items] of msg.large) specs[i]!.items = items;
      queue.push(specs);
      void drain();
    } else if (msg.t === 'share') {
      shared.set(msg.entry.id, { entry: msg.entry });
      everShared = true;
    } else {
      shared.delete(msg.id);
    }
  });
  post({ t: 'ready', exports: Object.fromEntries(Object.keys(mod).map((k) => [k, typeof mod[k]])) });
  // The first batch is on its way: load the codec while it comes, not once it is here.
  setImmediate(loadCodec);
}

void main();
