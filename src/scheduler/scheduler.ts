// The scheduler's runtime: links, one timer, the codec and shared-data streams around the pure core (core.ts).
import type { ErrorRecord } from '../errors.js';
import type { AgentConfig, ChunkResult, ChunkSpec, FromAgent, RelayPeer, SharedKind, ToAgent } from '../protocol/messages.js';
import type { Link } from '../transport/link.js';
import { decodeListLike, encodeList } from '../protocol/codec.js';
import { MAX_FRAME } from '../protocol/frames.js';
import { chunkNeed } from '../requests.js';
import { AgentState as CoreAgent, SchedulerCore, type Chunk, type Command, type CoreResult } from './core.js';
import type { Job } from './job.js';
import type { ItemTime } from './chunking.js';
import { ShareTree } from './share-tree.js';

export type AgentLink = Link<ToAgent, FromAgent>;
export type AgentState = CoreAgent<AgentLink>;

export interface SchedulerOptions {
  config: AgentConfig;
  /** Worker deaths a chunk may cause before it is reported (multiprocessing has none: it hangs). */
  retries: number;
  /** An agent silent this long is lost. 0 = never (in-process agents). */
  lostAfterMs: number;
  /** Run a copy of a chunk that takes far longer than its job's others, once nothing else waits. */
  speculate: boolean;
  log: (line: string) => void;
  /** CPUs the allocation gives a node, when the launcher knows (sent to its agent in the configuration). */
  cpusOf?: (node: string) => number | undefined;
  /** Milliseconds of dispatch per event-loop turn (default 8; tests use 0: one pass a turn). */
  turnBudgetMs?: number;
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
  /**
   * Who gets it from whom, per relay group (agents that joined with one secret can prove themselves
   * to each other; those of a join port have another): agents relay it to each other, the
   * coordinator sends it a few times per group.
   */
  trees: Map<string, ShareTree>;
  /** Agents that do not hold it whole yet (no chunk goes to them meanwhile). */
  pending: Set<number>;
}

/** Shared values travel in pieces of this size, each one frame. */
export const SHARE_PIECE = 4 * 1024 * 1024;
/** Streams of shared values the coordinator sends at once (all values together); the others wait their turn. */
const MAX_SHARE_STREAMS = 8;
/** fetchFailed lines logged one by one; the rest are counted. */
const FETCH_FAILED_LOGGED = 20;

/** Dispatch per turn of the event loop: at most this much time, in passes of at most DISPATCH_SLICE chunks. */
const TURN_BUDGET_MS = 8;
/** Spend below this is carried over to the next turns instead of being reset by a turn of its own. */
const TURN_RESET_MS = 1;
const DISPATCH_SLICE = 256;

/** The one timer: liveness and straggler checks. */
const TICK_MS = 250;
/** Every agent hears from the coordinator at least this often (its own watchdog waits 180 s). */
const PING_EVERY_MS = 60_000;

/** One scheduler for every mode: feeds the core with what links say, carries out what the core decides. */
export class Scheduler {
  readonly core: SchedulerCore;
  private readonly byId = new Map<number, AgentState>();
  private nextShareId = 1;
  private readonly shares = new Map<number, ShareRecord>();
  private shareWaiters: (() => void)[] = [];
  private nextAgentId = 1;
  private pumpQueued = false;
  private pumpLater = false;
  /** A dispatch found this turn's budget spent: the next turn dispatches. */
  private dispatchLater = false;
  /** Milliseconds of dispatch this turn of the event loop has spent: every results frame pumps, and a turn reads many. */
  private turnSpent = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastPing = 0;
  /** The clock the core is given (it reads none itself). */
  private readonly now = Date.now;
  events: SchedulerEvents = {};

  private readonly turnBudgetMs: number;

  constructor(readonly opts: SchedulerOptions) {
    this.turnBudgetMs = opts.turnBudgetMs ?? TURN_BUDGET_MS;
    this.core = new SchedulerCore({ retries: opts.retries, lostAfterMs: opts.lostAfterMs, speculate: opts.speculate });
    if (opts.speculate || opts.lostAfterMs > 0) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
  }

  /** Every agent that ever connected. */
  get agents(): AgentState[] {
    return [...this.byId.values()];
  }

