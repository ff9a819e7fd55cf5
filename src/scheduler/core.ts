// The scheduler's pure core: events in, commands out, time passed in. No sockets, timers, clock or codec.
//
// Every policy of the scheduler lives here, each as a rule over this state: dispatch by credits
// (a queue of agents with free credit, O(1) per chunk), retries of items whose worker died, agent
// losses, copies of stragglers (one copy per chunk, one shared attempt budget), stop-starting and
// liveness. The runtime (scheduler.ts) owns links, timers and the codec, feeds events in and carries
// the commands out; tests drive this class directly (test/scheduler-core.test.ts).
import type { ErrorRecord } from '../errors.js';
import type { ItemFailure } from '../protocol/messages.js';
import type { ChunkItems, ChunkOutcome, Job, PlacedFailure } from './job.js';

/** An agent as the scheduler sees it. `L` is whatever the runtime uses to reach it (a link); the core never touches it. */
export class AgentState<L = unknown> {
  node = '?';
  workers = 0;
  cpus = 0;
  /** GPUs the agent found on its node. */
  gpus = 0;
  pid = 0;
  credits = 0;
  ready = false;
  lost = false;
  /** The core asked for its link to be closed (heartbeat timeout); not asked again. */
  closing = false;
  /** The agent said it is leaving (its allocation ends, or it was signalled): no new chunks. */
  leaving = false;
  /** It left cleanly: it said so and held nothing when its link closed (not a node loss). */
  left = false;
  /** The task module's exports (name → typeof) as its workers imported them (null: not told). */
  exports: Record<string, string> | null = null;
  /** When it became ready (0: never): a node whose agent was once ready and then died may be restarted. */
  readyAt = 0;
  lastSeen = 0;
  readonly inflight = new Map<number, Chunk>();
  chunksDone = 0;
  itemsDone = 0;
  busyMs = 0;
  /** Encoded bytes of the items of the chunks in flight on this agent (told by the runtime). */
  inflightBytes = 0;
  /** Shared values this agent does not hold whole yet; no chunk is sent to it meanwhile. */
  streaming = 0;
  /** What the agent reported of each shared value. */
  readonly shareStates = new Map<number, 'ready' | 'released'>();
  /** Where it was last told to get each shared value: 'coordinator' or another node's name. */
  readonly shareSources = new Map<number, string>();
  /** Agents of one relay group (one secret) may fetch shared values from each other ('': it relays with none). */
  relayGroup = '';
  shareBytesSent = 0;

  constructor(
    readonly id: number,
    readonly link: L,
    /** The name the launcher expects (the node it started this agent on). */
    readonly expected: string,
  ) {}

  /** Forget a chunk in flight here; returns it if it was. */
  release(id: number): Chunk | undefined {
    const c = this.inflight.get(id);
    if (c) {
      this.inflight.delete(id);
      this.inflightBytes -= c.bytes;
      c.bytes = 0;
    }
    return c;
  }
}

/** Copies of one piece of work (a straggler and its copy) share one attempt budget. */
interface Attempts {
  /** Worker deaths counted so far. */
  n: number;
  /** A copy was made once: never another. */
  copied: boolean;
}

/** A chunk in flight, or a part of one split after a worker died on it. */
export interface Chunk {
  id: number;
  job: Job;
  /** The whole chunk this part belongs to (itself for a whole chunk). */
  root: Root;
  /** Offset of this part's first item within the root chunk. */
  offset: number;
  items: ChunkItems;
  attempts: Attempts;
  losses: number;
  agent: AgentState | null;
  /** When it was last sent to an agent (ms, the core's clock). */
  sentAt: number;
  /** Encoded size of its items, counted against its agent's in-flight bytes. */
  bytes: number;
  /** A speculative copy running elsewhere (straggler); the first result wins. */
  twin: Chunk | null;
}

export interface Root {
  seq: number;
  start: number;
  size: number;
  values: unknown[] | Float64Array;
  failures: PlacedFailure[];
  parts: ChunkOutcome['parts'];
  remaining: number;
  /** Items from this offset on need not run (a stop-on-error chunk failed before them). */
  cutAt: number;
}

