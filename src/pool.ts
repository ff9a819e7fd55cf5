// The public API: multiprocessing.Pool's calls, on one scheduler for every mode.
import { abortErrorOf, LaunchError, OptionError, PoolClosedError } from './errors.js';
import type { Launcher } from './launch/launcher.js';
import { LocalLauncher } from './launch/local.js';
import { ArraySink, IterSink, RecordSink, type TaskRecord } from './ordering.js';
import { resolveMapOptions, resolveOptions, type MapOptions, type Mode, type PoolOptions, type RecordOptions, type ResolvedOptions } from './options.js';
import type { AgentConfig, TaskKind } from './protocol/messages.js';
import { Job, type Input } from './scheduler/job.js';
import { Scheduler, type AgentState } from './scheduler/scheduler.js';
import { pickMode } from './launch/pick.js';
import { overriddenThreadVariables } from './agent/threads.js';
import { encodeTransferable, loadCodec } from './protocol/codec.js';
import type { Items, TaskArgs, TaskItem, TaskName, TaskResult, UntypedModule } from './task-types.js';
import { SHARED_KEY, VIEW_CTORS, isSharedRef, type SharedRef } from './shared.js';
// The join door and the grower load only when a pool uses them: a local pool never loads TCP and auth.
import type { JoinListener } from './launch/join.js';
import type { Grower } from './launch/grow.js';

export type { RecordOptions } from './options.js';

/** A node of the running pool. */
export interface NodeInfo {
  node: string;
  workers: number;
  cpus: number;
  /** GPUs the node's agent found (docs/gpus.md). */
  gpus: number;
  pid: number;
}

type SettleSink = ArraySink<unknown> | IterSink<unknown> | RecordSink;

/** Per node: what it ran and how busy it was. */
export interface NodeStats {
  node: string;
  workers: number;
  alive: boolean;
  chunks: number;
  tasks: number;
  busyMs: number;
  /** It left the pool cleanly (its allocation ended, scancel): not a loss. */
  left?: true;
}

/**
 * A pool of workers on one machine or across every node of an allocation. `M`, the task module's
 * type (`Pool.open<typeof import('./tasks.js')>(…)`), makes calls check export names, arguments and
 * results; without it any name goes and results are `unknown` (or the type given to each call).
 */