  get readyAgents(): AgentState[] {
    const out: AgentState[] = [];
    for (const a of this.byId.values()) if (a.ready && !a.lost) out.push(a);
    return out;
  }

  get readyCount(): number {
    return this.core.readyCount;
  }

  get totalWorkers(): number {
    return this.core.totalWorkers;
  }

  get speculation(): { started: number; won: number } {
    return this.core.speculation;
  }

  get busy(): boolean {
    return this.core.busy;
  }

  /** Take a new agent's link; it is configured at once and joins when it reports ready. */
  addAgent(link: AgentLink, expected: string): AgentState {
    const a: AgentState = new CoreAgent(this.nextAgentId++, link, expected);
    this.byId.set(a.id, a);
    this.core.agentJoined(a, this.now());
    link.onMessage((m) => this.onMessage(a, m));
    link.onClose((reason) => {
      this.core.agentLost(a, reason ? reason.message : 'connection closed');
      this.relayOf.delete(a.id);
      for (const rec of this.shares.values()) {
        rec.pending.delete(a.id);
        this.treeOf(rec, a).lost(a.id);
        this.assignShare(rec);
      }
      this.wakeShareWaiters();
      this.run();
      this.pump();
    });
    const cpus = this.opts.cpusOf?.(expected);
    link.send({ t: 'configure', config: cpus ? { ...this.opts.config, cpus } : this.opts.config });
    return a;
  }

  /** Send a value to every node once; agents that join later get it when they are ready. */
  addShare(kind: SharedKind, ctor: string, bytes: Uint8Array): number {
    const rec: ShareRecord = { id: this.nextShareId++, kind, ctor, bytes, trees: new Map(), pending: new Set() };
    this.shares.set(rec.id, rec);
    for (const a of this.readyAgents) this.needShare(a, rec);
    this.assignShare(rec);
    return rec.id;
  }

  /** Relay ports agents reported (they open one when they first hold a shared value). */
  private readonly relayOf = new Map<number, RelayPeer>();

  private needShare(a: AgentState, rec: ShareRecord): void {
    if (rec.pending.has(a.id) || a.shareStates.get(rec.id) === 'ready') return;
    rec.pending.add(a.id);
    this.core.streaming(a, 1);
    const tree = this.treeOf(rec, a);
    tree.want(a.id);
    if (this.relayOf.has(a.id)) tree.canRelay(a.id);
  }

  /** The relay tree of an agent's group (an agent that relays with none is a group of its own). */
  private treeOf(rec: ShareRecord, a: AgentState): ShareTree {
    const g = a.relayGroup ? `g:${a.relayGroup}` : `a:${a.id}`;
    let t = rec.trees.get(g);
    if (!t) rec.trees.set(g, (t = new ShareTree()));
    return t;
  }

  /** Give waiting agents a source: another agent's relay port, or the coordinator itself. */
  private assignShare(rec: ShareRecord): void {
    if (!this.shares.has(rec.id)) return;
    for (const tree of rec.trees.values()) {
      for (const { agent, source } of tree.assign()) {
        const a = this.byId.get(agent);
        if (!a || a.lost) continue;
        const peer = source > 0 ? this.relayOf.get(source) : undefined;
        a.shareSources.set(rec.id, peer ? peer.node : 'coordinator');
        a.link.send({ t: 'fetch', id: rec.id, kind: rec.kind, ctor: rec.ctor, total: rec.bytes.byteLength, ...(peer ? { peer } : {}) });
      }
    }
  }

  private shareHeld(a: AgentState, id: number): void {
    const rec = this.shares.get(id);
    if (!rec) return;
    if (rec.pending.delete(a.id)) this.core.streaming(a, -1);
    this.treeOf(rec, a).complete(a.id);
    this.assignShare(rec);
    this.pump();
  }

  private fetchFailures = 0;

  /** Resolves when every live, ready agent holds the shared value (or is lost). */
  async shareReady(id: number): Promise<void> {
    const pending = () => this.readyAgents.some((a) => a.shareStates.get(id) !== 'ready');
    while (pending() && this.shares.has(id)) {
      await new Promise<void>((r) => this.shareWaiters.push(r));
    }
  }

