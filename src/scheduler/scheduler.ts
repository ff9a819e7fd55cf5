// One scheduler for every mode: chunks out to agents by credits, results back to jobs, retries on failure.
import type { ErrorRecord } from '../errors.js';
import type { AgentConfig, ChunkResult, ChunkSpec, FromAgent, SharedKind, ToAgent } from '../protocol/messages.js';
import type { Link } from '../transport/link.js';
import { decodeListLike, encodeList } from '../protocol/codec.js';
import type { ChunkOutcome, Job, PlacedFailure } from './job.js';

export type AgentLink = Link<ToAgent, FromAgent>;

/** An agent as the scheduler sees it. */
export class AgentState {
  node = '?';
  workers = 0;
  cpus = 0;
  pid = 0;
  credits = 0;
  ready = false;
  lost = false;
  lastSeen = Date.now();
  readonly inflight = new Map<number, Chunk>();
  chunksDone = 0;
  itemsDone = 0;
  busyMs = 0;
  /** Encoded bytes of the items of the chunks in flight on this agent. */
  inflightBytes = 0;
  /** Shared values being streamed to this agent; no chunk is sent to it meanwhile. */
  streaming = 0;
  /** What the agent reported of each shared value. */
  readonly shareStates = new Map<number, 'ready' | 'released'>();
  shareBytesSent = 0;
  /** Forget a chunk in flight here; returns it if it was. */
  release(id: number): Chunk | undefined {
    const c = this.inflight.get(id);
    if (c) {
      this.inflight.delete(id);
      this.inflightBytes -= c.bytes;
    }
    return c;
  }

  releaseAll(): Chunk[] {
    const all = [...this.inflight.values()];
    this.inflight.clear();
    this.inflightBytes = 0;
    return all;
  }

  constructor(
    readonly id: number,
    readonly link: AgentLink,
    /** The name the launcher expects (the node it started this agent on). */
    readonly expected: string,
  ) {}
}

/** A chunk in flight, or a part of one split after a worker died on it. */
interface Chunk {
  id: number;
  job: Job;
  /** The whole chunk this part belongs to (itself for a whole chunk). */
  root: Root;
  /** Offset of this part's first item within the root chunk. */
  offset: number;
  items: unknown[];
  attempts: number;
  losses: number;
  agent: AgentState | null;
  /** When it was last sent to an agent (epoch ms). */
  sentAt: number;
  /** Encoded size of its items, counted against its agent's in-flight bytes. */
  bytes: number;
  /** A speculative copy running elsewhere (straggler); the first result wins. */
  twin: Chunk | null;
}

interface Root {
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

export interface SchedulerOptions {
  config: AgentConfig;
  /** Worker deaths a chunk may cause before it is reported (multiprocessing has none: it hangs). */
  retries: number;
  /** An agent silent this long is lost. 0 = never (in-process agents). */
  lostAfterMs: number;
  /** Run a copy of a chunk that takes far longer than its job's others, once nothing else waits. */
  speculate: boolean;
  log: (line: string) => void;
}

export interface SchedulerEvents {
  agentReady?(a: AgentState): void;
  agentLost?(a: AgentState, reason: string): void;
  agentFatal?(a: AgentState, error: ErrorRecord): void;
}

/** A value shared with every node (pool.share). */
export interface ShareRecord {
  id: number;
  kind: SharedKind;
  ctor: string;
  bytes: Uint8Array;
}

/** Shared values travel in pieces of this size, each one frame. */
export const SHARE_PIECE = 4 * 1024 * 1024;

/** Agent losses a chunk may suffer before it is reported as lost. */
const MAX_LOSSES = 3;
const STRAGGLER_CHECK_MS = 250;
/** An agent is sent no more chunks while the items of those it has exceed this (large items). */
const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;
/** A chunk is a straggler past this multiple of its job's mean chunk time (plus a floor), with at least this many chunks learned. */
const STRAGGLER_FACTOR = 4;
const STRAGGLER_FLOOR_MS = 1000;
const STRAGGLER_MIN_SAMPLES = 3;

export class Scheduler {
  readonly agents: AgentState[] = [];
  private readonly jobs: Job[] = [];
  private readonly retryQueue: Chunk[] = [];
  private readonly chunks = new Map<number, Chunk>();
  private nextChunkId = 1;
  private nextShareId = 1;
  private readonly shares = new Map<number, ShareRecord>();
  private shareWaiters: (() => void)[] = [];
  private nextAgentId = 1;
  private pumpQueued = false;
  private rr = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private stragglerTimer: NodeJS.Timeout | undefined;
  events: SchedulerEvents = {};
  /** Speculative copies started, and how many of them finished first. */
  readonly speculation = { started: 0, won: 0 };

