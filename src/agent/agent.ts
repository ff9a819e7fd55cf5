// The per-node side: take a configuration, run chunks in a WorkerPool, report results and credits.
import { availableParallelism, totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { toErrorRecord } from '../errors.js';
import type { AgentConfig, ChunkResult, FromAgent, ToAgent } from '../protocol/messages.js';
import type { Link } from '../transport/link.js';
import { pinnedEnv, THREAD_VARIABLES } from './threads.js';
import { describeGpus, discoverGpus, gpuEnv, gpuSlots } from './gpus.js';
import { WorkerPool } from './worker-pool.js';
import { NodeShares, type RelayTransport } from './shares.js';
// python-slot.js loads only for a .py task module (PythonSlots.load); python-process.js is light.
import { isPythonModule } from './python-module.js';
import { PythonSlots } from './python-process.js';

export interface AgentInfo {
  /** The node's name as Slurm knows it (SLURMD_NODENAME), or the emulated/SSH host's. */
  node: string;
  /** CPUs this agent may use on its node. */
  cpus: number;
  /** Environment tasks inherit (before pinning). */
  env: NodeJS.ProcessEnv;
  /** Called once when the agent has stopped, with the reason if it failed. */
  onExit?: (error?: Error) => void;
  /** How to reach other agents for shared data (agents over TCP); without it, shared data comes from the coordinator only. */
  relay?: RelayTransport;
  /**
   * Hold a result whose command was killed by SIGTERM/SIGKILL this long before sending it (joined
   * agents): scancel signals the commands and the agent at once, and if the agent's signal comes
   * meanwhile, the chunk is handed back to run elsewhere instead of being reported failed.
   */
  holdKilledMs?: number;
}

/** A shell command's failure when a signal from outside (scancel, the time limit) killed it. */
const KILLED = /^command killed by SIG(TERM|KILL)\b/;

/** One agent per node: owns the node's worker threads and speaks to the coordinator through a Link. */
export class Agent {
  private pool: WorkerPool | null = null;
  private credits = 0;
  private outbox: ChunkResult[] = [];
  private flushScheduled = false;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Something went to the coordinator since the last heartbeat tick (a heartbeat is sent only when nothing else was). */
  private spoke = false;
  /** Shared values on this node, complete or still arriving, and the relay port that serves them on. */
  private readonly shares: NodeShares;

  constructor(
    private readonly link: Link<FromAgent, ToAgent>,
    private readonly info: AgentInfo,
  ) {
    this.shares = new NodeShares({ send: (m) => this.send(m), complete: (entry) => this.pool?.share(entry) }, info.relay);
    link.onMessage((m) => this.handle(m));

    link.onClose((reason) => void this.stop(reason));
  }

  private send(m: FromAgent): void {
    this.spoke = true;
    this.link.send(m);
  }

  private handle(m: ToAgent): void {
    switch (m.t) {
      case 'configure':
        void this.configure(m.config);
        break;
      case 'chunks':
        // Leaving: chunks that were on their way go straight back.
        if (this.leaving) this.send({ t: 'leaving', ids: m.chunks.map((c) => c.id), why: this.leaving });
        else this.pool?.submit(m.chunks);
        break;
      case 'cancel':
        this.pool?.cancel(m.ids);
        break;
      case 'unqueue':
        this.send({ t: 'unqueued', ids: this.pool?.unqueue() ?? [] });
        break;
      case 'fetch':
        this.shares.fetch(m);
        break;
      case 'share':
        this.shares.piece(m);
        break;
      case 'unshare':
        this.shares.unshare(m.id);
        this.pool?.unshare(m.id);
        this.send({ t: 'shareState', id: m.id, state: 'released', bytes: 0 });
        break;
      case 'ping':
        this.send({ t: 'pong', at: m.at });
        break;
      case 'shutdown':
        void this.shutdown(m.graceful);
        break;
    }
  }

  private async configure(config: AgentConfig): Promise<void> {
    if (this.pool) return;
    const threads = Math.max(1, config.threadsPerTask);
    // The allocation's count for this node (from the coordinator) wins over the step's own SLURM_CPUS_ON_NODE.
    if (config.cpus !== undefined && config.cpus > 0) this.info.cpus = config.cpus;
    if (config.workers <= 0 && threads > this.info.cpus) {
      const error = { name: 'OptionError', message: `node ${this.info.node} has ${this.info.cpus} CPU(s), fewer than the ${threads} each task asks for (threadsPerTask / --cpus-per-task)` };
      this.send({ t: 'fatal', error });
      await this.stop(new Error(error.message));
      return;
    }
    let size = config.workers > 0 ? config.workers : Math.max(1, Math.floor(this.info.cpus / threads));
    // GPUs: each worker slot owns its share for good (a replaced worker gets the same ones).
    const gpus = discoverGpus(this.info.env);
    const perTask = config.gpusPerTask ?? 0;
    let slotGpus: number[][] = [];
    const packing = config.taskResources === true;
    if (packing) {
      // Tasks bring their own requests: a worker per CPU, and the ledger decides what runs.
      size = config.workers > 0 ? config.workers : Math.max(1, this.info.cpus);
      if (perTask > gpus.ids.length) {
        const error = { name: 'OptionError', message: `node ${this.info.node} has ${describeGpus(gpus)}, fewer than the ${perTask} each task asks for (gpusPerTask / --gpus-per-task)` };
        this.send({ t: 'fatal', error });
        await this.stop(new Error(error.message));
        return;
      }
    } else if (perTask > 0) {
      slotGpus = gpuSlots(gpus.ids.length, perTask);
      if (slotGpus.length === 0) {
        const error = { name: 'OptionError', message: `node ${this.info.node} has ${describeGpus(gpus)}, fewer than the ${perTask} each task asks for (gpusPerTask / --gpus-per-task)` };
        this.send({ t: 'fatal', error });
        await this.stop(new Error(error.message));
        return;
      }
      size = Math.min(size, slotGpus.length);
    }
    const env = pinnedEnv(this.info.env, threads, size, { taskEnv: config.taskEnv, keep: config.keepThreadEnv === true });
    env.SLURMPOOL_NODE = this.info.node;
    const pool = new WorkerPool(
      {
        size,
        module: config.module,
        initializer: config.initializer,
        initArgs: config.initArgs,
        maxTasksPerWorker: config.maxTasksPerWorker,
        maxHeapMB: config.maxHeapMB > 0 ? config.maxHeapMB : defaultHeapMB(size),
        env,
        shared: this.shares.completed(),
        ...(slotGpus.length > 0 ? { slotEnv: (i: number) => gpuEnv(gpus, slotGpus[i] ?? []) } : {}),
        ...(packing
          ? {
              packing: {
                cpus: this.info.cpus,
                gpus: gpus.ids.length,
                node: this.info.node,
                defaults: { cpus: threads, gpus: perTask },
                envFor: (need: { cpus: number }, positions: number[]) => {
                  const e: Record<string, string> = gpus.ids.length > 0 ? gpuEnv(gpus, positions) : {};
                  // Thread variables follow each task's CPUs, as pinnedEnv does for threadsPerTask.
                  if (config.keepThreadEnv !== true) for (const v of THREAD_VARIABLES) if (config.taskEnv[v] === undefined) e[v] = String(need.cpus);
                  return e;
                },
              },
            }
          : {}),
        python: isPythonModule(config.module) ? new PythonSlots({ python: config.python, env, node: this.info.node }) : null,
      },
      {
        results: (rs) => this.queueResults(rs),
        ...(this.link.sendResults ? { encoded: (data: Uint8Array, ids: number[]) => this.queueEncoded(data, ids) } : {}),
        handBack: (ids) => this.send({ t: 'handback', ids }),
        fatal: (error) => {
          this.send({ t: 'fatal', error });
          void this.stop(new Error(error.message));
        },
      },
    );
    this.pool = pool;
    if (!this.refd) pool.unref();
    try {
      await pool.start();
    } catch (e) {
      this.send({ t: 'fatal', error: toErrorRecord(e) });
      await this.stop(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.credits = pool.wantedCredits();
    this.send({ t: 'ready', node: this.info.node, workers: size, cpus: this.info.cpus, gpus: gpus.ids.length, pid: process.pid, credits: this.credits, ...(pool.exports ? { exports: pool.exports } : {}), ...(this.info.relay ? { relayGroup: this.info.relay.group } : {}) });
    if (config.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => {
        if (!this.spoke) this.send({ t: 'heartbeat' });
        this.spoke = false;
      }, config.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private queueResults(rs: ChunkResult[], released = false): void {
    // Chunks handed back when leaving at once are not reported: they run elsewhere.
    for (const r of rs) {
      if (this.handedBack.has(r.id)) continue;
      const hold = this.info.holdKilledMs ?? 0;
      if (hold > 0 && !released && !this.leaving && r.failures.some((f) => KILLED.test(f.error.message))) {
        const timer = setTimeout(() => this.release(r.id), hold);
        this.killed.set(r.id, { r, timer });
        continue;
      }
      this.outbox.push(r);
    }
    if (!this.flushScheduled) {
      // Results of one worker message go out in one frame, at once: latency matters for small chunks.
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Results as workers encoded them, to go out with the outbox's in one frame, unread (links that can: TCP). */
  private encodedOut: Uint8Array[] = [];

  /**
   * A worker's results as it encoded them: forwarded into the next results frame without being
   * decoded and encoded again, unless this agent must look at them (held or handed-back chunks).
   */
  private queueEncoded(data: Uint8Array, ids: number[]): boolean {
    if ((this.info.holdKilledMs ?? 0) > 0 || this.leaving) return false;
    for (const id of ids) if (this.handedBack.has(id)) return false;
    this.encodedOut.push(data);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 && this.encodedOut.length === 0) return;
    const results = this.outbox;
    this.outbox = [];
    if (this.encodedOut.length > 0) {
      const parts = this.encodedOut;
      this.encodedOut = [];
      this.spoke = true;
      this.link.sendResults!(results, parts);
    } else this.send({ t: 'results', results });
    const want = this.pool?.wantedCredits() ?? 0;
    if (want > this.credits * 1.5 || want * 1.5 < this.credits) {
      this.credits = want;
      this.send({ t: 'credits', credits: want });
    }
  }

  private async shutdown(graceful: boolean): Promise<void> {
    if (graceful && this.pool) await this.pool.idle();
    this.flush();
    await this.stop();
  }

  /** Results of commands killed by a signal, held a moment (holdKilledMs). */
  private readonly killed = new Map<number, { r: ChunkResult; timer: NodeJS.Timeout }>();

  /** Send a held result now. */
  private release(id: number): void {
    const k = this.killed.get(id);
    if (!k) return;
    clearTimeout(k.timer);
    this.killed.delete(id);
    this.queueResults([k.r], true);
  }

  /** Why this agent is leaving (empty: it is not). */
  private leaving = '';
  /** Chunks handed back while a worker ran them (leaving at once): their results are not sent. */
  private readonly handedBack = new Set<number>();

  /**
   * Leave the pool without losing work. `drain` (the allocation ends soon): chunks no worker has
   * started go back to the coordinator at once, the running ones finish and are reported, then the
   * agent stops. `now` (SIGTERM: scancel or walltime, whose signal reaches the tasks too): every chunk
   * it holds goes back, running ones included, and it stops at once. Resolves when it has stopped.
   */
  async leave(how: 'drain' | 'now', why: string): Promise<void> {
    if (this.stopped) return;
    const first = !this.leaving;
    this.leaving = why;
    if (!this.pool) {
      await this.stop();
      return;
    }
    const ids = this.pool.unqueue(false);
    if (how === 'now') {
      for (const id of this.pool.held()) if (!ids.includes(id)) ids.push(id);
      // Killed by the same signal, most likely: run elsewhere.
      for (const [id, k] of this.killed) {
        clearTimeout(k.timer);
        ids.push(id);
      }
      this.killed.clear();
    }
    for (const id of ids) this.handedBack.add(id);
    this.flush();
    if (first || ids.length > 0) this.send({ t: 'leaving', ids, why });
    if (how === 'drain') await this.pool.idle();
    for (const id of [...this.killed.keys()]) this.release(id);
    this.flush();
    await this.stop();
  }

  private refd = true;

  /** Keep the process alive for this agent's threads (in-process agents: work in flight). */
  ref(): void {
    this.refd = true;
    this.pool?.ref();
  }

  /** Let the process exit while this agent's threads are idle (in-process agents). */
  unref(): void {
    this.refd = false;
    this.pool?.unref();
  }

  /** Stop the workers and close the link. Safe to call more than once. */
  async stop(reason?: Error): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeat);
    this.shares.stop();
    for (const k of this.killed.values()) clearTimeout(k.timer);
    await this.pool?.terminate();
    this.link.close();
    this.info.onExit?.(reason);
  }
}

/**
 * A worker's heap limit when none was given: its share of 80% of the node's memory, when that is
 * below V8's own default; otherwise 0 (V8's default). So that workers of one node together cannot
 * grow past the node's memory before a death is reported.
 */
export function defaultHeapMB(workers: number, memBytes = totalmem()): number {
  const share = Math.floor((memBytes * 0.8) / Math.max(1, workers) / (1024 * 1024));
  const v8Default = Math.floor(getHeapStatistics().heap_size_limit / (1024 * 1024));
  return share < v8Default ? Math.max(256, share) : 0;
}

/** CPUs this process may use: SLURMPOOL_CPUS or Slurm's count when given, capped by what the OS lets it run on. */
export function usableCpus(env: NodeJS.ProcessEnv = process.env): number {
  const os = availableParallelism();
  const fromSlurm = [env.SLURMPOOL_CPUS, env.SLURM_CPUS_ON_NODE, env.SLURM_CPUS_PER_TASK]
    .map((v) => (v === undefined ? NaN : Number.parseInt(v, 10)))
    .filter((n) => Number.isInteger(n) && n > 0);
  return Math.max(1, Math.min(os, ...fromSlurm));
}