export class Pool<M extends object = UntypedModule> implements AsyncDisposable {
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly active = new Map<SettleSink, Job>();
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly scheduler: Scheduler,
    private readonly launcher: Launcher,
    private readonly opts: ResolvedOptions,
    /** local, emulate, slurm or ssh. */
    readonly mode: Mode,
  ) {}

  /** Start the workers (and the agents on every node) and resolve when all are ready to run tasks. */
  static async open<M extends object = UntypedModule>(options: PoolOptions): Promise<Pool<M>> {
    const opts = resolveOptions(options);
    const signal = options.signal;
    if (signal?.aborted) throw abortErrorOf(signal);
    const mode = pickMode(opts);
    const launcher = await makeLauncher(mode, launchOptions(opts));
    if (signal?.aborted) {
      await launcher.stop(false).catch(() => undefined);
      throw abortErrorOf(signal);
    }
    const config: AgentConfig = {
      module: opts.moduleUrl,
      initializer: opts.initializer,
      initArgs: opts.initArgs,
      maxTasksPerWorker: opts.maxTasksPerWorker,
      threadsPerTask: opts.threadsPerTask,
      keepThreadEnv: opts.keepThreadEnv,
      ...(opts.gpusPerTask > 0 ? { gpusPerTask: opts.gpusPerTask } : {}),
      ...(opts.taskResources ? { taskResources: true } : {}),
      // 0: each node decides from its CPUs (a local pool's own agent is told its CPUs; agents that join, theirs).
      workers: opts.workersGiven || (mode === 'local' && !opts.joinFile) ? opts.workers : 0,
      maxHeapMB: opts.maxHeapMB,
      // A local pool that others may join watches its agents as a distributed one does.
      heartbeatMs: mode === 'local' && !opts.joinFile ? 0 : opts.heartbeatMs,
      taskEnv: opts.taskEnv,
      ...(opts.python ? { python: opts.python } : {}),
    };
    const log = opts.log ?? (() => undefined);
    const overridden = overriddenThreadVariables(opts.env, opts.threadsPerTask, opts.taskEnv, opts.keepThreadEnv);
    if (overridden.length > 0) {
      log(`thread variables pinned to ${opts.threadsPerTask} per task (the cores each task has): ${overridden.join(', ')} from the environment overridden; keep them with keepThreadEnv (--keep-thread-env, SLURMPOOL_KEEP_THREAD_ENV=1), or give values for the tasks in taskEnv`);
    }
    const scheduler = new Scheduler({
      config,
      retries: opts.retries,
      lostAfterMs: mode === 'local' && !opts.joinFile ? 0 : opts.lostAfterMs,
      speculate: opts.speculate,
      log,
      cpusOf: (node) => launcher.cpusOf?.(node),
    });
    const pool = new Pool<M>(scheduler, launcher, opts, mode);
    // The codec loads while the agents' threads start (this thread waits for them then), not on the first call.
    setImmediate(loadCodec);
    try {
      await pool.startAgents(signal);
    } catch (e) {
      scheduler.shutdown();
      await launcher.stop(false).catch(() => undefined);
      throw e;
    }
    if (mode !== 'local' || opts.logGiven) {
      const nodes = scheduler.readyAgents;
      log(`${mode} mode: ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${compressNames(nodes.map((a) => a.node))}), ${scheduler.totalWorkers} workers`);
    }
    try {
      await pool.openElastic();
    } catch (e) {
      await pool.terminate().catch(() => undefined);
      throw e;
    }
    pool.updateRef();
    return pool;
  }

  /** The join file other allocations' agents join through (joinFile), and the grower (grow). */
  private listener: JoinListener | null = null;
  private grower: Grower | null = null;

  /** Open the second door (join file) and start growing, once the pool's own nodes are in. */
  private async openElastic(): Promise<void> {
    const { opts, scheduler } = this;
    if (!opts.joinFile) return;
    const log = opts.log ?? (() => undefined);
    const { JOINED_PREFIX, JoinListener, joinFilePath } = await import('./launch/join.js');
    const listener = new JoinListener(joinFilePath(opts.joinFile));
    this.listener = listener;
    await listener.start(scheduler, launchOptions(opts));
    const ready = scheduler.events.agentReady;
    scheduler.events.agentReady = (a) => {
      ready?.(a);
      if (!a.expected.startsWith(JOINED_PREFIX)) return;
      log(`node ${a.node} joined (${a.workers} worker${a.workers === 1 ? '' : 's'})`);
      this.grower?.joined(a.node);
    };
    if (!opts.grow) return;
    const grow = opts.grow;
    const { Grower } = await import('./launch/grow.js');
    this.grower = new Grower({
      grow,
      joinFile: listener.file,
      env: launchOptions(opts).env,
      log,
      state: () => {
        let workers = 0;
        let nodes = 0;
        let busy = 0;
        let done = 0;
        for (const a of scheduler.agents) {
          busy += a.busyMs;
          done += a.itemsDone;
          if (a.ready && !a.lost && !a.leaving) {
            workers += a.workers;
            nodes++;
          }
        }
        return { backlog: grow.backlog ? grow.backlog() : this.unfinished(), workers, nodes, taskMs: done > 0 ? busy / done : null };
      },
    });
    this.grower.start();
  }

  /** Tasks of the pending calls not finished yet: not read from their inputs, or on a node now. */
  private unfinished(): number {
    let n = 0;
    for (const job of this.active.values()) n += job.unread;
    for (const a of this.scheduler.agents) for (const c of a.inflight.values()) n += c.items.length;
    return n;
  }

  /** The join file agents of other allocations join through (options.joinFile, grow); undefined without one. */
  get joinFile(): string | undefined {
    return this.listener?.file;
  }

  /** Every job the pool submitted to grow (options.grow), in order. */
  get grownJobs(): string[] {
    return this.grower?.ids ?? [];
  }

  private startAgents(signal: AbortSignal | undefined): Promise<void> {
    const { scheduler, launcher, opts } = this;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => finish(abortErrorOf(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      const failures = new Map<string, string>();
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const expected = () => launcher.nodes.length;
      const need = () => (opts.minNodes > 0 ? Math.min(opts.minNodes, expected()) : expected());
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (settled) return;
        const ready = scheduler.readyCount;
        const failed = failures.size;
        if (ready === expected()) return finish();
        if (expected() - failed < need()) return finish(this.startError(failures, 'could not start'));
        if (ready + failed === expected() && ready >= need()) {
          for (const [node, why] of failures) opts.log?.(`node ${node}: left out: ${why}`);
          return finish();
        }
      };
      scheduler.events = {
        agentReady: () => check(),
        agentFatal: (a, error) => {
          failures.set(a.expected || a.node, `${error.name}: ${error.message}`);
          check();
        },
        agentLost: (a, reason) => {
          if (!settled) {
            if (!failures.has(a.expected)) failures.set(a.expected, launcher.failureOf?.(a.expected) ?? reason);
            check();
          } else this.onAgentLost(a, reason);
        },
      };
      timer = setTimeout(() => {
        const ready = new Set(scheduler.readyAgents.map((a) => a.expected));
        for (const n of launcher.nodes) if (!ready.has(n) && !failures.has(n)) failures.set(n, launcher.failureOf?.(n) ?? `no agent connected within ${opts.startTimeout} ms`);
        if (ready.size >= need() && ready.size > 0) {
          for (const [node, why] of failures) opts.log?.(`node ${node}: left out: ${why}`);
          finish();
        } else finish(this.startError(failures, 'did not start in time'));
      }, opts.startTimeout);
      timer.unref();
      const failed = (node: string, why: string) => {
        if (settled) {
          // A node lost mid-run that will not come back: the run fails only when no node is left.
          this.checkAllLost(node);
          return;
        }
        if (scheduler.readyAgents.some((a) => a.expected === node)) return;
        // The agent's link may still be open (it was accepted, then its process died): say why once.
        if (!failures.has(node)) failures.set(node, why);
        check();
      };
      launcher.start(scheduler, launchOptions(opts), failed).then(check, (e: unknown) => finish(e instanceof Error ? e : new LaunchError(String(e))));
    });
  }

  private startError(failures: Map<string, string>, what: string): Error {
    const first = [...failures.values()][0] ?? '';
    if (this.mode === 'local' && failures.size === 1) return new LaunchError(`workers ${what}: ${first}`);
    const need = this.opts.minNodes || this.launcher.nodes.length;
    if (this.mode === 'join') {
      return new LaunchError(`${this.scheduler.readyCount} of ${this.launcher.nodes.length} agent(s) joined within ${this.opts.startTimeout} ms (need ${need})`);
    }
    // A thousand nodes that failed alike are not a thousand lines: the first 20, then a count.
    const all = [...failures];
    const lines = all.slice(0, 20).map(([n, why]) => `  ${n}: ${why}`);
    if (all.length > 20) lines.push(`  … and ${all.length - 20} more`);
    return new LaunchError(`${failures.size} of ${this.launcher.nodes.length} node(s) ${what} (need ${need}):\n${lines.join('\n')}`);
  }

  private onAgentLost(a: AgentState, reason = 'connection closed'): void {
    // A node that left cleanly (its allocation ending, scancel) lost nothing: not a node loss.
    if (a.readyAt > 0 && !a.left && this.state !== 'closed') this.opts.onNodeLost?.(a.node, reason, Date.now());
    this.lastLost = `${a.node}: ${reason}`;
    this.checkAllLost(this.lastLost);
  }

  private lostTimer: NodeJS.Timeout | undefined;
  /** The last node lost after open and why ('node: reason'), if any. */
  private lastLost: string | null = null;

  /**
   * With no node left, pending work fails, unless a lost node's agent is being started again (or
   * its process has not exited yet, so a restart may follow): then it waits for it, at most
   * startTimeout.
   */
  private checkAllLost(last: string): void {
    if (this.state === 'closed' || this.scheduler.readyCount > 0 || !this.scheduler.busy) return;
    const abort = () => this.scheduler.abortAll(new LaunchError(`every node was lost (last: ${last}); no worker is left to run tasks`));
    const l = this.launcher;
    // Agents may still come: a restart, a grown job out, or anyone through the join file.
    const pending = (l.restarting ?? 0) > 0 || (l.isRunning !== undefined && l.nodes.some((n) => l.isRunning!(n))) || (this.grower?.pending ?? 0) > 0 || this.listener !== null;
    if (!pending) return abort();
    if (this.lostTimer) return;
    this.lostTimer = setTimeout(() => {
      this.lostTimer = undefined;
      if (this.scheduler.readyCount === 0 && this.state !== 'closed') abort();
    }, this.opts.startTimeout);
    this.lostTimer.unref();
  }

  /** Where the coordinator listens for agents (distributed modes); undefined in local mode. */
  get address(): { host: string; port: number } | undefined {
    return this.launcher.address;
  }

  /** Nodes running agents now. */
  get nodes(): NodeInfo[] {
    return this.scheduler.readyAgents.map((a) => ({ node: a.node, workers: a.workers, cpus: a.cpus, gpus: a.gpus, pid: a.pid }));
  }

  /** Worker threads across all nodes. */
  get workers(): number {
    return this.scheduler.totalWorkers;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new PoolClosedError(`the pool is ${this.state === 'closing' ? 'closing' : 'closed'}; open a new one to run more tasks`);
  }

  private check(fn: unknown): asserts fn is string {
    this.checkOpen();
    if (typeof fn !== 'string' || fn === '') throw new OptionError(`the task must be the name of an export of the task module, got ${JSON.stringify(fn)}`);
    if (this.opts.moduleUrl === null) throw new OptionError(`this pool has no task module (options.module), so it cannot run '${fn}'`);
    // Refused before any work starts when the nodes said what the module exports.
    const exports = this.taskExports();
    if (exports && exports[fn] !== 'function') {
      const where = this.opts.moduleUrl;
      if (exports[fn] !== undefined) throw new OptionError(`export '${fn}' of task module ${where} is not a function (it is ${exports[fn]})`);
      const fns = Object.keys(exports).filter((k) => exports[k] === 'function');
      throw new OptionError(`task module ${where} has no export named '${fn}' (its function exports: ${fns.join(', ') || 'none'})`);
    }
  }

  /** The task module's exports (name → typeof), as the first ready node reported them. */
  private taskExports(): Record<string, string> | null {
    for (const a of this.scheduler.agents) if (a.ready && a.exports) return a.exports;
    return null;
  }

  /** What a call's input calls when more of it is ready: one function for every call. */
  private readonly pump = (): void => this.scheduler.pump();

  /** Remove each pending call's abort listener. */
  private readonly unlisten = new Map<SettleSink, () => void>();

  private submit(fn: string, kind: TaskKind, items: Input, o: MapOptions | RecordOptions | undefined, sink: SettleSink, records = false): Job {
    const m = resolveMapOptions(o, this.opts.timeout, records);
    const stopOnError = !records;
    const skip = records ? (o as RecordOptions | undefined)?.skip : undefined;
    const job = new Job(
      { fn, kind, chunksize: m.chunksize, stopOnError, timeoutMs: m.timeout, ...(skip ? { skip } : {}), ...(m.retryFailed > 0 ? { retryFailed: m.retryFailed } : {}) },
      items,
      sink,
      this.pump,
      this.scheduler.totalWorkers,
    );
    sink.job = job;
    this.active.set(sink, job);
    this.scheduler.addJob(job);
    this.updateRef();
    // Every node was lost while the pool was idle (a worker that failed to start after open): fail now, not hang.
    if (this.lastLost !== null && this.scheduler.readyCount === 0) this.checkAllLost(this.lastLost);
    const signal = o?.signal;
    if (signal) {
      // Dispatch happens on a later microtask: a call aborted already is cancelled before any chunk leaves.
      const onAbort = () => sink.cancel(abortErrorOf(signal));
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.unlisten.set(sink, () => signal.removeEventListener('abort', onAbort));
      }
    }
    return job;
  }

  /** share/unshare transfers in progress. */
  private transfers = 0;
  private refd = true;

  /**
   * Keep the process alive while work is in flight (a call pending, a transfer, a close), and let it
   * exit while the pool is idle: the launcher unreferences threads, agent processes and sockets.
   */
  private updateRef(): void {
    const want = this.wantsRef();
    if (want === this.refd || this.state === 'closed') return;
    if (!want) {
      // Idle: let go at the end of this turn of the event loop, unless another call came meanwhile (a
      // loop of awaited calls would otherwise unreference and reference every thread, socket and
      // process once per call).
      if (!this.unrefQueued) {
        this.unrefQueued = true;
        setImmediate(() => {
          this.unrefQueued = false;
          this.updateRefNow();
        }).unref();
      }
      return;
    }
    this.updateRefNow();
  }

  private unrefQueued = false;

  /** Whether the pool's threads, processes and sockets should keep the process alive: it is busy or closing. */
  private wantsRef(): boolean {
    return this.state === 'closing' || this.active.size > 0 || this.transfers > 0;
  }

  private updateRefNow(): void {
    const want = this.wantsRef();
    if (want === this.refd || this.state === 'closed') return;
    this.refd = want;
    if (want) {
      this.launcher.ref?.();
      this.listener?.ref();
    } else {
      this.launcher.unref?.();
      this.listener?.unref();
    }
  }

  private async busy<T>(p: () => Promise<T>): Promise<T> {
    this.transfers++;
    this.updateRef();
    try {
      return await p();
    } finally {
      this.transfers--;
      this.updateRef();
    }
  }

  private settled = (sink: SettleSink): void => {
    const job = this.active.get(sink);
    if (!job) return;
    this.active.delete(sink);
    this.unlisten.get(sink)?.();
    this.unlisten.delete(sink);
    this.scheduler.cancelJob(job);
    this.updateRef();
    if (this.active.size === 0) this.drained?.();
  };

  /** Apply an export to every item; results in input order. Rejects with a TaskError at the first failing item. */
  map<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, items: Items<TaskItem<M, K>>, options?: MapOptions): Promise<TaskResult<M, K, T>[]> {
    return this.arrayCall(fn, 'call', items, options);
  }

  /** Like map, but each item is an array of arguments. */
  starmap<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, items: Items<TaskArgs<M, K>>, options?: MapOptions): Promise<TaskResult<M, K, T>[]> {
    return this.arrayCall(fn, 'star', items, options);
  }

  /**
   * map and starmap: the call's promise, without an async function's own promise around it (a loop
   * of apply() calls makes thousands); a bad name or option rejects it, as it would an async one.
   */
  private arrayCall<R>(fn: string, kind: 'call' | 'star', items: Input, options: MapOptions | undefined): Promise<R[]> {
    try {
      this.check(fn);
      const sink = new ArraySink<R>(this.settled as (s: ArraySink<R>) => void);
      this.submit(fn, kind, items, options, sink as ArraySink<unknown>);
      return sink.promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Lazy, ordered results; the input is read as workers free up, so it may be endless. */
  imap<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, items: Items<TaskItem<M, K>>, options?: MapOptions): AsyncIterableIterator<TaskResult<M, K, T>> {
    this.check(fn);
    const sink = new IterSink<TaskResult<M, K, T>>(true, this.settled as (s: IterSink<TaskResult<M, K, T>>) => void);
    this.submit(fn, 'call', items, options, sink as IterSink<unknown>);
    return sink;
  }

  /** Lazy results in completion order. */
  imapUnordered<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, items: Items<TaskItem<M, K>>, options?: MapOptions): AsyncIterableIterator<TaskResult<M, K, T>> {
    this.check(fn);
    const sink = new IterSink<TaskResult<M, K, T>>(false, this.settled as (s: IterSink<TaskResult<M, K, T>>) => void);
    this.submit(fn, 'call', items, options, sink as IterSink<unknown>);
    return sink;
  }

  /**
   * Every task's outcome as a TaskRecord, in completion order. A failing task is a record with
   * `ok: false`, not an exception, and the others go on (what the CLI writes as JSON Lines).
   */
  imapRecords(fn: TaskName<M>, items: Input, options?: RecordOptions): AsyncIterableIterator<TaskRecord> {
    this.check(fn);
    const sink = new RecordSink(this.settled as (s: RecordSink) => void);
    this.submit(fn, options?.star ? 'star' : 'call', items, options, sink, true);
    return sink;
  }

  /**
   * Run shell commands, one per item, through /bin/sh on the workers; a record per command with its
   * exit code, signal and output. Each gets SLURMPOOL_TASK_ID, SLURMPOOL_NODE, SLURMPOOL_WORKER and the pinned thread variables.
   * An item is a command line, or `{ cmd, cpus?, gpus?, timeout?, env? }` (CommandItem): its own
   * request, honoured in a pool opened with taskResources (timeout in ms and env apply in any pool).
   */
  runCommands(commands: Input, options?: RecordOptions): AsyncIterableIterator<TaskRecord> {
    this.checkOpen();
    const sink = new RecordSink(this.settled as (s: RecordSink) => void);
    this.submit('', 'shell', commands, options, sink, true);
    return sink;
  }

  /**
   * Send read-only data to every node once; returns a small handle to pass inside task arguments
   * (as the item, an element of an array item, or a value of an object item). In the task the handle
   * is the data: binary data (Buffer, typed array, ArrayBuffer) as a view over one SharedArrayBuffer
   * per node, shared by all its workers — read-only by convention, writes are seen by every worker of
   * that node and by no other node; any other value decoded once per worker. Resolves when every
   * node holds the data; a node that joins later gets it before its first chunk.
   */
  async share(value: unknown): Promise<SharedRef> {
    this.checkOpen();
    let kind: 'bytes' | 'value' = 'bytes';
    let ctor = 'Uint8Array';
    let bytes: Uint8Array;
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
      bytes = new Uint8Array(value);
    } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      ctor = Buffer.isBuffer(value) ? 'Buffer' : value.constructor.name;
      if (!(ctor in VIEW_CTORS)) ctor = 'Uint8Array';
      bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    } else {
      kind = 'value';
      bytes = encodeTransferable(value);
    }
    const id = this.scheduler.addShare(kind, ctor, bytes);
    await this.busy(() => this.scheduler.shareReady(id));
    return { [SHARED_KEY]: id, bytes: bytes.byteLength };
  }

  /** Release a shared value on every node; resolves when the nodes report it released. */
  async unshare(ref: SharedRef): Promise<void> {
    if (!isSharedRef(ref)) throw new OptionError(`unshare takes a handle returned by pool.share, got ${JSON.stringify(ref)}`);
    await this.busy(() => this.scheduler.removeShare(ref[SHARED_KEY]));
  }

  /**
   * Per node: shared values it holds or released, where it was told to get each ('coordinator' or the
   * node that relayed it), the bytes of shared data the coordinator itself sent to it, and all bytes
   * sent to it.
   */
  sharedState(): { node: string; ready: number[]; released: number[]; from: Record<number, string>; bytesSent: number; linkBytesOut: number | null }[] {
    return this.scheduler.agents
      .filter((a) => a.ready || a.lost)
      .map((a) => ({
        node: a.node,
        ready: [...a.shareStates].filter(([, s]) => s === 'ready').map(([id]) => id),
        released: [...a.shareStates].filter(([, s]) => s === 'released').map(([id]) => id),
        from: Object.fromEntries(a.shareSources),
        bytesSent: a.shareBytesSent,
        linkBytesOut: a.link.bytesOut ?? null,
      }));
  }

  /**
   * Start no more tasks (for a clean stop at walltime): input is no longer read (items not yet read get
   * no result at all), chunks read but not started by a worker are reported as cancelled (TaskRecords
   * with ok: false and error.kind 'cancelled'; map and imap reject), and the tasks already running
   * finish. Close or terminate the pool afterwards.
   */
  stopStarting(): void {
    this.scheduler.stopStarting();
    void this.grower?.halt();
  }

  /** What each node has run so far. */
  stats(): NodeStats[] {
    return this.scheduler.agents
      .filter((a) => a.ready || a.lost)
      .map((a) => ({ node: a.node, workers: a.workers, alive: a.ready && !a.lost, chunks: a.chunksDone, tasks: a.itemsDone, busyMs: a.busyMs, ...(a.left ? { left: true as const } : {}) }));
  }

  /** Run one task with these arguments. */
  apply<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, ...args: TaskArgs<M, K>): Promise<TaskResult<M, K, T>> {
    return this.arrayCall<TaskResult<M, K, T>>(fn, 'star', [args], ONE_TASK).then(firstOf);
  }

  /** apply with call options (`signal`, `timeout`): run one task with the arguments in `args`. */
  async applyWith<T = unknown, K extends TaskName<M> = TaskName<M>>(fn: K, args: TaskArgs<M, K>, options?: Omit<MapOptions, 'chunksize'>): Promise<TaskResult<M, K, T>> {
    if (!Array.isArray(args)) throw new OptionError(`applyWith takes the task's arguments as an array, got ${JSON.stringify(args)}`);
    if (options !== undefined && typeof options === 'object' && options !== null && 'chunksize' in options) {
      throw new OptionError('applyWith runs one task: options.chunksize does not apply');
    }
    return this.arrayCall<TaskResult<M, K, T>>(fn, 'star', [args], { ...options, chunksize: 1 }).then(firstOf);
  }

  /**
   * Finish what was submitted, then stop every worker and agent. Resolves once every call made
   * before it has finished, whatever was done with their iterators: an imap/imapUnordered/
   * imapRecords/runCommands iterator nobody reads (never iterated, or read part way) no longer holds
   * its input back; its input is read to the end and its results are kept for a reader that comes
   * later, or dropped with the iterator. An endless input is read for ever: end such an iterator
   * (break, or `it.return()`) or call terminate().
   *
   * A pool left open does not keep the process alive while it is idle (local and emulate modes):
   * its threads, agent processes and sockets are unreferenced whenever no call is pending, and
   * referenced while one is, so a script that forgets close() still exits once its work is done.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.state === 'closed') return Promise.resolve();
    this.state = 'closing';
    this.updateRef();
    for (const sink of this.active.keys()) if (!(sink instanceof ArraySink)) sink.drain();
    this.closing = (async () => {
      if (this.active.size > 0) await new Promise<void>((r) => (this.drained = r));
      await this.stop(true);
    })();
    return this.closing;
  }

  /** Stop now: pending work rejects with a PoolClosedError, workers are terminated. */
  async terminate(): Promise<void> {
    if (this.state === 'closed') return this.stopped ?? undefined;
    this.state = 'closed';
    this.scheduler.abortAll(new PoolClosedError('the pool was terminated while this call was pending'));
    this.active.clear();
    for (const off of this.unlisten.values()) off();
    this.unlisten.clear();
    this.drained?.();
    return this.stop(false);
  }

  private stopped: Promise<void> | null = null;

  /** Tell the agents to shut down and stop the launcher; once, whichever of close and terminate comes first. */
  private stop(graceful: boolean): Promise<void> {
    if (this.stopped) return this.stopped;
    // Stay alive until everything has stopped, so that `await pool.close()` is never cut short.
    if (!this.refd) this.launcher.ref?.();
    this.refd = true;
    this.state = 'closed';
    clearTimeout(this.lostTimer);
    for (const a of this.scheduler.agents) if (!a.lost) a.link.send({ t: 'shutdown', graceful });
    this.scheduler.shutdown();
    this.stopped = Promise.all([this.launcher.stop(graceful), this.stopElastic()]).then(() => undefined);
    return this.stopped;
  }

  /** Joined agents end on the shutdown just sent (up to 5 s); then the join file goes, and every grown job is cancelled. */
  private async stopElastic(): Promise<void> {
    if (!this.listener) return;
    this.listener.ref();
    const { JOINED_PREFIX } = await import('./launch/join.js');
    const joined = () => this.scheduler.agents.some((a) => a.expected.startsWith(JOINED_PREFIX) && !a.lost);
    for (let i = 0; i < 100 && joined(); i++) await new Promise((r) => setTimeout(r, 50));
    await Promise.all([this.listener.stop(), this.grower?.stop()]);
  }

  /**
   * `await using`: the end of the block, normal or by an exception (which dispose cannot see).
   * Iterators not read to the end are abandoned at once, as a `break` would (nobody can read them
   * after the block); calls still pending (a map whose promise was never awaited) are waited for at
   * most `options.disposeTimeout` ms (default 5000), then the pool is terminated and they reject
   * with a PoolClosedError. Call close() yourself to wait for everything.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.state === 'closed') return this.stopped ?? undefined;
    if (this.state === 'open') for (const sink of [...this.active.keys()]) if (!(sink instanceof ArraySink)) sink.abandon();
    const closed = this.close();
    if (this.active.size === 0) return closed;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), this.opts.disposeTimeout)));
    const how = await Promise.race([closed.then(() => 'closed' as const), late]);
    clearTimeout(timer);
    if (how === 'late') await this.terminate();
    await closed;
  }
}

/**
 * What launchers see: `env` laid over process.env, never instead of it, so agents, srun and the
 * workers keep PATH and the rest; `opts.env` alone is where Slurm and SLURMPOOL_* settings are read.
 */
