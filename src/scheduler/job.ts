// One call of map/imap/imapUnordered/starmap: reads its input lazily, cuts chunks, hands outcomes to a sink.
import type { ItemFailure, TaskKind } from '../protocol/messages.js';
import { ADAPTIVE_MAX, adaptiveChunksize, autoChunksize, chunkTargetMs, durationChunksize, ItemTime } from './chunking.js';
import { floatList, NUMERIC_MIN, recycle } from '../protocol/codec.js';

/** Where one part of a chunk ran. A chunk split after a worker death has several parts. */
export interface Placement {
  offset: number;
  count: number;
  node: string;
  worker: number;
  started: number;
  ended: number;
  /** 1, or more when this part ran again after its worker or node was lost. */
  attempts: number;
  /** It ran again because a node it had been sent to was lost (not because a worker died on it). */
  redispatched?: boolean;
}

export interface PlacedFailure extends ItemFailure {
  node: string;
  worker: number;
  attempts: number;
}

/** The final outcome of a chunk, after retries. */
export interface ChunkOutcome {
  seq: number;
  start: number;
  /** values[i] is the result of item start+i; shorter when the chunk stopped at a failure. A numeric list may be a Float64Array. */
  values: ArrayLike<unknown> & { length: number };
  failures: PlacedFailure[];
  parts: Placement[];
  size: number;
  /** Every item was finished in an earlier run (resume): nothing ran. */
  skipped?: boolean;
}

export interface Sink {
  /** A chunk is final. Called in completion order. */
  accept(o: ChunkOutcome): void;
  /** No more chunks will be created: `chunks` in all; `error` if reading the input threw. */
  inputEnded(chunks: number, error?: unknown): void;
  /** The job cannot finish (pool terminated, all nodes lost). */
  abort(error: Error): void;
}

export interface JobSpec {
  fn: string;
  kind: TaskKind;
  /** 0 = automatic. */
  chunksize: number;
  stopOnError: boolean;
  timeoutMs: number;
  /** Skip these input indices (resume). */
  skip?: ReadonlySet<number>;
  /** Times a failed item (not cancelled, not lost) runs again before its failure is final; shares the worker-death budget. */
  retryFailed?: number;
}

export type Input = Iterable<unknown> | AsyncIterable<unknown>;

/** A chunk's items: a list, or a view of a numeric input's one Float64Array. */
export type ChunkItems = unknown[] | Float64Array;

interface Source {
  length: number | null;
  /** Up to `n` items synchronously; [] when none are ready now. */
  read(n: number): ChunkItems;
  done: boolean;
  error: unknown;
  close(): void;
  /** The call is over: let go of what the source holds. */
  release?(): void;
}

/** A mean over a stream of numbers. */
export class RunningMean {
  count = 0;
  mean = 0;
  add(x: number): void {
    this.count++;
    this.mean += (x - this.mean) / this.count;
  }
}

let nextJobId = 1;

/** Chunks after the probes whose durations must be known before automatic chunks are handed out freely. */
const SLOW_START_SAMPLES = 1;

/**
 * Items read ahead of the consumer from an input of unknown length: up to four chunks per worker,
 * and at most LAZY_WINDOW_BASE + LAZY_WINDOW_PER_WORKER × workers items (so memory is bounded per
 * worker, and 16,000 workers are not held to the window of 2).
 */
export const LAZY_WINDOW_BASE = 4096;
export const LAZY_WINDOW_PER_WORKER = 1024;

/** A map call in progress. */
export class Job {
  readonly id = nextJobId++;
  private seq = 0;
  private nextStart = 0;
  private chunksize: number;
  private readonly adaptive: boolean;
  /** Automatic size for a known length: from learned item durations, capped by multiprocessing's rule. */
  private readonly timed: boolean;
  private readonly cap: number;
  private readonly itemTime = new ItemTime();
  /** The probes' own times: a worker's first call is cold (imports, JIT), so they only size the first chunks after them. */
  private readonly probeTime = new ItemTime();
  /** Chunks handed out and not final yet: while few durations are known, at most two per worker (slow start). */
  private inFlightChunks = 0;
  /** Chunks made before any duration was learned: a probe of one item per worker. */
  private probes = 0;
  /** Some chunk of this call reached its final outcome (even a failure): probing is over. */
  private anyFinished = false;
  private readonly workers: number;
  private inFlightItems = 0;
  private ended = false;
  cancelled = false;
  /** Durations of this call's finished chunks, for straggler detection. */
  readonly chunkMs = new RunningMean();
  private readonly source: Source;