/** A chunk's result as the core takes it: values already decoded by the runtime. */
export interface CoreResult {
  id: number;
  worker: number;
  values: unknown[] | Float64Array;
  failures: ItemFailure[];
  started: number;
  ended: number;
  died?: { offset: number; error: ErrorRecord };
}

/** What the core asks the runtime to do. */
export type Command =
  | { c: 'send'; agent: AgentState; chunks: Chunk[] }
  | { c: 'cancel'; agent: AgentState; ids: number[] }
  | { c: 'unqueue'; agent: AgentState }
  | { c: 'close'; agent: AgentState; reason: string }
  | { c: 'outcome'; job: Job; outcome: ChunkOutcome }
  | { c: 'ready'; agent: AgentState }
  | { c: 'lost'; agent: AgentState; reason: string }
  | { c: 'log'; line: string };

export interface CoreOptions {
  /** Worker deaths a piece of work may cause before it is reported (multiprocessing has none: it hangs). */
  retries: number;
  /** An agent silent this long is lost. 0 = never (in-process agents). */
  lostAfterMs: number;
  /** Run a copy of a chunk that takes far longer than its job's others, once nothing else waits. */
  speculate: boolean;
}

/** Agent losses a chunk may suffer before it is reported as lost. */
export const MAX_LOSSES = 3;
/** An agent is sent no more chunks while the items of those it has exceed this (large items). */
export const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;
/** A chunk is a straggler past this multiple of its job's mean chunk time (plus a floor), with at least this many chunks learned. */
export const STRAGGLER_FACTOR = 4;
export const STRAGGLER_FLOOR_MS = 1000;
export const STRAGGLER_MIN_SAMPLES = 3;
/** An agent visited by dispatch gets up to this many chunks at once when the backlog is large (fewer frames per chunk at 1,000 agents). */
export const MAX_GRANT = 64;
/** At most this many chunks, or this many items, are dispatched in one call: the runtime yields between calls. */
export const DISPATCH_MAX_CHUNKS = 512;
export const DISPATCH_MAX_ITEMS = 65_536;

const CANCELLED: ErrorRecord = { name: 'CancelledError', message: 'not started: the pool was told to start no more tasks', kind: 'cancelled' };

/** A queue with O(1) push, shift, unshift and access by position. */
class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  at(i: number): T | undefined {
    return this.items[this.head + i];
  }
  push(x: T): void {
    this.items.push(x);
  }
  unshift(x: T): void {
    if (this.head > 0) this.items[--this.head] = x;
    else this.items.unshift(x);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
  removeIf(pred: (x: T) => boolean): T[] {
    const kept: T[] = [];
    const gone: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const x = this.items[i] as T;
      (pred(x) ? gone : kept).push(x);
    }
    this.items = kept;
    this.head = 0;
    return gone;
  }
}

/**
 * The chunks not final yet, by id, and by job: ending a call touches its own chunks only, never every
 * chunk in flight (thousands of concurrent apply() calls each end once).
 */
class ChunkTable {
  private readonly byId = new Map<number, Chunk>();
  private readonly byJob = new Map<Job, Set<Chunk>>();

  get(id: number): Chunk | undefined {
    return this.byId.get(id);
  }

  set(c: Chunk): void {
    this.byId.set(c.id, c);
    let s = this.byJob.get(c.job);
    if (!s) this.byJob.set(c.job, (s = new Set()));
    s.add(c);
  }

  delete(id: number): void {
    const c = this.byId.get(id);
    if (!c) return;
    this.byId.delete(id);
    const s = this.byJob.get(c.job)!;
    s.delete(c);
    if (s.size === 0) this.byJob.delete(c.job);
  }

  /** This job's chunks (a copy: the caller may delete as it goes). */
  ofJob(job: Job): Chunk[] {
    const s = this.byJob.get(job);
    return s ? [...s] : [];
  }

  values(): IterableIterator<Chunk> {
    return this.byId.values();
  }

  clear(): void {
    this.byId.clear();
    this.byJob.clear();
  }
}