  /** Release a shared value everywhere; resolves when every live agent has reported it released (or after timeoutMs). */
  async removeShare(id: number, timeoutMs = 10_000): Promise<void> {
    const rec = this.shares.get(id);
    if (!rec) return;
    this.shares.delete(id);
    for (const aid of rec.pending) {
      const a = this.byId.get(aid);
      if (a) this.core.streaming(a, -1);
    }
    rec.pending.clear();
    this.pump();
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

  private wakeShareWaiters(): void {
    const w = this.shareWaiters;
    this.shareWaiters = [];
    for (const f of w) f();
  }

  /** Shared-value streams running now; the others wait their turn (bounded memory and work per turn). */
  private streams = 0;
  private streamWaiters: (() => void)[] = [];

  /** Stream a shared value to an agent from byte `from` (the coordinator is its source). */
  private async streamShare(a: AgentState, rec: ShareRecord, from: number): Promise<void> {
    while (this.streams >= MAX_SHARE_STREAMS) await new Promise<void>((r) => this.streamWaiters.push(r));
    this.streams++;
    try {
      const total = rec.bytes.byteLength;
      let offset = Math.min(from, total);
      do {
        const bytes = rec.bytes.subarray(offset, Math.min(total, offset + SHARE_PIECE));
        a.link.send({ t: 'share', id: rec.id, kind: rec.kind, ctor: rec.ctor, total, offset, bytes });
        a.shareBytesSent += bytes.byteLength;
        offset += bytes.byteLength;
        if (a.link.drained) await a.link.drained();
      } while (offset < total && !a.lost && this.shares.has(rec.id));
    } finally {
      this.streams--;
      this.streamWaiters.shift()?.();
    }
  }

  /** Item durations learned by finished calls, per function: the next call of the same one starts from them. */
  private readonly learned = new Map<string, ItemTime>();

  addJob(job: Job): void {
    const prior = job.spec.kind === 'shell' ? undefined : this.learned.get(`${job.spec.kind}:${job.spec.fn}`);
    if (prior) job.seed(prior);
    this.core.addJob(job);
    this.pump();
  }

  /** Stop a job (it is done, or abandoned): drop its queued chunks, tell agents to drop theirs. */
  cancelJob(job: Job): void {
    if (job.spec.kind !== 'shell' && job.learned.count > 0) {
      if (this.learned.size > 256) this.learned.clear();
      this.learned.set(`${job.spec.kind}:${job.spec.fn}`, job.learned);
    }
    this.core.cancelJob(job);
    this.run();
    this.pump();
  }

  /**
   * Start nothing new: no more input is read, chunks no worker has started are reported as
   * cancelled (kind 'cancelled'), and chunks already running finish. For a clean stop at walltime.
   */
  stopStarting(): void {
    this.core.stopStarting();
    this.run();
  }

  /** Fail every job (pool terminated, nothing left to run on). */
  abortAll(error: Error): void {
    this.core.abortAll(error);
    this.run();
  }

  /** The pool is stopping: agents closing from now on are not losses. */
  shutdown(): void {
    this.core.shutdown();
    clearInterval(this.timer);
  }

  /** Coalesce dispatch into one pass per microtask; a pass that hit its bound continues on a later turn. */
  pump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    // The first pass of a turn always runs (progress every turn); later ones only while time is left.
    let more = this.turnSpent > 0 && this.turnSpent >= this.turnBudgetMs;
    const t0 = performance.now();
    // Bounded passes (encoding and sending as they go) until the turn's time is spent.
    while (!more) {
      more = this.core.dispatch(this.now(), DISPATCH_SLICE);
      this.run();
      if (!more) break;
      more = performance.now() - t0 + this.turnSpent >= this.turnBudgetMs;
    }
    this.turnSpent += Math.max(performance.now() - t0, 0.001);
    // Whoever finds the turn's budget spent leaves the rest to the next turn, whichever call scheduled it.
    if (more) this.dispatchLater = true;
    // A light turn (the common case: a call of a few chunks) leaves its spend to be counted with the
    // next turns' until it reaches TURN_RESET_MS, rather than paying an extra turn of the event loop
    // per dispatch to reset it: the budget per turn is then at least TURN_BUDGET_MS - TURN_RESET_MS.
    if (!this.pumpLater && (more || this.turnSpent >= TURN_RESET_MS)) {
      // The budget is per turn of the event loop: I/O (results, heartbeats, new agents) gets in
      // before the next pass, however many frames pumped during this one.
      this.pumpLater = true;
      setImmediate(() => {
        this.pumpLater = false;
        this.turnSpent = 0;
        if (this.dispatchLater) {
          this.dispatchLater = false;
          this.dispatch();
        }
      });
    }
  }