  constructor(readonly opts: SchedulerOptions) {
    if (opts.speculate) {
      this.stragglerTimer = setInterval(() => this.checkStragglers(), STRAGGLER_CHECK_MS);
      this.stragglerTimer.unref();
    }
    if (opts.lostAfterMs > 0) {
      const every = Math.max(100, Math.min(opts.config.heartbeatMs, opts.lostAfterMs / 3));
      this.watchdog = setInterval(() => this.watch(), every);
      this.watchdog.unref();
    }
  }

  get readyAgents(): AgentState[] {
    return this.agents.filter((a) => a.ready && !a.lost);
  }

  get totalWorkers(): number {
    let n = 0;
    for (const a of this.agents) if (a.ready && !a.lost) n += a.workers;
    return n;
  }

  /** Take a new agent's link; it is configured at once and joins when it reports ready. */
  addAgent(link: AgentLink, expected: string): AgentState {
    const a = new AgentState(this.nextAgentId++, link, expected);
    this.agents.push(a);
    link.onMessage((m) => this.onMessage(a, m));
    link.onClose((reason) => this.onLost(a, reason ? reason.message : 'connection closed'));
    link.send({ t: 'configure', config: this.opts.config });
    return a;
  }

  /** Send a value to every node once; agents that join later get it when they are ready. */
  addShare(kind: SharedKind, ctor: string, bytes: Uint8Array): number {
    const rec: ShareRecord = { id: this.nextShareId++, kind, ctor, bytes };
    this.shares.set(rec.id, rec);
    for (const a of this.readyAgents) void this.streamShare(a, rec);
    return rec.id;
  }

  /** Resolves when every live, ready agent holds the shared value (or is lost). */
  async shareReady(id: number): Promise<void> {
    const pending = () => this.readyAgents.some((a) => a.shareStates.get(id) !== 'ready');
    while (pending() && this.shares.has(id)) {
      await new Promise<void>((r) => this.shareWaiters.push(r));
    }
  }