/** A call that will make no more chunks: its input has ended, or it was cancelled. */
function madeAll(job: Job): boolean {
  return job.exhausted || job.cancelled;
}

/** The scheduler's state machine. Call an event method, then `take()` the commands it produced. */
export class SchedulerCore {
  readonly agents = new Map<number, AgentState>();
  /** Every call not ended yet, in the order they came (a Set keeps insertion order and deletes in O(1)). */
  private readonly jobs = new Set<Job>();
  /**
   * The calls that may still make chunks, in the same order: a call leaves once its input has ended
   * (or it was cancelled), so that dispatch does not walk past calls whose chunks are all out
   * (thousands of concurrent apply() calls). Left calls go from the front at once, from further back
   * in one sweep once they outnumber the rest (see nextChunk).
   */
  private readonly open = new Deque<Job>();
  private readonly retryQueue = new Deque<Chunk>();
  private readonly chunks = new ChunkTable();
  /** Ready agents with room for another chunk, in round-robin order (a Set keeps insertion order). */
  private readonly free = new Set<AgentState>();
  private nextChunkId = 1;
  private out: Command[] = [];
  private halted = false;
  private stopping = false;
  /** Workers on ready agents, and how many agents are ready (kept, never recounted). */
  totalWorkers = 0;
  readyCount = 0;
  /** Speculative copies started, and how many of them finished first. */
  readonly speculation = { started: 0, won: 0 };
  /** The clock of the last tick; a tick much later than expected means this process stalled. */
  private lastTick = -1;
  /** Silence before this time does not count against agents (the coordinator itself was not listening). */
  private heardFloor = 0;

  constructor(readonly opts: CoreOptions) {}