  private tick(): void {
    const now = this.now();
    this.core.tick(now, TICK_MS);
    if (this.opts.lostAfterMs > 0 && now - this.lastPing >= PING_EVERY_MS) {
      // One ping per agent every few seconds keeps agents' watchdogs quiet and provokes an answer from a quiet agent.
      this.lastPing = now;
      for (const a of this.byId.values()) if (!a.lost) a.link.send({ t: 'ping', at: now });
    }
    this.run();
  }

  /** Carry out the core's commands. */
  private run(): void {
    const cmds = this.core.take();
    for (let i = 0; i < cmds.length; i++) this.exec(cmds[i]!);
  }

  private exec(cmd: Command): void {
    switch (cmd.c) {
      case 'send': {
        const a = cmd.agent as AgentState;
        const specs: ChunkSpec[] = [];
        const tooLarge: CoreResult[] = [];
        for (let i = 0; i < cmd.chunks.length; i++) {
          const c = cmd.chunks[i]!;
          const spec = this.spec(c);
          if (spec.items.byteLength > MAX_FRAME - 65_536) {
            // Never sent: its frame would be refused and the node's link closed. Its items fail, once, with the reason.
            const error = { name: 'ItemTooLarge', message: `chunk of ${spec.count} item(s) encodes to ${spec.items.byteLength} bytes, over the ${MAX_FRAME}-byte frame limit: pass large read-only data with pool.share, or split it`, kind: 'error' as const };
            const n = c.job.spec.stopOnError ? 1 : c.items.length;
            tooLarge.push({ id: c.id, worker: -1, values: [], failures: Array.from({ length: n }, (_, k) => ({ offset: k, error })), started: this.now(), ended: this.now() });
            continue;
          }
          specs.push(spec);
          this.core.sentBytes(a, c, spec.items.byteLength);
        }
        if (specs.length) a.link.send({ t: 'chunks', chunks: specs });
        if (tooLarge.length) {
          this.core.results(a, tooLarge, this.now());
          queueMicrotask(() => {
            this.run();
            this.pump();
          });
        }
        break;
      }
      case 'cancel':
        (cmd.agent as AgentState).link.send({ t: 'cancel', ids: cmd.ids });
        break;
      case 'unqueue':
        (cmd.agent as AgentState).link.send({ t: 'unqueue' });
        break;
      case 'close':
        (cmd.agent as AgentState).link.close(new Error(cmd.reason));
        break;
      case 'outcome':
        cmd.job.sink.accept(cmd.outcome);
        break;
      case 'ready': {
        const a = cmd.agent as AgentState;
        for (const rec of this.shares.values()) {
          this.needShare(a, rec);
          this.assignShare(rec);
        }
        this.events.agentReady?.(a);
        break;
      }
      case 'lost':
        this.events.agentLost?.(cmd.agent as AgentState, cmd.reason);
        break;
      case 'log':
        this.opts.log(cmd.line);
        break;
    }
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
      ...(this.opts.config.taskResources && s.kind === 'shell' ? needOf(c.items as unknown[], this.opts.config) : {}),
    };
  }

  private readonly inbox: [AgentState, ChunkResult[]][] = [];
  private inboxScheduled = false;
  /** Milliseconds spent taking results this turn. */
  private resultsSpent = 0;

  /** Results taken for at most TURN_BUDGET_MS per turn; the rest on the next turn. */
  private drainInbox(): void {
    this.inboxScheduled = false;
    const t0 = performance.now();
    let k = 0;
    while (k < this.inbox.length && (k === 0 || performance.now() - t0 < TURN_BUDGET_MS)) {
      const [a, results] = this.inbox[k++]!;
      if (!a.lost) this.takeResults(a, results);
    }
    this.inbox.splice(0, k);
    if (this.inbox.length > 0) {
      this.inboxScheduled = true;
      setImmediate(() => this.drainInbox());
    }
    this.run();
    this.pump();
  }

  private takeResults(a: AgentState, results: ChunkResult[]): void {
    const rs: CoreResult[] = new Array(results.length);
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      let values: unknown[] | Float64Array;
      try {
        values = r.died ? [] : decodeListLike(r.values);
      } catch (e) {
        a.link.close(new Error(`undecodable results for chunk ${r.id}: ${(e as Error).message}`));
        return;
      }
      rs[i] = { id: r.id, worker: r.worker, values, failures: r.failures, started: r.started, ended: r.ended, ...(r.died ? { died: r.died } : {}) };
    }
    this.core.results(a, rs, this.now());
  }

  private onMessage(a: AgentState, m: FromAgent): void {
    const now = this.now();
    this.core.heard(a, now);
    switch (m.t) {
      case 'ready':
        a.relayGroup = typeof m.relayGroup === 'string' ? m.relayGroup.slice(0, 64) : '';
        this.core.agentReady(a, m, now);
        this.run();
        this.pump();
        break;
      case 'credits':
        this.core.credits(a, m.credits);
        this.pump();
        break;
      case 'unqueued':
        this.core.unqueued(a, m.ids);
        this.run();
        this.pump();
        break;
      case 'handback':
        this.core.handBack(a, m.ids);
        this.run();
        this.pump();
        break;
      case 'leaving':
        this.core.agentLeaving(a, m.ids, typeof m.why === 'string' ? m.why.slice(0, 200) : 'leaving');
        this.run();
        this.pump();
        break;
      case 'results':
        // At once while this turn of the event loop has time left; past that (a turn may read a frame
        // from each of a thousand agents) queued and taken in bounded slices on the next turns.
        if (this.inbox.length === 0 && this.resultsSpent < TURN_BUDGET_MS) {
          const t0 = performance.now();
          this.takeResults(a, m.results);
          this.run();
          this.pump();
          const before = this.resultsSpent;
          this.resultsSpent += performance.now() - t0 || 0.001;
          // Reset on the next turn once it counts (see dispatch): light turns add up first.
          if (before < TURN_RESET_MS && this.resultsSpent >= TURN_RESET_MS) setImmediate(() => (this.resultsSpent = 0));
          break;
        }
        this.inbox.push([a, m.results]);
        if (!this.inboxScheduled) {
          this.inboxScheduled = true;
          setImmediate(() => this.drainInbox());
        }
        break;
      case 'fatal':
        this.events.agentFatal?.(a, m.error);
        a.link.close(new Error(`${m.error.name}: ${m.error.message}`));
        break;
      case 'log':
        this.opts.log(`node ${a.node}: ${m.text}`);
        break;
      case 'shareState':
        a.shareStates.set(m.id, m.state);
        if (m.state === 'ready') this.shareHeld(a, m.id);
        this.wakeShareWaiters();
        break;
      case 'want': {
        const rec = this.shares.get(m.id);
        // Only an agent this coordinator named itself the source for gets a stream.
        if (rec && this.treeOf(rec, a).sourceOf(a.id) === 0) void this.streamShare(a, rec, m.from);
        break;
      }
      case 'relay':
        this.relayOf.set(a.id, { node: a.node, host: m.host, port: m.port });
        for (const rec of this.shares.values()) {
          this.treeOf(rec, a).canRelay(a.id);
          this.assignShare(rec);
        }
        break;
      case 'fetchFailed': {
        const rec = this.shares.get(m.id);
        if (!rec) break;
        if (++this.fetchFailures <= FETCH_FAILED_LOGGED) {
          this.opts.log(`node ${a.node}: fetching shared value ${m.id} failed at byte ${m.got} of ${rec.bytes.byteLength} (${m.reason}); getting it elsewhere`);
        }
        this.treeOf(rec, a).failed(a.id);
        this.assignShare(rec);
        break;
      }
      case 'pong':
      case 'heartbeat':
        break;
    }
  }
}

/** The CPUs and GPUs a shell chunk holds while it runs, when its items carry requests (taskResources). */
function needOf(items: unknown[], config: AgentConfig): { need?: { cpus: number; gpus: number } } {
  const need = chunkNeed(items, { cpus: Math.max(1, config.threadsPerTask), gpus: config.gpusPerTask ?? 0 });
  return need ? { need } : {};
}
