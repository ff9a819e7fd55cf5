// The threads of one node: start them, feed them batches of chunks, replace the ones that die.
import { Worker } from 'node:worker_threads';
import { toErrorRecord, type ErrorRecord } from '../errors.js';
import type { ChunkResult, ChunkSpec } from '../protocol/messages.js';
import type { FromWorker, SharedEntry, ToWorker, WorkerInit } from './thread-messages.js';
import { decode, EMPTY_VALUES, encodeList, encodeTransferable, ownCopy, ownsBuffer, splitMovable } from '../protocol/codec.js';
import { Ledger, type Need } from './packing.js';
import { SLOT_CHUNK, SLOT_LENGTH, SLOT_OFFSET, SLOT_STARTED, SLOT_STOP } from './thread-messages.js';
import { withWorkerFlags } from './exec-argv.js';
import { batchLength, batchShape, perBatch, PIPELINE_BELOW_MS, PREFETCH_BELOW_MS } from './batching.js';
// Types only: python-slot.js loads only for a .py task module (PythonSlots.load), not in every JS pool.
import type { PythonWorker } from './python-slot.js';
import type { PythonSlots } from './python-process.js';

const WORKER_FILE = new URL('./worker.js', import.meta.url);

/** The round trip to the coordinator that a node's extra credits hide, for chunks longer than that. */
const ROUND_TRIP_MS = 2;
/** Worker deaths in a row with no chunk finished in between, before the node gives up. */
const MAX_DEATHS_IN_A_ROW = 20;

export interface WorkerPoolOptions {
  size: number;
  module: string | null;
  initializer: string | null;
  initArgs: unknown[];
  maxTasksPerWorker: number;
  maxHeapMB: number;
  env: Record<string, string>;
  /** Shared values already on this node. */
  shared: SharedEntry[];
  /** Variables of worker slot i over `env` (its own GPUs), kept by the workers that replace it. */
  slotEnv?: (index: number) => Record<string, string>;
  /**
   * Tasks carry their own CPU and GPU requests (chunks with `need`, else `defaults`): a chunk starts
   * only on an idle worker and when the node's ledger has its CPUs and GPUs free (packing.ts's policy);
   * `envFor` gives the variables of the GPUs and CPUs it was given.
   */
  packing?: { cpus: number; gpus: number; node: string; defaults: Need; envFor: (need: Need, gpus: number[]) => Record<string, string> };
  /** Run each slot as a Python interpreter instead of a worker thread (a .py task module). */
  python?: PythonSlots | null;
}

export interface WorkerPoolSink {
  results(results: ChunkResult[]): void;
  /**
   * Results as the worker encoded them (a msgpack array of ChunkResult), for a sink that forwards
   * them unread: given only when none was cancelled; false sends them back through `results`.
   */
  encoded?(data: Uint8Array, ids: number[]): boolean;
  /**
   * Chunks this node cannot run again from its own copy: their items were moved to a worker (not
   * copied) and it died before starting them. The coordinator sends them again.
   */
  handBack(ids: number[]): void;
  /** The pool cannot go on (workers keep dying at start). */
  fatal(error: ErrorRecord): void;
}

interface Slot {
  index: number;
  worker: Worker | PythonWorker;
  slot: Float64Array;
  assigned: Map<number, ChunkSpec>;
  ready: boolean;
  retiring: boolean;
  killedFor: { offset: number; chunk: number; error: ErrorRecord } | null;
  error: unknown;
  /** Python slots: batches sent and not finished (number → chunks not finished), oldest first; the one asked back. */
  batches: Map<number, Set<number>>;
  takingBack: number;
}