  /** Release a shared value everywhere; resolves when every live agent has reported it released (or after timeoutMs). */
  async removeShare(id: number, timeoutMs = 10_000): Promise<void> {
    if (!this.shares.delete(id)) return;
    const agents = this.agents.filter((a) => !a.lost);
    for (const a of agents) a.link.send({ t: 'unshare', id });
    const deadline = Date.now() + timeoutMs;
    while (agents.some((a) => !a.lost && a.shareStates.get(id) !== 'released') && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.shareWaiters.push(r);
        setTimeout(r, 200).unref();
      });
    }
  }

  private async streamShare(a: AgentState, rec: ShareRecord): Promise<void> {
    a.streaming++;
    try {
      const total = rec.bytes.byteLength;
      let offset = 0;
      do {
        const bytes = rec.bytes.subarray(offset, Math.min(total, offset + SHARE_PIECE));
        a.link.send({ t: 'share', id: rec.id, kind: rec.kind, ctor: rec.ctor, total, offset, bytes });
        a.shareBytesSent += bytes.byteLength;
        offset += bytes.byteLength;
        if (a.link.drained) await a.link.drained();
      } while (offset < total && !a.lost && this.shares.has(rec.id));
    } finally {
      a.streaming--;
      this.pump();
    }
  }

  addJob(job: Job): void {
    this.jobs.push(job);
    this.pump();
  }

  /** Stop a job: drop its queued chunks, tell agents to drop theirs. */
  cancelJob(job: Job): void {
    job.cancel();
    const i = this.jobs.indexOf(job);
    if (i >= 0) this.jobs.splice(i, 1);
    for (let k = this.retryQueue.length - 1; k >= 0; k--) if (this.retryQueue[k]!.job === job) this.retryQueue.splice(k, 1);
    const byAgent = new Map<AgentState, number[]>();
    for (const c of this.chunks.values()) {
      if (c.job !== job) continue;
      this.chunks.delete(c.id);
      if (c.agent) {
        c.agent.release(c.id);
        let ids = byAgent.get(c.agent);
        if (!ids) byAgent.set(c.agent, (ids = []));
        ids.push(c.id);
      }
    }
    for (const [a, ids] of byAgent) a.link.send({ t: 'cancel', ids });
    this.pump();
  }

  /**
   * Start nothing new: no more input is read, chunks no worker has started are reported as
   * cancelled (kind 'cancelled'), and chunks already running finish. For a clean stop at walltime.
   */
  stopStarting(): void {
    this.halted = true;
    for (const c of this.retryQueue.splice(0)) this.cancelChunk(c);
    for (const job of this.jobs) job.endInputNow();
    for (const a of this.readyAgents) a.link.send({ t: 'unqueue' });
  }

  private cancelChunk(c: Chunk): void {
    this.chunks.delete(c.id);
    const err: ErrorRecord = { name: 'CancelledError', message: 'not started: the pool was told to start no more tasks', kind: 'cancelled' };
    for (let i = 0; i < c.items.length; i++) {
      if (c.job.spec.stopOnError && c.offset + i >= c.root.cutAt) break;
      c.root.failures.push({ offset: c.offset + i, error: err, node: c.agent?.node ?? '-', worker: -1, attempts: c.attempts });
      if (c.job.spec.stopOnError) {
        c.root.cutAt = Math.min(c.root.cutAt, c.offset + i);
        break;
      }
    }
    this.partDone(c);
  }

  /** Fail every job (pool terminated, nothing left to run on). */
  abortAll(error: Error): void {
    for (const job of this.jobs.splice(0)) {
      job.cancel();
      job.sink.abort(error);
    }
    this.retryQueue.length = 0;
    this.chunks.clear();
    for (const a of this.agents) a.releaseAll();
  }

  get busy(): boolean {
    return this.jobs.length > 0;
  }

  private stopping = false;

  /** The pool is stopping: agents closing from now on are not losses. */
  shutdown(): void {
    this.stopping = true;
    clearInterval(this.watchdog);
    clearInterval(this.stragglerTimer);
  }

  /** Coalesce dispatch into one pass per microtask. */
  pump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.dispatch();
    });
  }

  private halted = false;

  private dispatch(): void {
    if (this.halted) return;
    const agents = this.readyAgents;
    if (agents.length === 0) return;
    const workers = this.totalWorkers;
    const batches = new Map<AgentState, ChunkSpec[]>();
    // Round-robin one chunk at a time over agents with credit, so that few chunks spread out.
    let progress = true;
    while (progress) {
      progress = false;
      for (let k = 0; k < agents.length; k++) {
        const a = agents[(this.rr + k) % agents.length]!;
        if (a.inflight.size >= a.credits || a.streaming > 0 || a.inflightBytes > MAX_INFLIGHT_BYTES) continue;
        const c = this.nextChunk(workers);
        if (!c) {
          progress = false;
          break;
        }
        progress = true;
        c.agent = a;
        c.sentAt = Date.now();
        a.inflight.set(c.id, c);
        let b = batches.get(a);
        if (!b) batches.set(a, (b = []));
        const spec = this.spec(c);
        c.bytes = spec.items.byteLength;
        a.inflightBytes += c.bytes;
        b.push(spec);
      }
    }
    this.rr = (this.rr + 1) % agents.length;
    for (const [a, chunks] of batches) a.link.send({ t: 'chunks', chunks });
  }

  private spec(c: Chunk): ChunkSpec {
    const s = c.job.spec;
    return {
      id: c.id,
      job: c.job.id,
      fn: s.fn,
      kind: s.kind,
      start: c.root.start + c.offset,
      items: encodeList(c.items),
      count: c.items.length,
      stopOnError: s.stopOnError,
      timeoutMs: s.timeoutMs,
    };
  }

  private nextChunk(workers: number): Chunk | null {
    const r = this.retryQueue.shift();
    if (r) return r;
    for (let k = 0; k < this.jobs.length; k++) {
      const job = this.jobs[k]!;
      const t = job.take(workers);
      if (t) {
        const root: Root = { seq: t.seq, start: t.start, size: t.items.length, values: [], failures: [], parts: [], remaining: 1, cutAt: t.items.length };
        const c: Chunk = { id: this.nextChunkId++, job, root, offset: 0, items: t.items, attempts: 0, losses: 0, agent: null, sentAt: 0, bytes: 0, twin: null };
        this.chunks.set(c.id, c);
        return c;
      }
    }
    return null;
  }

  private onMessage(a: AgentState, m: FromAgent): void {
    a.lastSeen = Date.now();
    switch (m.t) {
      case 'ready':
        a.node = m.node;
        a.workers = m.workers;
        a.cpus = m.cpus;
        a.pid = m.pid;
        a.credits = m.credits;
        a.ready = true;
        for (const rec of this.shares.values()) void this.streamShare(a, rec);
        this.events.agentReady?.(a);
        this.pump();
        break;
      case 'credits':
        a.credits = m.credits;
        this.pump();
        break;
      case 'unqueued':
        for (const id of m.ids) {
          const c = a.release(id);
          if (c && this.chunks.get(id) === c) this.cancelChunk(c);
        }
        break;
      case 'results':
        for (const r of m.results) this.onResult(a, r);
        this.pump();
        break;
      case 'fatal':
        this.events.agentFatal?.(a, m.error);
        a.link.close(new Error(`${m.error.name}: ${m.error.message}`));
        break;
      case 'log':
        this.opts.log(`node ${a.node}: ${m.text}`);
        break;
      case 'shareState': {
        a.shareStates.set(m.id, m.state);
        const w = this.shareWaiters;
        this.shareWaiters = [];
        for (const f of w) f();
        break;
      }
      case 'pong':
      case 'heartbeat':
        break;
    }
  }

  private onResult(a: AgentState, r: ChunkResult): void {
    const c = a.release(r.id);
    if (!c || this.chunks.get(r.id) !== c) return; // cancelled, or already finished elsewhere
    this.chunks.delete(r.id);
    const root = c.root;
    const job = c.job;
    const twin = c.twin;
    if (twin && this.chunks.get(twin.id) === twin) {
      c.twin = twin.twin = null;
      // Its copy is still running: a failure here leaves the work to the copy; a success wins.
      if (r.died) return;
      this.dropChunk(twin);
      this.speculation.won++;
    }
    if (r.died) {
      this.onDied(a, c, r);
      return;
    }
    let values: unknown[] | Float64Array;
    try {
      values = decodeListLike(r.values);
    } catch (e) {
      a.link.close(new Error(`undecodable results for chunk ${r.id}: ${(e as Error).message}`));
      return;
    }
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
      root.failures.push({ offset: c.offset + f.offset, error: f.error, node: a.node, worker: r.worker, attempts: c.attempts + 1 });
      if (job.spec.stopOnError) root.cutAt = Math.min(root.cutAt, c.offset + f.offset);
    }
    root.parts.push({ offset: c.offset, count: c.items.length, node: a.node, worker: r.worker, started: r.started, ended: r.ended, attempts: c.attempts + c.losses + 1 });
    this.partDone(c);
  }

  private partDone(c: Chunk): void {
    const root = c.root;
    root.remaining--;
    if (root.remaining > 0) return;
    if (c.job.cancelled) return;
    if (root.failures.length > 1) root.failures.sort((x, y) => x.offset - y.offset);
    if (c.job.spec.stopOnError && root.failures.length > 0) {
      const first = root.failures[0]!.offset;
      root.values = Array.isArray(root.values) ? ((root.values.length = first), root.values) : root.values.subarray(0, first);
      root.failures.length = 1;
    }
    c.job.sink.accept({ seq: root.seq, start: root.start, values: root.values, failures: root.failures, parts: root.parts, size: root.size });
  }

  /** Make a new part of c's root chunk covering [from, to) of c, and queue it first. */
  private requeuePart(c: Chunk, from: number, to: number, attempts: number): void {
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
    this.chunks.set(part.id, part);
    if (this.halted) this.cancelChunk(part);
    else this.retryQueue.push(part);
  }

  private onDied(a: AgentState, c: Chunk, r: ChunkResult): void {
    const d = r.died!;
    const k = Math.min(Math.max(0, d.offset), c.items.length - 1);
    const n = c.items.length;
    const isTimeout = d.error.kind === 'timeout';
    const attempts = c.attempts + 1;
    if (!isTimeout && attempts <= this.opts.retries) {
      this.opts.log(`node ${a.node}: worker ${r.worker} died running task ${c.root.start + c.offset + k} (${d.error.message}); retrying it (attempt ${attempts + 1} of ${this.opts.retries + 1})`);
      // Isolate the item that was running so that it cannot take its neighbours down with it again.
      this.requeuePart(c, 0, k, c.attempts);
      this.requeuePart(c, k, k + 1, attempts);
      this.requeuePart(c, k + 1, n, c.attempts);
    } else {
      c.root.failures.push({ offset: c.offset + k, error: { ...d.error, kind: isTimeout ? 'timeout' : 'died' }, node: a.node, worker: r.worker, attempts });
      if (c.job.spec.stopOnError) c.root.cutAt = Math.min(c.root.cutAt, c.offset + k);
      this.requeuePart(c, 0, k, c.attempts);
      this.requeuePart(c, k + 1, n, c.attempts);
    }
    this.partDone(c);
  }

  private onLost(a: AgentState, reason: string): void {
    if (a.lost) return;
    a.lost = true;
    const w = this.shareWaiters;
    this.shareWaiters = [];
    for (const f of w) f();
    const wasReady = a.ready;
    a.ready = false;
    const chunks = a.releaseAll();
    for (const c of chunks) {
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
        c.root.failures.push({ offset: c.offset, error: err, node: a.node, worker: -1, attempts: c.attempts + c.losses });
        if (c.job.spec.stopOnError) c.root.cutAt = Math.min(c.root.cutAt, c.offset);
        this.requeuePart(c, 1, c.items.length, c.attempts);
        this.partDone(c);
      } else if (this.halted) {
        this.cancelChunk(c);
      } else {
        this.retryQueue.push(c);
      }
    }
    if (!this.stopping && (wasReady || chunks.length)) {
      this.opts.log(`node ${a.node}: agent lost (${reason}); ${chunks.length} chunk(s) re-dispatched`);
    }
    this.events.agentLost?.(a, reason);
    this.pump();
  }

  /** Forget a chunk in flight and tell its agent to drop it. */
  private dropChunk(c: Chunk): void {
    this.chunks.delete(c.id);
    if (c.agent) {
      c.agent.release(c.id);
      c.agent.link.send({ t: 'cancel', ids: [c.id] });
    }
  }

  /**
   * Once no chunk waits to be dispatched, a chunk running far longer than its job's others gets a
   * copy on a node with an idle worker (preferably another node); the first result wins.
   */
  private checkStragglers(): void {
    if (this.halted || this.retryQueue.length > 0 || this.jobs.length === 0 || this.jobs.some((j) => !j.exhausted)) return;
    const idle = this.readyAgents.filter((a) => a.inflight.size < a.workers);
    if (idle.length === 0) return;
    const now = Date.now();
    for (const c of this.chunks.values()) {
      if (c.twin || !c.agent || c.job.spec.kind === 'shell' || c.job.chunkMs.count < STRAGGLER_MIN_SAMPLES) continue;
      const limit = STRAGGLER_FACTOR * c.job.chunkMs.mean + STRAGGLER_FLOOR_MS;
      if (now - c.sentAt < limit) continue;
      const target = idle.find((a) => a !== c.agent && a.inflight.size < a.workers) ?? idle.find((a) => a.inflight.size < a.workers);
      if (!target) return;
      const copy: Chunk = { ...c, id: this.nextChunkId++, agent: target, sentAt: now, twin: c };
      c.twin = copy;
      this.chunks.set(copy.id, copy);
      const spec = this.spec(copy);
      copy.bytes = spec.items.byteLength;
      target.inflight.set(copy.id, copy);
      target.inflightBytes += copy.bytes;
      target.link.send({ t: 'chunks', chunks: [spec] });
      this.speculation.started++;
      this.opts.log(`straggler: task ${c.root.start + c.offset} has run ${Math.round((now - c.sentAt) / 1000)} s on node ${c.agent.node} (its call's chunks take ${Math.round(c.job.chunkMs.mean)} ms); a copy runs on node ${target.node}, the first result wins`);
    }
  }

  private watch(): void {
    const now = Date.now();
    for (const a of this.agents) {
      if (a.lost) continue;
      a.link.send({ t: 'ping', at: now });
      if (a.ready && now - a.lastSeen > this.opts.lostAfterMs) {
        a.link.close(new Error(`no message for ${Math.round((now - a.lastSeen) / 1000)} s (heartbeat timeout)`));
      }
    }
  }
}

