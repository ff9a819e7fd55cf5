// Sinks turn chunk outcomes into what the caller sees: an ordered array, or an async iterator in input or completion order.
import { TaskError, type ErrorRecord } from './errors.js';
import type { ChunkOutcome, Job, PlacedFailure, Sink } from './scheduler/job.js';
import { doubleArray, recycle } from './protocol/codec.js';

/** The TaskError for the first failure of an outcome. */
export function firstError(o: ChunkOutcome, fn: string): TaskError | null {
  const f = o.failures[0];
  if (!f) return null;
  return new TaskError(f.error, {
    index: o.start + f.offset,
    node: f.node,
    worker: f.worker,
    fn,
    kind: f.error.kind ?? 'error',
    attempts: f.attempts,
  });
}

type Values = ChunkOutcome['values'];

/** Concatenate chunk value lists (arrays, or Float64Arrays for numbers) into one array, in one pass. */
function joinParts(parts: Values[]): unknown[] {
  if (parts.length === 1) return Array.isArray(parts[0]) ? parts[0] : Array.from(parts[0]!);
  if (parts.length <= 1000 && parts.every((p) => Array.isArray(p))) return ([] as unknown[]).concat(...(parts as unknown[][]));
  let n = 0;
  for (const p of parts) n += p.length;
  const out: unknown[] = new Array(n);
  let k = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) out[k++] = p[i];
  return out;
}

/** A Float64Array's numbers as an array. */
function numbersOf(f: Float64Array): unknown[] {
  const a: unknown[] = new Array(f.length);
  for (let i = 0; i < f.length; i++) a[i] = f[i];
  return a;
}

/** Results of a call this long or shorter go straight into one array made at its first numeric chunk (V8 keeps it a flat array of doubles). */
const PREALLOCATE_MAX = 16 * 1024 * 1024;

// Two copies of one loop on purpose: each stays monomorphic (a Float64Array's elements, an array's), the hot one for numeric maps.
function putNumbers(out: unknown[], f: Float64Array, at: number): void {
  for (let i = 0; i < f.length; i++) out[at + i] = f[i];
}

function putValues(out: unknown[], v: ArrayLike<unknown>, at: number): void {
  for (let i = 0; i < v.length; i++) out[at + i] = v[i];
}

/** Collects results in input order into one array (map, starmap). */
export class ArraySink<T> implements Sink {
  readonly promise: Promise<T[]>;
  private resolve!: (v: T[]) => void;
  private reject!: (e: unknown) => void;
  /** Each chunk's values in input order; joined once at the end. */
  private parts: Values[] = [];
  /** Numeric results of an input of known length: each chunk's numbers written here as it comes, so the end has nothing to join. */
  private out: unknown[] | null = null;
  /** Items of the chunks taken so far (where the next one's values go). */
  private filled = 0;
  /** Outcomes that came before an earlier chunk's; made only then (a call of one chunk, apply(), never needs it). */
  private pending: Map<number, ChunkOutcome> | null = null;
  private next = 0;
  private total = -1;
  private inputError: unknown;
  private settled = false;
  job!: Job;

  constructor(private readonly onSettled: (sink: ArraySink<T>) => void) {
    this.promise = new Promise<T[]>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }

  accept(o: ChunkOutcome): void {
    if (this.settled) return;
    if (o.seq !== this.next) {
      (this.pending ??= new Map()).set(o.seq, o);
      return;
    }
    let cur: ChunkOutcome | undefined = o;
    for (; cur !== undefined; cur = this.pending?.get(this.next)) {
      this.pending?.delete(this.next);
      this.next++;
      if (!cur.skipped) this.job.consumed(cur.size);
      const err = firstError(cur, this.job.spec.fn);
      if (err) return this.finish(err);
      if (!cur.skipped) this.take(cur.values);
    }
    this.check();
  }

  /** The values of the next chunk in input order. */
  private take(v: Values): void {
    if (this.out === null && v instanceof Float64Array) {
      const n = this.job.length;
      if (n !== null && n <= PREALLOCATE_MAX) {
        // Numbers arrive as a Float64Array: written into the one result array now, while later chunks
        // still run, so the end has nothing left to do.
        this.out = doubleArray(n);
        for (const p of this.parts) this.put(p);
        this.parts = [];
      }
    }
    if (this.out !== null) return this.put(v);
    // Otherwise made an array now, so the end has only a concat (a builtin copy) to do.
    this.parts.push(v instanceof Float64Array ? numbersOf(v) : v);
  }