  constructor(
    readonly spec: JobSpec,
    input: Input,
    readonly sink: Sink,
    /** Called when input that was not ready becomes ready. */
    private readonly wake: () => void,
    /** Total workers right now, for the automatic chunk size. */
    workers: number,
  ) {
    this.source = makeSource(input, wake);
    this.adaptive = spec.chunksize <= 0 && this.source.length === null;
    this.timed = spec.chunksize <= 0 && this.source.length !== null;
    this.cap = this.timed ? autoChunksize(this.source.length!, workers) : ADAPTIVE_MAX;
    this.workers = Math.max(1, workers);
    // Automatic sizes start at one item (durations unknown) and follow what items take.
    this.chunksize = spec.chunksize > 0 ? spec.chunksize : 1;
  }

  /**
   * What earlier calls of the same function learned of its items' durations: no probes and no slow
   * start, the first chunks sized from it (a pool that maps the same function again starts at speed).
   */
  seed(prior: ItemTime): void {
    if (this.spec.chunksize > 0 || prior.count < SLOW_START_SAMPLES || this.seq > 0) return;
    this.itemTime.absorb(prior);
    const target = chunkTargetMs(this.workers);
    this.chunksize = this.timed ? durationChunksize(this.itemTime, this.cap, target) : Math.min(ADAPTIVE_MAX, durationChunksize(this.itemTime, ADAPTIVE_MAX, target));
  }

  /** What this call learned of its items' durations (for the next call of the same function). */
  get learned(): ItemTime {
    return this.itemTime;
  }

  /**
   * Items read from a lazy input but not yet consumed downstream may not exceed this, so that an
   * endless generator is read only a bounded distance ahead of its consumer.
   */
  private window(workers: number): number {
    const w = Math.max(1, workers);
    return Math.max(64, Math.min(this.chunksize * w * 4, LAZY_WINDOW_BASE + LAZY_WINDOW_PER_WORKER * w));
  }

  /** The next chunk's input, or null when none can be made now. */
  take(workers: number): { seq: number; start: number; items: ChunkItems } | null {
    if (this.ended || this.cancelled) return null;
    if (this.source.length === null && this.inFlightItems >= this.window(workers)) return null;
    // Automatic sizes: until the first chunk's duration is known, one single-item probe per worker.
    if (this.spec.chunksize <= 0) {
      const w = Math.max(this.workers, workers);
      // Until a duration is known, one single-item probe per worker; then, until three chunks after the
      // probes are known, at most two chunks per worker at the provisional size (slow start): never a
      // burst of thousands of chunks sized from one cold call.
      if (this.probeTime.count === 0 && this.itemTime.count === 0 && !this.anyFinished && this.probes >= w) return null;
      if (this.itemTime.count < SLOW_START_SAMPLES && this.inFlightChunks >= 2 * w) return null;
    }
    for (;;) {
      const items = this.source.read(this.chunksize);
      if (items.length === 0) {
        if (this.source.done) this.endInput();
        return null;
      }
      const start = this.nextStart;
      this.nextStart += items.length;
      if (this.spec.skip && this.spec.skip.size > 0) {
        // Resume: chunks made only of finished items are not run; mixed ones run whole.
        let all = true;
        for (let i = 0; i < items.length && all; i++) all = this.spec.skip.has(start + i);
        if (all) {
          const seq = this.seq++;
          this.sink.accept({ seq, start, values: [], failures: [], parts: [], size: items.length, skipped: true });
          continue;
        }
      }
      this.inFlightItems += items.length;
      if (this.itemTime.count === 0 && this.probeTime.count === 0) this.probes++;
      this.inFlightChunks++;
      return { seq: this.seq++, start, items };
    }
  }