function launchOptions(opts: ResolvedOptions): ResolvedOptions {
  return opts.env === process.env ? opts : { ...opts, env: { ...process.env, ...opts.env } };
}

/** apply()'s call options: one task (shared by every call; never written). */
const ONE_TASK: MapOptions = Object.freeze({ chunksize: 1 });

/** A one-task call's result: its array's only value. */
function firstOf<R>(values: R[]): R {
  return values[0]!;
}

function compressNames(names: string[]): string {
  return names.length <= 4 ? names.join(',') : `${names.slice(0, 3).join(',')},…`;
}

async function makeLauncher(mode: Mode, opts: ResolvedOptions): Promise<Launcher> {
  switch (mode) {
    case 'local':
      return new LocalLauncher();
    case 'emulate': {
      const { EmulateLauncher } = await import('./launch/emulate.js');
      return new EmulateLauncher(opts);
    }
    case 'slurm': {
      const { SrunLauncher } = await import('./launch/srun.js');
      return new SrunLauncher(opts);
    }
    case 'ssh': {
      const { SshLauncher } = await import('./launch/ssh.js');
      return new SshLauncher(opts);
    }
    case 'join': {
      const { JoinLauncher } = await import('./launch/join.js');
      return new JoinLauncher(opts);
    }
  }
}