  private put(v: Values): void {
    if (v instanceof Float64Array) {
      putNumbers(this.out!, v, this.filled);
      // Copied out: its buffer (moved here from the worker) carries the next chunk's numbers.
      recycle(v);
    } else putValues(this.out!, v, this.filled);
    this.filled += v.length;
  }

  inputEnded(chunks: number, error?: unknown): void {
    this.total = chunks;
    this.inputError = error;
    this.check();
  }

  abort(error: Error): void {
    this.finish(error);
  }

  /** The caller aborted: reject now. */
  cancel(error: Error): void {
    this.finish(error);
  }

  private check(): void {
    if (this.total >= 0 && this.next >= this.total) {
      if (this.inputError !== undefined) this.finish(this.inputError);
      else this.finish(null);
    }
  }

  private finish(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled(this);
    if (err) this.reject(err);
    else this.resolve((this.out ?? joinParts(this.parts)) as T[]);
  }
}

/** Yields results one by one, in input order (imap) or completion order (imapUnordered). */
export class IterSink<T> implements Sink, AsyncIterableIterator<T> {
  private readonly pending = new Map<number, ChunkOutcome>();
  private readonly ready: ChunkOutcome[] = [];
  private cur: ChunkOutcome | null = null;
  private pos = 0;
  private next_ = 0;
  private delivered = 0;
  private total = -1;
  private inputError: unknown;
  private failure: unknown;
  private finished = false;
  private waiter: (() => void) | null = null;
  /** Chunks received so far (delivered, ready or waiting for an earlier one). */
  private received = 0;
  /** Set by drain(): results are taken off the pipeline as they arrive, so the call ends without a reader. */
  private draining = false;
  private notified = false;
  /** A failed chunk is ready with every chunk before it: a reader stops there, so later ones do not matter. */
  private failedInOrder = false;
  /** Outcomes whose items were already counted as consumed (drain takes them before the reader does). */
  private readonly released = new WeakSet<ChunkOutcome>();
  job!: Job;

  constructor(
    private readonly ordered: boolean,
    private readonly onSettled: (sink: IterSink<T>) => void,
  ) {}

  accept(o: ChunkOutcome): void {
    if (this.finished) return;
    this.received++;
    if (this.draining) this.release(o);
    if (this.ordered) {
      this.pending.set(o.seq, o);
      let c: ChunkOutcome | undefined;
      while ((c = this.pending.get(this.next_)) !== undefined) {
        this.pending.delete(this.next_);
        this.next_++;
        this.ready.push(c);
        if (c.failures.length > 0) this.failedInOrder = true;
      }
    } else {
      this.ready.push(o);
      if (o.failures.length > 0) this.failedInOrder = true;
    }
    this.wakeUp();
    this.checkDrained();
  }

  inputEnded(chunks: number, error?: unknown): void {
    this.total = chunks;
    this.inputError = error;
    this.wakeUp();
    this.checkDrained();
  }

  abort(error: Error): void {
    if (this.failure === undefined) this.failure = error;
    this.wakeUp();
    this.checkDrained();
  }

  /**
   * The pool is closing: stop waiting for a reader. Results are kept for a reader that comes later,
   * but no longer hold back the input, and the call counts as done for close() once every chunk is in.
   */
  drain(): void {
    if (this.finished || this.draining) return;
    this.draining = true;
    if (this.cur) this.release(this.cur);
    for (const o of this.ready) this.release(o);
    for (const o of this.pending.values()) this.release(o);
    this.checkDrained();
  }

  /** The caller aborted: the next read throws `error`, whatever is buffered; the call is done for the pool. */
  cancel(error: Error): void {
    if (this.finished) return;
    this.failure = error;
    this.cur = null;
    this.ready.length = 0;
    this.pending.clear();
    this.wakeUp();
    this.notify();
  }

  /** Nobody will read on (the pool is disposed): drop what is buffered and cancel what runs, as a break would. */
  abandon(): void {
    this.end();
  }

  private release(o: ChunkOutcome): void {
    if (this.released.has(o)) return;
    this.released.add(o);
    if (!o.skipped) this.job.consumed(o.size);
  }

  /** While draining: tell the pool once nothing more will arrive (all chunks in, a failure that stops the call, or an abort). */
  private checkDrained(): void {
    if (!this.draining || this.notified) return;
    const stopped = this.failedInOrder && this.job.spec.stopOnError;
    if (stopped || this.failure !== undefined || (this.total >= 0 && this.received >= this.total)) this.notify();
  }