  /** The commands produced since the last call, in order. */
  take(): Command[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  get busy(): boolean {
    return this.jobs.size > 0;
  }

  // ------------------------------------------------------------------ agents

  /** A connection was authenticated; the agent joins the dispatch when it reports ready. */
  agentJoined(a: AgentState, now: number): void {
    a.lastSeen = now;
    this.agents.set(a.id, a);
  }

  /** Any message from an agent proves it alive. */
  heard(a: AgentState, now: number): void {
    a.lastSeen = now;
  }

  agentReady(a: AgentState, info: { node: string; workers: number; cpus: number; pid: number; credits: number; exports?: Record<string, string>; gpus?: number }, now: number): void {
    if (a.lost || a.ready) return;
    a.lastSeen = now;
    a.node = info.node;
    a.workers = info.workers;
    a.cpus = info.cpus;
    a.gpus = typeof info.gpus === 'number' ? info.gpus : 0;
    a.pid = info.pid;
    a.credits = info.credits;
    a.ready = true;
    a.readyAt = now;
    if (info.exports !== null && typeof info.exports === 'object' && !Array.isArray(info.exports)) a.exports = info.exports;
    this.totalWorkers += a.workers;
    this.readyCount++;
    this.refresh(a);
    this.out.push({ c: 'ready', agent: a });
  }

  credits(a: AgentState, credits: number): void {
    a.credits = credits;
    this.refresh(a);
  }

  /** The runtime is streaming shared data to an agent (+1) or finished a stream (-1). */
  streaming(a: AgentState, delta: 1 | -1): void {
    a.streaming += delta;
    this.refresh(a);
  }

  /** The runtime encoded a chunk sent to an agent: count its bytes there. */
  sentBytes(a: AgentState, c: Chunk, bytes: number): void {
    if (c.agent !== a || !a.inflight.has(c.id)) return;
    c.bytes = bytes;
    a.inflightBytes += bytes;
    this.refresh(a);
  }

  private hasRoom(a: AgentState): boolean {
    return a.ready && !a.lost && !a.leaving && a.streaming === 0 && a.inflight.size < a.credits && a.inflightBytes <= MAX_INFLIGHT_BYTES;
  }

  /** Keep `free` true to an agent's room: O(1). */
  private refresh(a: AgentState): void {
    if (this.hasRoom(a)) {
      if (!this.free.has(a)) this.free.add(a);
    } else this.free.delete(a);
  }

  agentLost(a: AgentState, reason: string): void {
    if (a.lost) return;
    a.lost = true;
    const wasReady = a.ready;
    if (a.ready) {
      this.totalWorkers -= a.workers;
      this.readyCount--;
    }
    a.ready = false;
    this.free.delete(a);
    const held = [...a.inflight.values()];
    a.inflight.clear();
    a.inflightBytes = 0;
    a.left = a.leaving && held.length === 0;
    for (const c of held) {
      c.bytes = 0;
      if (this.chunks.get(c.id) !== c) continue;
      if (c.twin && this.chunks.get(c.twin.id) === c.twin) {
        // A copy is running elsewhere: it carries on alone.
        this.chunks.delete(c.id);
        c.twin = c.twin.twin = null;
        continue;
      }
      c.agent = null;
      c.losses++;
      if (c.losses >= MAX_LOSSES) {
        this.chunks.delete(c.id);
        const err: ErrorRecord = { name: 'NodeLostError', message: `chunk was lost with ${c.losses} agents in a row (last: node ${a.node}: ${reason})`, kind: 'lost' };
        c.root.failures.push({ offset: c.offset, error: err, node: a.node, worker: -1, attempts: c.attempts.n + c.losses });
        if (c.job.spec.stopOnError) c.root.cutAt = Math.min(c.root.cutAt, c.offset);
        this.requeuePart(c, 1, c.items.length, c.attempts);
        this.partDone(c);
      } else if (this.halted) {
        this.cancelChunk(c);
      } else {
        this.retryQueue.push(c);
      }
    }
    if (a.left) {
      if (!this.stopping) this.log(`node ${a.node}: left the pool`);
    } else if (!this.stopping && (wasReady || held.length)) {
      this.log(`node ${a.node}: agent lost (${reason}); ${held.length} chunk(s) re-dispatched`);
    }
    this.out.push({ c: 'lost', agent: a, reason });
  }

  /**
   * The agent is leaving (its allocation nears its end, or it was signalled): it gets no new chunk,
   * and the chunks it hands back (`ids`: those no worker had started, or every one it held when its
   * node is going away at once) go back to the front of the queue at once, with no attempt or loss
   * counted. The chunks it keeps finish normally. Said again, it hands back more (chunks that were on
   * their way to it). When its link then closes holding nothing, it has left, which is no node loss.
   */
  agentLeaving(a: AgentState, ids: number[], why: string): void {
    if (a.lost) return;
    if (!a.leaving) {
      a.leaving = true;
      this.free.delete(a);
      if (!this.stopping) this.log(`node ${a.node}: leaving (${why}); ${ids.length} chunk(s) handed back`);
    }
    this.takeBack(a, ids);
  }

  /**
   * Chunks a node hands back unrun while it stays (their items went to a worker that died before it
   * started them, and the node kept no copy): they go first in the queue, to be sent again from the
   * coordinator's own items, to any node. No attempt is counted: none of their items ran.
   */
  handBack(a: AgentState, ids: number[]): void {
    if (a.lost) return;
    this.takeBack(a, ids);
    this.refresh(a);
  }

  private takeBack(a: AgentState, ids: number[]): void {
    const back: Chunk[] = [];
    for (const id of ids) {
      const c = a.release(id);
      if (!c || this.chunks.get(id) !== c) continue;
      c.agent = null;
      if (c.twin && this.chunks.get(c.twin.id) === c.twin) {
        // Its copy runs elsewhere and carries on alone.
        this.chunks.delete(c.id);
        c.twin = c.twin.twin = null;
      } else if (this.halted) this.cancelChunk(c);
      else back.push(c);
    }
    // First in the queue, in their order.
    for (let i = back.length - 1; i >= 0; i--) this.retryQueue.unshift(back[i]!);
  }

  // ------------------------------------------------------------------ jobs

  addJob(job: Job): void {
    this.jobs.add(job);
    this.open.push(job);
  }

  /** Stop a job: drop its queued chunks, tell agents to drop theirs. */
  cancelJob(job: Job): void {
    job.cancel();
    this.jobs.delete(job);
    if (this.retryQueue.length > 0) this.retryQueue.removeIf((c) => c.job === job);
    const byAgent = new Map<AgentState, number[]>();
    for (const c of this.chunks.ofJob(job)) {
      this.chunks.delete(c.id);
      if (c.agent) {
        c.agent.release(c.id);
        this.refresh(c.agent);
        let ids = byAgent.get(c.agent);
        if (!ids) byAgent.set(c.agent, (ids = []));
        ids.push(c.id);
      }
    }
    for (const [a, ids] of byAgent) this.out.push({ c: 'cancel', agent: a, ids });
  }

  /**
   * Start nothing new: no more input is read, chunks no worker has started are reported as
   * cancelled, agents are told to start nothing more (they answer with what they dropped), and
   * the tasks already running finish.
   */
  stopStarting(): void {
    if (this.halted) return;
    this.halted = true;
    for (const c of this.retryQueue.removeIf(() => true)) this.cancelChunk(c);
    for (const job of this.jobs) job.endInputNow();
    for (const a of this.agents.values()) if (a.ready && !a.lost) this.out.push({ c: 'unqueue', agent: a });
  }

  /** Fail every job (pool terminated, nothing left to run on). */
  abortAll(error: Error): void {
    const all = [...this.jobs];
    this.jobs.clear();
    this.open.clear();
    for (const job of all) {
      job.cancel();
      job.sink.abort(error);
    }
    this.retryQueue.clear();
    this.chunks.clear();
    for (const a of this.agents.values()) {
      a.inflight.clear();
      a.inflightBytes = 0;
      this.refresh(a);
    }
  }

  /** The pool is stopping: agents closing from now on are not losses worth a log line. */
  shutdown(): void {
    this.stopping = true;
  }

  // ------------------------------------------------------------------ dispatch

  /**
   * Hand chunks to agents with free credit, round-robin one chunk at a time so that a few chunks
   * spread out. O(1) per chunk; at most DISPATCH_MAX_CHUNKS chunks or DISPATCH_MAX_ITEMS items per
   * call. Returns true when it stopped at that bound with work left (the runtime calls again on a
   * later turn of its event loop).
   */
  dispatch(now: number, maxChunks = DISPATCH_MAX_CHUNKS): boolean {
    this.dispatched = 0;
    if (this.halted || this.free.size === 0) return false;
    const batches = new Map<AgentState, Chunk[]>();
    let chunks = 0;
    let items = 0;
    let more = false;
    // Round-robin: one chunk per agent per visit while chunks are few next to the agents with room
    // (so that they spread), up to MAX_GRANT when the backlog would give each of them that many anyway.
    let backlog = this.retryQueue.length;
    // Counted only up to where the grant stops growing: never a walk over every queued call.
    const enough = MAX_GRANT * this.free.size;
    for (let k = 0; k < this.open.length; k++) {
      const b = this.open.at(k)!.backlog();
      backlog = b === null ? Infinity : backlog + b;
      if (backlog >= enough) break;
    }
    const grant = backlog === Infinity ? 1 : Math.max(1, Math.min(MAX_GRANT, Math.floor(backlog / this.free.size)));
    visits: for (;;) {
      const first = this.free.values().next();
      if (first.done) break;
      const a = first.value;
      let b = batches.get(a);
      for (let g = 0; g < grant && this.hasRoom(a); g++) {
        if (chunks >= maxChunks || items >= DISPATCH_MAX_ITEMS) {
          more = true;
          break visits;
        }
        const c = this.nextChunk();
        if (!c) break visits;
        c.agent = a;
        c.sentAt = now;
        a.inflight.set(c.id, c);
        if (!b) batches.set(a, (b = []));
        b.push(c);
        chunks++;
        items += c.items.length;
      }
      // To the back of the queue if it still has room.
      this.free.delete(a);
      if (this.hasRoom(a)) this.free.add(a);
    }
    for (const [a, cs] of batches) this.out.push({ c: 'send', agent: a, chunks: cs });
    this.dispatched = chunks;
    return more;
  }

  /** Chunks handed out by the last dispatch call. */
  dispatched = 0;

  private nextChunk(): Chunk | null {
    const r = this.retryQueue.shift();
    if (r) return r;
    let made: Chunk | null = null;
    let left = 0;
    for (let k = 0; k < this.open.length && !made; k++) {
      const job = this.open.at(k)!;
      const t = job.take(this.totalWorkers);
      if (t) {
        const root: Root = { seq: t.seq, start: t.start, size: t.items.length, values: [], failures: [], parts: [], remaining: 1, cutAt: t.items.length };
        made = { id: this.nextChunkId++, job, root, offset: 0, items: t.items, attempts: { n: 0, copied: false }, losses: 0, agent: null, sentAt: 0, bytes: 0, twin: null };
        this.chunks.set(made);
      } else if (madeAll(job)) {
        // Its input has ended (or it was cancelled): it makes no more chunks, so dispatch passes it no more.
        if (k === 0) {
          this.open.shift();
          k--;
        } else left++;
      }
    }
    // Calls behind one still open that have made all theirs: swept out once they are most of the queue.
    if (left > 32 && left * 2 > this.open.length) this.open.removeIf(madeAll);
    return made;
  }

  // ------------------------------------------------------------------ results

  /** Chunks an agent dropped before any worker started them (answer to unqueue). */
  unqueued(a: AgentState, ids: number[]): void {
    for (const id of ids) {
      const c = a.release(id);
      if (c && this.chunks.get(id) === c) {
        if (c.twin && this.chunks.get(c.twin.id) === c.twin) {
          // Its copy is running (or was dropped too and will say so): that one decides.
          this.chunks.delete(c.id);
          c.twin = c.twin.twin = null;
          continue;
        }
        this.cancelChunk(c);
      }
    }
    this.refresh(a);
  }

  results(a: AgentState, results: CoreResult[], now: number): void {
    a.lastSeen = now;
    for (const r of results) this.result(a, r);
    this.refresh(a);
  }

  private result(a: AgentState, r: CoreResult): void {
    const c = a.release(r.id);
    if (!c || this.chunks.get(r.id) !== c) return; // cancelled, or already finished elsewhere
    this.chunks.delete(r.id);
    const twin = c.twin;
    const twinRunning = twin !== null && this.chunks.get(twin.id) === twin;
    if (r.died) {
      this.onDied(a, c, r, twinRunning ? twin : null);
      return;
    }
    if (twinRunning) {
      c.twin = twin.twin = null;
      this.dropChunk(twin);
      this.speculation.won++;
    }
    const root = c.root;
    const job = c.job;
    const values = r.values;
    a.chunksDone++;
    a.itemsDone += values.length;
    a.busyMs += r.ended - r.started;
    job.learn(values.length, r.ended - r.started);
    job.chunkMs.add(r.ended - r.started);
    if (c.offset === 0 && values.length === root.size && root.remaining === 1) root.values = values;
    else {
      // A part of a split chunk: place its values at their offset (holes stay until every part is in).
      if (!Array.isArray(root.values)) root.values = Array.from(root.values);
      const into = root.values;
      if (into.length < root.size) into.length = root.size;
      for (let i = 0; i < values.length; i++) into[c.offset + i] = values[i];
    }
    for (const f of r.failures) {
      if (this.retryFailed(c, f)) continue;
      root.failures.push({ offset: c.offset + f.offset, error: f.error, node: a.node, worker: r.worker, attempts: c.attempts.n + 1 });
      if (job.spec.stopOnError) root.cutAt = Math.min(root.cutAt, c.offset + f.offset);
    }
    root.parts.push({ offset: c.offset, count: c.items.length, node: a.node, worker: r.worker, started: r.started, ended: r.ended, attempts: c.attempts.n + c.losses + 1, ...(c.losses > 0 ? { redispatched: true } : {}) });
    this.partDone(c);
  }

  /**
   * A failed item of a job that retries failures (retryFailed), with budget left: queued again alone,
   * its attempt counted. Its value and placement from this attempt stay until the next one replaces
   * them (the last placement of an item is the one its record shows).
   */
  private retryFailed(c: Chunk, f: ItemFailure): boolean {
    const budget = c.job.spec.retryFailed ?? 0;
    if (budget <= 0 || c.attempts.n + 1 > budget || c.job.cancelled) return false;
    if (f.error.kind === 'cancelled' || f.error.kind === 'lost') return false;
    this.requeuePart(c, f.offset, f.offset + 1, { n: c.attempts.n + 1, copied: false });
    return true;
  }

  /**
   * A worker died (or was killed at its timeout) running item `offset` of c. Every death counts
   * against the attempt budget that c shares with its copy. A timeout is final at once (the copy
   * runs the same item under the same limit); a death with budget left isolates the item and runs
   * it again, unless its copy is still running, which then carries the work alone.
   */
  private onDied(a: AgentState, c: Chunk, r: CoreResult, twin: Chunk | null): void {
    const d = r.died!;
    const n = c.items.length;
    const k = Math.min(Math.max(0, d.offset), n - 1);
    const isTimeout = d.error.kind === 'timeout';
    c.attempts.n++;
    const attempts = c.attempts.n;
    const retry = !isTimeout && attempts <= this.opts.retries;
    if (twin && retry) {
      // The copy carries on alone with the same budget.
      c.twin = twin.twin = null;
      this.log(`node ${a.node}: worker ${r.worker} died running task ${c.root.start + c.offset + k} (${d.error.message}); its copy on node ${twin.agent?.node ?? '?'} carries on (attempt ${attempts} of ${this.opts.retries + 1} used)`);
      return;
    }
    if (twin) {
      c.twin = twin.twin = null;
      this.dropChunk(twin);
    }
    if (retry) {
      this.log(`node ${a.node}: worker ${r.worker} died running task ${c.root.start + c.offset + k} (${d.error.message}); retrying it (attempt ${attempts + 1} of ${this.opts.retries + 1})`);
      // Isolate the item that was running so that it cannot take its neighbours down with it again.
      this.requeuePart(c, 0, k, { n: c.attempts.n - 1, copied: false });
      this.requeuePart(c, k, k + 1, { n: attempts, copied: false });
      this.requeuePart(c, k + 1, n, { n: c.attempts.n - 1, copied: false });
    } else {
      c.root.failures.push({ offset: c.offset + k, error: { ...d.error, kind: isTimeout ? 'timeout' : 'died' }, node: a.node, worker: r.worker, attempts });
      if (c.job.spec.stopOnError) c.root.cutAt = Math.min(c.root.cutAt, c.offset + k);
      this.requeuePart(c, 0, k, { n: attempts - 1, copied: false });
      this.requeuePart(c, k + 1, n, { n: attempts - 1, copied: false });
    }
    this.partDone(c);
  }

  private partDone(c: Chunk): void {
    const root = c.root;
    root.remaining--;
    if (root.remaining > 0) return;
    if (c.job.cancelled) return;
    c.job.finished();
    if (root.failures.length > 1) root.failures.sort((x, y) => x.offset - y.offset);
    if (c.job.spec.stopOnError && root.failures.length > 0) {
      const first = root.failures[0]!.offset;
      root.values = Array.isArray(root.values) ? ((root.values.length = first), root.values) : root.values.subarray(0, first);
      root.failures.length = 1;
    }
    this.out.push({ c: 'outcome', job: c.job, outcome: { seq: root.seq, start: root.start, values: root.values, failures: root.failures, parts: root.parts, size: root.size } });
  }

  /** Make a new part of c's root chunk covering [from, to) of c, and queue it first. */
  private requeuePart(c: Chunk, from: number, to: number, attempts: Attempts): void {
    if (to <= from) return;
    if (c.job.spec.stopOnError && c.offset + from >= c.root.cutAt) return;
    const part: Chunk = {
      id: this.nextChunkId++,
      job: c.job,
      root: c.root,
      offset: c.offset + from,
      items: c.items.slice(from, to),
      attempts,
      losses: c.losses,
      agent: null,
      sentAt: 0,
      bytes: 0,
      twin: null,
    };
    c.root.remaining++;
    this.chunks.set(part);
    if (this.halted) this.cancelChunk(part);
    else this.retryQueue.unshift(part);
  }

  private cancelChunk(c: Chunk): void {
    this.chunks.delete(c.id);
    for (let i = 0; i < c.items.length; i++) {
      if (c.job.spec.stopOnError && c.offset + i >= c.root.cutAt) break;
      c.root.failures.push({ offset: c.offset + i, error: CANCELLED, node: c.agent?.node ?? '-', worker: -1, attempts: c.attempts.n });
      if (c.job.spec.stopOnError) {
        c.root.cutAt = Math.min(c.root.cutAt, c.offset + i);
        break;
      }
    }
    this.partDone(c);
  }

  /** Forget a chunk in flight and tell its agent to drop it. */
  private dropChunk(c: Chunk): void {
    this.chunks.delete(c.id);
    if (c.agent) {
      c.agent.release(c.id);
      this.refresh(c.agent);
      this.out.push({ c: 'cancel', agent: c.agent, ids: [c.id] });
    }
  }

  // ------------------------------------------------------------------ time

  /**
   * Called by the runtime's one timer. Agents silent for lostAfterMs are closed (not counting time
   * this process itself was stalled: a tick later than `period` × 2 resets the silence clock), and,
   * once nothing waits for dispatch, a chunk running far longer than its job's others gets a copy.
   */
  tick(now: number, period: number): void {
    if (this.lastTick >= 0 && now - this.lastTick > period * 2) {
      // This process did not run for a while: messages may be waiting unread. Silence counts from now.
      this.heardFloor = now;
    }
    this.lastTick = now;
    if (this.opts.lostAfterMs > 0 && !this.stopping) {
      for (const a of this.agents.values()) {
        if (!a.ready || a.lost || a.closing) continue;
        const silent = now - Math.max(a.lastSeen, this.heardFloor);
        if (silent > this.opts.lostAfterMs) {
          a.closing = true;
          this.out.push({ c: 'close', agent: a, reason: `no message for ${Math.round(silent / 1000)} s (heartbeat timeout)` });
        }
      }
    }
    if (this.opts.speculate) this.checkStragglers(now);
  }

  private checkStragglers(now: number): void {
    if (this.halted || this.retryQueue.length > 0 || this.jobs.size === 0) return;
    for (let k = 0; k < this.open.length; k++) if (!this.open.at(k)!.exhausted) return;
    let idle: AgentState[] | null = null;
    for (const c of this.chunks.values()) {
      if (c.twin || c.attempts.copied || !c.agent || c.job.spec.kind === 'shell' || c.job.chunkMs.count < STRAGGLER_MIN_SAMPLES) continue;
      const limit = STRAGGLER_FACTOR * c.job.chunkMs.mean + STRAGGLER_FLOOR_MS;
      if (now - c.sentAt < limit) continue;
      // A task with a timeout shorter than the time it has already run gets no copy: its timeout ends it.
      if (c.job.spec.timeoutMs > 0 && c.job.spec.timeoutMs <= limit) continue;
      idle ??= [...this.agents.values()].filter((a) => a.ready && !a.lost && !a.leaving && a.inflight.size < a.workers);
      const target = idle.find((a) => a !== c.agent && a.inflight.size < a.workers) ?? idle.find((a) => a.inflight.size < a.workers);
      if (!target) return;
      const copy: Chunk = { ...c, id: this.nextChunkId++, agent: target, sentAt: now, twin: c, bytes: 0 };
      c.twin = copy;
      c.attempts.copied = true;
      this.chunks.set(copy);
      target.inflight.set(copy.id, copy);
      this.refresh(target);
      this.out.push({ c: 'send', agent: target, chunks: [copy] });
      this.speculation.started++;
      this.log(`straggler: task ${c.root.start + c.offset} has run ${Math.round((now - c.sentAt) / 1000)} s on node ${c.agent.node} (its call's chunks take ${Math.round(c.job.chunkMs.mean)} ms); a copy runs on node ${target.node}, the first result wins`);
    }
  }

  private log(line: string): void {
    this.out.push({ c: 'log', line });
  }
}