  /** Chunks still to be made from an input of known length (an estimate at the current size); null when the length is unknown. */
  backlog(): number | null {
    if (this.ended || this.cancelled) return 0;
    if (this.source.length === null) return null;
    return Math.ceil(Math.max(0, this.source.length - this.nextStart) / this.chunksize);
  }

  /** Items of the whole input when known (an array, a sized iterable); null for a lazy one. */
  get length(): number | null {
    return this.source.length;
  }

  /** Items not read from the input yet: Infinity when its length is unknown (the grower's backlog). */
  get unread(): number {
    if (this.ended || this.cancelled) return 0;
    if (this.source.length === null) return Infinity;
    return Math.max(0, this.source.length - this.nextStart);
  }

  /** Read no more input: the chunks made so far are all there will be. */
  endInputNow(): void {
    this.source.close();
    this.endInput();
  }

  private endInput(): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.inputEnded(this.seq, this.source.error);
  }

  /** Learn from a finished chunk; adaptive chunk sizes grow toward the target duration. */
  learn(items: number, ms: number): void {
    if (items <= 0 || this.spec.chunksize > 0) return;
    // The first samples are the probes' (cold calls): kept apart, used only until later chunks report.
    if (this.probeTime.count < this.probes && this.itemTime.count === 0) this.probeTime.add(ms / items, items);
    else this.itemTime.add(ms / items, items);
    const t = this.itemTime.count > 0 ? this.itemTime : this.probeTime;
    const target = chunkTargetMs(this.workers);
    if (this.timed) this.chunksize = durationChunksize(t, this.cap, target);
    else if (this.adaptive) this.chunksize = Math.min(adaptiveChunksize(this.chunksize, t.planning), durationChunksize(t, ADAPTIVE_MAX, target));
  }

  /** A chunk of this call is final (whatever its outcome). */
  finished(): void {
    this.inFlightChunks--;
    if (this.itemTime.count < SLOW_START_SAMPLES) this.wake();
    if (!this.anyFinished) {
      this.anyFinished = true;
      this.wake();
    }
  }

  /** Items have left the pipeline (consumed, or the chunk was final); more may be read. */
  consumed(items: number): void {
    this.inFlightItems -= items;
    if (this.source.length === null) this.wake();
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.source.close();
    // After the commands of this turn (a send already decided encodes its chunk now).
    const source = this.source;
    if (source.release) queueMicrotask(() => source.release!());
  }

  get exhausted(): boolean {
    return this.ended;
  }
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** A typed array of numbers: any but DataView, BigInt64Array and BigUint64Array. */
type NumberView = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