  private notify(): void {
    if (this.notified) return;
    this.notified = true;
    this.onSettled(this);
  }

  private wakeUp(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.finished) return { done: true, value: undefined };
      if (this.cur) {
        const c = this.cur;
        if (this.pos < c.values.length) {
          const v = c.values[this.pos++] as T;
          return { done: false, value: v };
        }
        this.cur = null;
        this.delivered++;
        this.release(c);
        const err = firstError(c, this.job.spec.fn);
        if (err) {
          this.end();
          throw err;
        }
        continue;
      }
      const nxt = this.ready.shift();
      if (nxt) {
        this.cur = nxt;
        this.pos = 0;
        continue;
      }
      if (this.failure !== undefined) {
        this.end();
        throw this.failure;
      }
      if (this.total >= 0 && this.delivered >= this.total) {
        this.end();
        if (this.inputError !== undefined) throw this.inputError;
        return { done: true, value: undefined };
      }
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** The consumer stopped early (break): cancel what is in flight and stop reading the input. */
  async return(): Promise<IteratorResult<T>> {
    this.end();
    return { done: true, value: undefined };
  }

  async throw(e?: unknown): Promise<IteratorResult<T>> {
    this.end();
    throw e;
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    this.ready.length = 0;
    this.pending.clear();
    this.notify();
  }
}

/** One task's outcome as the CLI writes it: never thrown, always recorded. */
export interface TaskRecord {
  index: number;
  ok: boolean;
  value?: unknown;
  error?: ErrorRecord;
  node: string;
  worker: number;
  started: number;
  ended: number;
  attempts: number;
  /** It ran again because a node it had been sent to was lost. */
  redispatched?: boolean;
}

/** Records for every item of a chunk outcome, in item order. */
export function recordsOf(o: ChunkOutcome): TaskRecord[] {
  const out: TaskRecord[] = [];
  const failures = new Map<number, PlacedFailure>();
  for (const f of o.failures) failures.set(f.offset, f);
  for (let i = 0; i < o.size; i++) {
    // The last placement of an item is where it ran last (an item retried after failing has several).
    let part: (typeof o.parts)[number] | undefined;
    for (let k = o.parts.length - 1; k >= 0 && !part; k--) if (i >= o.parts[k]!.offset && i < o.parts[k]!.offset + o.parts[k]!.count) part = o.parts[k];
    const f = failures.get(i);
    if (f) {
      out.push({ index: o.start + i, ok: false, ...(i < o.values.length && o.values[i] !== undefined ? { value: o.values[i] } : {}), error: f.error, node: f.node, worker: f.worker, started: part?.started ?? 0, ended: part?.ended ?? 0, attempts: f.attempts });
    } else if (i < o.values.length && part) {
      out.push({ index: o.start + i, ok: true, value: o.values[i], node: part.node, worker: part.worker, started: part.started, ended: part.ended, attempts: part.attempts, ...(part.redispatched ? { redispatched: true } : {}) });
    }
  }
  return out;
}

/** Yields a TaskRecord per item in completion order; failures are records, not exceptions. */
export class RecordSink implements Sink, AsyncIterableIterator<TaskRecord> {
  private readonly inner: IterSink<TaskRecord>;
  private job_!: Job;

  constructor(onSettled: (sink: RecordSink) => void) {
    this.inner = new IterSink<TaskRecord>(false, () => onSettled(this));
  }

  accept(o: ChunkOutcome): void {
    // Re-shape the outcome as one of records with no failures, so the iterator never throws for a task.
    const records = o.skipped ? [] : recordsOf(o);
    this.inner.accept({ ...o, values: records, failures: [] });
  }

  inputEnded(chunks: number, error?: unknown): void {
    this.inner.inputEnded(chunks, error);
  }

  abort(error: Error): void {
    this.inner.abort(error);
  }

  drain(): void {
    this.inner.drain();
  }

  cancel(error: Error): void {
    this.inner.cancel(error);
  }

  abandon(): void {
    this.inner.abandon();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TaskRecord> {
    return this;
  }

  get job(): Job {
    return this.job_;
  }

  set job(j: Job) {
    this.job_ = j;
    this.inner.job = j;
  }

  next(): Promise<IteratorResult<TaskRecord>> {
    return this.inner.next();
  }

  return(): Promise<IteratorResult<TaskRecord>> {
    return this.inner.return();
  }
}