export class WorkerPool {
  private readonly slots: (Slot | null)[];
  private readonly queue: ChunkSpec[] = [];
  private qHead = 0;
  /** Mean chunk duration per call (job id), learned from results: batches are sized per call. */
  private readonly chunkMs = new Map<number, number>();
  /**
   * Mean time of one item per function (any call of it), learned from results: a new call's chunks
   * are sized from it until their own durations are known, so that a loop of apply() calls of a
   * function known to be quick is batched (and a Python interpreter pipelines it) from its first chunk.
   */
  private readonly fnItemMs = new Map<string, number>();
  private lastJob = -1;
  private deathsInARow = 0;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  private exits: Promise<void>[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly shared = new Map<number, SharedEntry>();
  /** With packing: the node's CPUs and GPUs, and what each running chunk holds of them. */
  private readonly ledger: Ledger | null;
  private readonly holding = new Map<number, { cpus: number; gpus: number[] }>();

  constructor(
    private readonly opts: WorkerPoolOptions,
    private readonly sink: WorkerPoolSink,
  ) {
    this.slots = new Array<Slot | null>(opts.size).fill(null);
    for (const e of opts.shared) this.shared.set(e.id, e);
    this.ledger = opts.packing ? new Ledger(opts.packing.cpus, opts.packing.gpus) : null;
  }

  /** A chunk ended or left its worker: what it held is free again. */
  private release(id: number): void {
    const h = this.holding.get(id);
    if (!h) return;
    this.holding.delete(id);
    this.ledger!.release(h.cpus, h.gpus);
  }

  /** Make a shared value visible to every worker (no copy: the SharedArrayBuffer itself is shared). */
  share(entry: SharedEntry): void {
    this.shared.set(entry.id, entry);
    const msg: ToWorker = { t: 'share', entry };
    for (const s of this.slots) if (s) s.worker.postMessage(msg);
  }

  /** Forget a shared value; workers drop their views, and the memory goes with the last one. */
  unshare(id: number): void {
    this.shared.delete(id);
    const msg: ToWorker = { t: 'unshare', id };
    for (const s of this.slots) if (s) s.worker.postMessage(msg);
  }

  /** The task module's exports (name → typeof), as the first worker to import it saw them. */
  exports: Record<string, string> | null = null;

  get size(): number {
    return this.opts.size;
  }

  /**
   * Start every worker; resolves as soon as one has imported the module and run the initializer
   * (its exports are then known), so the first chunk does not wait for the others, which go on
   * starting and take chunks as they become ready. A worker failing to start before any is ready
   * rejects (and stops them all); one failing after that is reported through sink.fatal, as before.
   */
  async start(): Promise<void> {
    const python = this.opts.python;
    let first = false;
    try {
      if (python) {
        // The interpreters start first, then get their init frames (the codec loads for them): their
        // start is the longest part of a Python pool's, and python-slot.ts loads meanwhile. No
        // interpreter found: thrown here.
        python.prestart(Array.from({ length: this.opts.size }, (_, i) => this.initOf(i)));
        await python.load();
        if (this.closing) throw new Error('the worker pool was stopped while it started');
      }
      await new Promise<void>((resolve, reject) => {
        const watch = (p: Promise<void>) =>
          p.then(
            () => {
              first = true;
              resolve();
            },
            (e: unknown) => {
              // Once one is ready, a later failure is the 'initError' handler's (sink.fatal) or a respawn's.
              if (!first) reject(e);
            },
          );
        for (let i = 0; i < this.opts.size; i++) watch(this.spawn(i));
      });
    } catch (e) {
      await this.terminate();
      throw e;
    }
  }

  /**
   * How many chunks this node wants outstanding, given what it has learned of their duration: one
   * per worker while the duration is unknown or long (so no chunk waits here while a worker
   * elsewhere idles), plus enough to hide the round trip to the coordinator for short ones, and two
   * whole batches per worker for tiny ones.
   */
  wantedCredits(): number {
    const ms = this.chunkMs.get(this.lastJob);
    const size = this.opts.size;
    // Packed tasks wait here for their CPUs and GPUs: no more of them than workers to run them.
    if (ms === undefined || this.ledger) return size;
    if (ms < PREFETCH_BELOW_MS) return size * (2 * perBatch(ms) + 1);
    // Python: one batch running and one waiting in each interpreter.
    if (this.opts.python && ms < PIPELINE_BELOW_MS) return 2 * size + Math.floor((size * ROUND_TRIP_MS) / ms);
    return size + Math.floor((size * ROUND_TRIP_MS) / ms);
  }

  /** Set by unqueue: no batch is taken back from an interpreter any more (see takeBack). */
  private windingDown = false;

  /** Set once the pool stops starting tasks (unqueue): workers started later get the stop flag too. */
  private stopped = false;

  submit(chunks: ChunkSpec[]): void {
    if (chunks.length > 0 && this.chunkMs.size > 64) {
      // Forget calls long finished.
      for (const k of [...this.chunkMs.keys()].slice(0, this.chunkMs.size - 32)) this.chunkMs.delete(k);
    }
    for (const c of chunks) this.queue.push(c);
    this.dispatch();
    this.armTimer(chunks);
  }

  /** Chunks cancelled while a worker had them: not waited for, their results dropped. */
  private readonly cancelled = new Set<number>();

  /** Drop chunks that have not reached a worker; running ones finish but are no longer waited for or reported. */
  cancel(ids: number[]): void {
    const drop = new Set(ids);
    for (const s of this.slots) if (s) for (const id of ids) if (s.assigned.has(id)) this.cancelled.add(id);
    // A batch waiting in an interpreter whose chunks are all cancelled is asked back (then dropped), not run.
    for (const s of this.slots) {
      if (!s || !isPython(s.worker) || s.takingBack > 0 || s.batches.size < 2) continue;
      const left = [...s.batches.values()].at(-1)!;
      if ([...left].every((id) => this.cancelled.has(id))) this.askBack(s, s.worker);
    }
    const keep = this.queue.slice(this.qHead).filter((c) => !drop.has(c.id));
    this.queue.length = 0;
    this.qHead = 0;
    for (const c of keep) this.queue.push(c);
  }

  /**
   * Start nothing more: drop every chunk no worker has been handed yet (returns their ids) and tell
   * every worker to start no further item; items they hold but have not begun come back cancelled.
   * With `stopWorkers` false (an agent leaving), only the queue is dropped: what workers hold runs.
   */
  unqueue(stopWorkers = true): number[] {
    // Winding down (a stop, or the agent leaving): batches waiting in interpreters are not taken back into the queue.
    this.windingDown = true;
    if (stopWorkers) {
      this.stopped = true;
      for (const s of this.slots) if (s) s.slot[SLOT_STOP] = 1;
    }
    const ids = this.queue.slice(this.qHead).map((c) => c.id);
    this.queue.length = 0;
    this.qHead = 0;
    this.checkIdle();
    return ids;
  }

  /** Chunks handed to a worker and not final yet (cancelled ones aside). */
  held(): number[] {
    const ids: number[] = [];
    for (const s of this.slots) if (s) for (const id of s.assigned.keys()) if (!this.cancelled.has(id)) ids.push(id);
    return ids;
  }

  get pending(): number {
    let n = this.queue.length - this.qHead;
    for (const s of this.slots) if (s) n += s.assigned.size;
    return n - this.cancelled.size;
  }

  /** Resolves when no chunk is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private refd = true;

  /** Keep the process alive for these threads (work in flight), now and for threads started later. */
  ref(): void {
    this.refd = true;
    for (const s of this.slots) s?.worker.ref();
  }

  /** Let the process exit while these threads are idle, now and for threads started later. */
  unref(): void {
    this.refd = false;
    for (const s of this.slots) s?.worker.unref();
  }

  /** Stop every worker now. */
  async terminate(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    for (const s of this.slots) if (s) void s.worker.terminate();
    await Promise.allSettled(this.exits);
    this.opts.python?.close();
  }

  /** What worker slot `index` starts with; its environment is the node's and the slot's own (its GPUs). */
  private initOf(index: number): WorkerInit {
    return {
      module: this.opts.module,
      initializer: this.opts.initializer,
      initArgs: this.opts.initArgs,
      slot: new SharedArrayBuffer(SLOT_LENGTH * 8),
      workerIndex: index,
      maxTasks: this.opts.maxTasksPerWorker,
      env: this.opts.slotEnv ? { ...this.opts.env, ...this.opts.slotEnv(index) } : this.opts.env,
      shared: [...this.shared.values()],
    };
  }

  private spawn(index: number): Promise<void> {
    const init = this.initOf(index);
    const { env, slot: sab } = init;
    // A Python slot gets the same env (its GPUs included) in its interpreter's environment.
    const worker = this.opts.python
      ? this.opts.python.spawn(init)
      : withWorkerFlags(
          (execArgv) =>
            new Worker(WORKER_FILE, {
              workerData: init,
              // The thread's process.env, set before the task module loads: a slot's own GPUs are in it.
              env,
              execArgv,
              ...(this.opts.maxHeapMB > 0 ? { resourceLimits: { maxOldGenerationSizeMb: this.opts.maxHeapMB } } : {}),
            }),
        );
    // A Python slot's state lives in a file the interpreter maps (see python-slot.ts), not in the SharedArrayBuffer.
    const slotView = isPython(worker) ? worker.slot : new Float64Array(sab);
    if (this.stopped) slotView[SLOT_STOP] = 1;
    const s: Slot = {
      index,
      worker,
      slot: slotView,
      assigned: new Map(),
      ready: false,
      retiring: false,
      killedFor: null,
      error: undefined,
      batches: new Map(),
      takingBack: 0,
    };
    this.slots[index] = s;
    let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
    const started = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    let exited!: () => void;
    this.exits.push(new Promise<void>((r) => (exited = r)));
    worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'ready':
          s.ready = true;
          this.exports ??= m.exports;
          settle?.resolve();
          settle = undefined;
          this.dispatch();
          break;
        case 'initError': {
          const err = new Error(m.error.message);
          err.name = m.error.name;
          if (m.error.stack) err.stack = m.error.stack;
          settle?.reject(err);
          settle = undefined;
          if (s.ready === false && this.slots.some((o) => o?.ready)) this.sink.fatal(m.error);
          break;
        }
        case 'results': {
          if (m.head && this.sink.encoded && this.forward(s, m.data, m.head)) break;
          const results = decode(m.data) as ChunkResult[];
          // A Buffer again (a moved one arrives as a plain Uint8Array), so that it is msgpack binary in the agent's frame.
          if (m.large) for (const [i, v] of m.large) results[i]!.values = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
          this.onResults(s, results);
          break;
        }
        case 'retire':
          s.retiring = true;
          break;
      }
    });
    worker.on('error', (e) => {
      s.error = e;
    });
    if (isPython(worker)) {
      worker.on('results', (results: ChunkResult[]) => this.onResults(s, results));
      worker.on('takenBack', (seq: number) => this.onTakenBack(s, seq));
    }
    worker.on('exit', (code) => {
      exited();
      settle?.reject(s.error ?? new Error(`worker ${index} exited with code ${code} while starting`));
      settle = undefined;
      this.onExit(s, code);
    });
    // After the listeners: adding one refs the worker's port again.
    if (!this.refd) worker.unref();
    return started;
  }

  /** Results forwarded as the worker encoded them, when none was cancelled and the sink takes them. */
  private forward(s: Slot, data: Uint8Array, head: number[]): boolean {
    const ids: number[] = [];
    for (let k = 0; k < head.length; k += 2) {
      if (this.cancelled.has(head[k]!)) return false;
      ids.push(head[k]!);
    }
    if (!this.sink.encoded!(data, ids)) return false;
    for (let k = 0; k < head.length; k += 2) this.settled(s, head[k]!, head[k + 1]!);
    this.deathsInARow = 0;
    this.dispatch();
    this.checkIdle();
    return true;
  }

  /** A chunk's result came back: learn its duration, free what it held. */
  private settled(s: Slot, id: number, ms: number): void {
    const spec = s.assigned.get(id);
    const job = spec?.job ?? this.lastJob;
    s.assigned.delete(id);
    if (s.batches.size > 0) this.batchDone(s, id);
    if (this.ledger) this.release(id);
    this.chunkMs.set(job, mean(this.chunkMs.get(job), ms));
    this.lastJob = job;
    // Commands are each their own: only functions are learned across calls.
    if (spec && spec.kind !== 'shell' && spec.count > 0) {
      this.fnItemMs.set(spec.fn, mean(this.fnItemMs.get(spec.fn), ms / spec.count));
      if (this.fnItemMs.size > 64) this.fnItemMs.delete(this.fnItemMs.keys().next().value!);
    }
  }

  /** How long a chunk should take: its call's chunks lately, else its function's items, else unknown. */
  private expectedMs(c: ChunkSpec): number | undefined {
    const ms = this.chunkMs.get(c.job);
    if (ms !== undefined || c.kind === 'shell') return ms;
    const item = this.fnItemMs.get(c.fn);
    return item === undefined ? undefined : item * c.count;
  }

  private onResults(s: Slot, results: ChunkResult[]): void {
    let keep = results;
    for (const r of results) {
      this.settled(s, r.id, r.ended - r.started);
      if (this.cancelled.delete(r.id)) keep = keep.filter((x) => x.id !== r.id);
    }
    this.deathsInARow = 0;
    if (keep.length) this.sink.results(keep);
    this.dispatch();
    this.checkIdle();
  }

  private onExit(s: Slot, code: number): void {
    if (this.slots[s.index] === s) this.slots[s.index] = null;
    if (this.closing) return;
    const requeue: ChunkSpec[] = [];
    const handBack: number[] = [];
    let died: ChunkResult | null = null;
    const running = s.slot[SLOT_CHUNK] ?? -1;
    for (const c of s.assigned.values()) {
      if (this.ledger) this.release(c.id);
      if (this.cancelled.delete(c.id)) continue;
      if (!s.retiring && s.killedFor && s.killedFor.chunk === c.id) {
        died = { id: c.id, worker: s.index, values: EMPTY_VALUES, failures: [], started: Date.now(), ended: Date.now(), died: { offset: s.killedFor.offset, error: s.killedFor.error } };
      } else if (!s.retiring && !s.killedFor && c.id === running && (s.slot[SLOT_OFFSET] ?? 0) < 0 && isPython(s.worker)) {
        // A Python slot died inside a run of tiny items it did not track one by one: the chunk runs again, item by item.
        s.worker.runCarefully(c.id);
        requeue.push(c);
      } else if (!s.retiring && !s.killedFor && c.id === running) {
        const offset = s.slot[SLOT_OFFSET] ?? 0;
        const error: ErrorRecord = s.error
          ? toErrorRecord(s.error, 'died')
          : { name: 'WorkerExit', message: `worker thread exited with code ${code}`, kind: 'died' };
        died = { id: c.id, worker: s.index, values: EMPTY_VALUES, failures: [], started: Date.now(), ended: Date.now(), died: { offset, error } };
      } else if (moved(c)) {
        handBack.push(c.id);
      } else {
        requeue.push(c);
      }
    }
    s.assigned.clear();
    if (handBack.length) this.sink.handBack(handBack);
    this.requeueFirst(requeue);
    if (!s.retiring) this.deathsInARow++;
    if (this.deathsInARow > MAX_DEATHS_IN_A_ROW) {
      this.sink.fatal({ name: 'WorkerPoolError', message: `${this.deathsInARow} worker threads died in a row without finishing a chunk; last: ${s.error ? String(s.error) : `exit code ${code}`}` });
      return;
    }
    this.spawn(s.index).catch((e: unknown) => {
      if (!this.closing) this.sink.fatal(toErrorRecord(e));
    });
    if (died) this.sink.results([died]);
    this.checkIdle();
  }

  private dispatch(): void {
    if (this.closing) return;
    if (this.ledger) return this.dispatchPacked(this.ledger, this.opts.packing!);
    let avail = this.queue.length - this.qHead;
    if (avail === 0) return this.takeBack();
    // A call whose chunk time is not known yet (nor its function's) goes out one chunk per batch until it is.
    // Sized from the function when the call's own durations are not known yet: many one-chunk calls go
    // out together, and a call's chunks never wait behind each other before they are (batching.ts).
    const head = this.queue[this.qHead]!;
    const { per, depth, byFn } = batchShape(this.expectedMs(head), this.chunkMs.has(head.job), !!this.opts.python);
    // Idle workers first: a chunk never waits behind another while a worker has nothing to do.
    const readySlots = this.slots.filter((s): s is Slot => s !== null && s.ready && !s.retiring).sort((a, b) => a.assigned.size - b.assigned.size);
    if (readySlots.length === 0) return;
    // Fair share first, so that a few large chunks spread over every worker.
    const share = Math.max(1, Math.ceil(avail / readySlots.length));
    // Each worker holds up to two batches: one running, one waiting, so it never idles on a round trip.
    let moved = true;
    while (avail > 0 && moved) {
      moved = false;
      for (const s of readySlots) {
        if (avail === 0) break;
        // A worker gets more only once it is down to its last batch, and then a whole batch: small
        // refills would otherwise turn into one message per chunk.
        if (s.assigned.size > depth - per) continue;
        const room = depth - s.assigned.size;
        const take = batchLength(this.queue, this.qHead, Math.min(avail, room, Math.max(per, 1), share), byFn);
        const batch = this.queue.slice(this.qHead, this.qHead + take);
        this.qHead += take;
        avail -= take;
        moved = true;
        for (const c of batch) s.assigned.set(c.id, c);
        if (isPython(s.worker)) s.batches.set(s.worker.postBatch(batch), new Set(batch.map((c) => c.id)));
        else s.worker.postMessage(...batchMessage(batch));
      }
    }
    this.takeBack();
    if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
  }

  /**
   * Tasks with their own requests: one chunk per idle worker, started only when the ledger has its
   * CPUs and GPUs free, in the order packing.ts's policy picks (arrival order, the head reserved).
   * A chunk that asks for more than the node has fails at once, naming the node.
   */
  private dispatchPacked(ledger: Ledger, p: NonNullable<WorkerPoolOptions['packing']>): void {
    const waiting = this.queue.slice(this.qHead);
    if (waiting.length === 0) return;
    const needs = waiting.map((c) => c.need ?? p.defaults);
    const gone = new Set<number>();
    const failed: ChunkResult[] = [];
    needs.forEach((n, i) => {
      const why = ledger.tooLarge(n);
      if (!why) return;
      const c = waiting[i]!;
      const error: ErrorRecord = { name: 'ResourceError', message: `the task asks for ${why.replace('this node', `node ${p.node}`)}`, kind: 'error' };
      const now = Date.now();
      failed.push({ id: c.id, worker: -1, values: encodeList(new Array(c.count).fill(null), false), failures: Array.from({ length: c.count }, (_, k) => ({ offset: k, error })), started: now, ended: now });
      gone.add(i);
    });
    const idle = this.slots.filter((s): s is Slot => s !== null && s.ready && !s.retiring && s.assigned.size === 0);
    if (idle.length > 0) {
      const starts = ledger.pick(needs, idle.length);
      starts.forEach((st, k) => {
        const c = waiting[st.index]!;
        const s = idle[k]!;
        const need = needs[st.index]!;
        this.holding.set(c.id, { cpus: need.cpus, gpus: st.gpus });
        s.assigned.set(c.id, c);
        const one = [{ ...c, env: p.envFor(need, st.gpus) }];
        if (isPython(s.worker)) s.batches.set(s.worker.postBatch(one), new Set([c.id]));
        else s.worker.postMessage(...batchMessage(one));
        gone.add(st.index);
      });
    }
    if (gone.size > 0) {
      this.queue.length = 0;
      this.qHead = 0;
      waiting.forEach((c, i) => gone.has(i) || this.queue.push(c));
    }
    if (failed.length) {
      this.sink.results(failed);
      this.checkIdle();
    }
  }

  /** Python slots: a chunk of batch-tracked slot s finished (its result came): the batch is done when all its chunks are. */
  private batchDone(s: Slot, id: number): void {
    for (const [seq, left] of s.batches) {
      if (!left.delete(id)) continue;
      if (left.size === 0) {
        s.batches.delete(seq);
        if (s.takingBack === seq) s.takingBack = 0;
      }
      break;
    }
  }

  /**
   * Python slots: a worker idles, no chunk waits here, and an interpreter holds a batch it has not
   * begun behind the one it runs: ask for that batch back, for the idle worker. No chunk waits behind
   * a long one while a worker idles; the interpreter gives it back only if it has not begun it.
   */
  private takeBack(): void {
    if (!this.opts.python || this.windingDown || this.queue.length > this.qHead) return;
    let idle = 0;
    for (const s of this.slots) if (s && s.ready && !s.retiring && s.assigned.size === 0) idle++;
    for (const s of this.slots) {
      if (idle === 0) return;
      if (!s || !isPython(s.worker) || s.takingBack > 0 || s.batches.size < 2) continue;
      this.askBack(s, s.worker);
      idle--;
    }
  }

  /** Python slots: the interpreter gave batch `seq` back, not begun: its chunks go first in the queue (cancelled ones are dropped). */
  private onTakenBack(s: Slot, seq: number): void {
    const left = s.batches.get(seq);
    if (s.takingBack === seq) s.takingBack = 0;
    if (!left) return;
    s.batches.delete(seq);
    const back: ChunkSpec[] = [];
    for (const id of left) {
      const c = s.assigned.get(id);
      if (!c) continue;
      s.assigned.delete(id);
      if (this.ledger) this.release(id);
      if (this.cancelled.delete(id)) continue;
      back.push(c);
    }
    this.requeueFirst(back);
    this.dispatch();
    this.checkIdle();
  }

  /** Chunks that were given out and came back unrun: first in the queue, in their order. */
  private requeueFirst(chunks: ChunkSpec[]): void {
    if (chunks.length === 0) return;
    const rest = this.queue.slice(this.qHead);
    this.queue.length = 0;
    this.qHead = 0;
    this.queue.push(...chunks, ...rest);
  }

  /** Python slots: ask s's interpreter for its last batch back (answered by onTakenBack, if it has not begun it). */
  private askBack(s: Slot, w: PythonWorker): void {
    const seq = [...s.batches.keys()].at(-1)!;
    s.takingBack = seq;
    w.takeBack(seq);
  }

  private armTimer(chunks: ChunkSpec[]): void {
    if (this.timer || !chunks.some((c) => c.timeoutMs > 0 && c.kind !== 'shell')) return;
    this.timer = setInterval(() => this.checkTimeouts(), 50);
    this.timer.unref();
  }

  private checkTimeouts(): void {
    const now = Date.now();
    for (const s of this.slots) {
      if (!s || s.killedFor) continue;
      const id = s.slot[SLOT_CHUNK] ?? -1;
      if (id < 0) continue;
      const c = s.assigned.get(id);
      if (!c || c.timeoutMs <= 0 || c.kind === 'shell') continue;
      const started = s.slot[SLOT_STARTED] ?? now;
      if (now - started > c.timeoutMs) {
        const offset = s.slot[SLOT_OFFSET] ?? 0;
        s.killedFor = {
          chunk: id,
          offset,
          error: { name: 'TimeoutError', message: `task ran longer than its timeout of ${c.timeoutMs} ms; its ${isPython(s.worker) ? 'Python interpreter was killed (and replaced)' : 'worker thread was terminated'}`, kind: 'timeout' },
        };
        void s.worker.terminate();
      }
    }
  }

  private checkIdle(): void {
    if (this.idleWaiters.length && this.pending === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }
}

/** A duration learned so far, moved a fifth of the way toward a new one (the first one as it is). */
function mean(prev: number | undefined, ms: number): number {
  return prev === undefined ? ms : prev * 0.8 + ms * 0.2;
}

/**
 * True when a chunk's items went to a worker by transfer, leaving this thread's view empty (encoded
 * items are never empty: an empty list is one byte).
 */
function moved(c: ChunkSpec): boolean {
  return c.items.byteLength === 0;
}

/** A slot run by a Python interpreter (the only kind of slot that is not a worker thread). */
function isPython(w: Worker | PythonWorker): w is PythonWorker {
  return !(w instanceof Worker);
}

/** The message for a batch, and what to move with it: small chunks inside one msgpack buffer, large items beside it. */
function batchMessage(batch: ChunkSpec[]): [ToWorker, ArrayBuffer[]] {
  const [specs, large] = splitMovable(batch, 'items', (b) => (ownsBuffer(b) ? b : ownCopy(b)));
  const data = encodeTransferable(specs);
  const transfer = [data.buffer as ArrayBuffer];
  for (const [, b] of large) transfer.push(b.buffer as ArrayBuffer);
  return [{ t: 'batch', data, large }, transfer];
}