function isNumberView(v: unknown): v is NumberView {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

/**
 * An array's items as one Float64Array when every one is a number (copied in the pass that checks
 * them), else null. A typed array of numbers always is.
 */
function numericCopy(input: unknown[] | NumberView): Float64Array | null {
  if (isNumberView(input)) {
    const f = floatList(input.length);
    f.set(input);
    return f;
  }
  const n = input.length;
  if (n < NUMERIC_MIN || typeof input[0] !== 'number' || typeof input[n - 1] !== 'number') return null;
  // Its own loop, not one shared with codec's encodeNumbers: the shared one cost the main thread
  // about 4 ms more per 200,000 numbers (bench/cpu.mjs w1, 8 interleaved runs; likely its element
  // accesses turning polymorphic over the different lists it is given).
  const f = floatList(n);
  for (let i = 0; i < n; i++) {
    const v = input[i];
    if (typeof v !== 'number') {
      recycle(f);
      return null;
    }
    f[i] = v;
  }
  return f;
}

/**
 * An array (or typed array) is read when the call is made, so that changing it afterwards (while
 * the call runs, or after it returns) changes nothing the call runs: numbers are copied into one
 * Float64Array whose chunks are views of it (encoded with one copy each, no per-chunk list), any
 * other array is copied (a shallow copy: the items themselves are not).
 */
class ArraySource implements Source {
  readonly length: number;
  done: boolean;
  error: unknown = undefined;
  private pos = 0;
  private readonly numbers: Float64Array | null;
  private readonly list: unknown[] | Float64Array;
  /** The call is over: no chunk is cut from it again (those sent were copied; parts to retry are slices). Only numbers hold a buffer to give back. */
  readonly release: (() => void) | undefined;

  constructor(input: unknown[] | NumberView) {
    const numbers = numericCopy(input);
    this.numbers = numbers;
    this.list = numbers ?? (input as unknown[]).slice();
    this.length = this.list.length;
    this.done = this.length === 0;
    this.release = numbers ? () => recycle(numbers) : undefined;
  }

  read(n: number): ChunkItems {
    const { pos, length, numbers } = this;
    const end = Math.min(length, pos + n);
    let out: ChunkItems;
    if (numbers === null) out = (this.list as unknown[]).slice(pos, end);
    else if (end - pos >= NUMERIC_MIN) out = numbers.subarray(pos, end);
    else {
      // Short chunks (chunksize 1) travel as plain lists, as they always did.
      out = new Array<unknown>(end - pos);
      for (let i = pos; i < end; i++) out[i - pos] = numbers[i];
    }
    this.pos = end;
    if (end >= length) this.done = true;
    return out;
  }

  close(): void {
    this.pos = this.length;
    this.done = true;
  }
}

function makeSource(input: Input, wake: () => void): Source {
  if (Array.isArray(input) || isNumberView(input)) return new ArraySource(input);
  if (isAsyncIterable(input)) return asyncSource(input[Symbol.asyncIterator](), wake);
  if (input !== null && typeof input === 'object' && typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const sized = input as { length?: unknown; size?: unknown };
    const len = typeof sized.length === 'number' ? sized.length : typeof sized.size === 'number' ? sized.size : null;
    const it = (input as Iterable<unknown>)[Symbol.iterator]();
    const src: Source = {
      length: len,
      read(n) {
        const out: unknown[] = [];
        if (src.done) return out;
        try {
          while (out.length < n) {
            const r = it.next();
            if (r.done) {
              src.done = true;
              break;
            }
            out.push(r.value);
          }
        } catch (e) {
          src.error = e;
          src.done = true;
        }
        return out;
      },
      done: false,
      error: undefined,
      close() {
        if (src.done) return;
        src.done = true;
        try {
          it.return?.();
        } catch {
          // the iterator's own cleanup failed; nothing more to read either way
        }
      },
    };
    return src;
  }
  throw new TypeError(`input must be an array, an iterable or an async iterable, got ${input === null ? 'null' : typeof input}`);
}

function asyncSource(it: AsyncIterator<unknown>, wake: () => void): Source {
  const buf: unknown[] = [];
  let reading = false;
  let want = 1;
  const src: Source = {
    length: null,
    read(n) {
      want = n;
      if (buf.length >= n || (src.done && buf.length > 0)) return buf.splice(0, n);
      if (!reading && !src.done) void fill();
      return [];
    },
    done: false,
    error: undefined,
    close() {
      if (src.done) return;
      src.done = true;
      buf.length = 0;
      void Promise.resolve()
        .then(() => it.return?.())
        .catch(() => undefined);
    },
  };
  async function fill(): Promise<void> {
    reading = true;
    try {
      while (!src.done && buf.length < want) {
        const r = await it.next();
        if (src.done) break;
        if (r.done) {
          src.done = true;
          break;
        }
        buf.push(r.value);
      }
    } catch (e) {
      src.error = e;
      src.done = true;
    } finally {
      reading = false;
    }
    wake();
  }
  // `done` means the iterator ended; items may still sit in buf. Report done only once buf is empty.
  return new Proxy(src, {
    get(target, prop, receiver) {
      if (prop === 'done') return target.done && buf.length === 0;
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}
