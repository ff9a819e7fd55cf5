// Coordinator side of the spawn helper (spawn-helper.ts): start and watch agent processes without forking from this process.
import { fork, type ChildProcess } from 'node:child_process';

const HELPER = new URL('./spawn-helper.js', import.meta.url);

export interface SpawnedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Could not start at all (for example ENOENT). */
  error?: string;
}

type Out =
  | { t: 'stderr'; key: string; data: string }
  | { t: 'exit'; key: string; code: number | null; signal: NodeJS.Signals | null; error?: string };

interface Watch {
  stderr: (text: string) => void;
  exit: (e: SpawnedExit) => void;
}

/** Starts processes in a helper process; each gets the base environment plus its own variables. */
export class Spawner {
  private readonly helper: ChildProcess;
  private readonly watches = new Map<string, Watch>();
  private readonly alive = new Set<string>();
  private closed = false;
  private exitWaiters: (() => void)[] = [];

  /** `secret`, when given, goes to each process's standard input (one line), never into its environment. */
  constructor(baseEnv: NodeJS.ProcessEnv, secret: string | null = null) {
    // The helper is small: its own forks are cheap. Its stderr is ours; its stdout is not used.
    this.helper = fork(HELPER, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { PATH: baseEnv.PATH ?? '' }, execArgv: [] });
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(baseEnv)) if (v !== undefined) env[k] = v;
    this.helper.send({ t: 'env', env, secret });
    this.helper.on('message', (m: Out) => {
      const w = this.watches.get(m.key);
      if (m.t === 'stderr') w?.stderr(m.data);
      else {
        this.alive.delete(m.key);
        this.watches.delete(m.key);
        w?.exit({ code: m.code, signal: m.signal, ...(m.error ? { error: m.error } : {}) });
        if (this.alive.size === 0) this.wakeExitWaiters();
      }
    });
    this.helper.on('exit', () => {
      // The helper died: whatever it watched can no longer be reported; say so for each.
      this.closed = true;
      for (const [key, w] of this.watches) {
        this.alive.delete(key);
        w.exit({ code: null, signal: null, error: 'the spawn helper exited' });
      }
      this.watches.clear();
      this.wakeExitWaiters();
    });
  }

  /** Start `cmd args` under `key` (a node name, unique while it runs). */
  spawn(key: string, cmd: string, args: string[], env: Record<string, string>, watch: Watch, detached = false): void {
    if (this.closed) {
      queueMicrotask(() => watch.exit({ code: null, signal: null, error: 'the spawn helper is gone' }));
      return;
    }
    this.watches.set(key, watch);
    this.alive.add(key);
    this.helper.send({ t: 'spawn', key, cmd, args, env, detached });
  }

  kill(key: string, signal: NodeJS.Signals): void {
    if (!this.closed && this.alive.has(key)) this.helper.send({ t: 'kill', key, signal });
  }

  get running(): number {
    return this.alive.size;
  }

  isRunning(key: string): boolean {
    return this.alive.has(key);
  }

  private wakeExitWaiters(): void {
    const w = this.exitWaiters;
    this.exitWaiters = [];
    for (const f of w) f();
  }

  /** Wait for every process to exit; SIGTERM then SIGKILL those that outlive the bound. */
  async stopAll(graceMs: number, termGraceMs = 2000): Promise<void> {
    const all = () => (this.alive.size === 0 ? Promise.resolve() : new Promise<void>((r) => this.exitWaiters.push(r)));
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([all(), timeout(graceMs)])) === 'timeout') {
      for (const k of this.alive) this.kill(k, 'SIGTERM');
      if ((await Promise.race([all(), timeout(termGraceMs)])) === 'timeout') {
        for (const k of this.alive) this.kill(k, 'SIGKILL');
        await Promise.race([all(), timeout(5000)]);
      }
    }
    this.close();
  }

  /** Keep this process alive for the helper (while work is in flight), or not (idle). */
  ref(): void {
    this.helper.ref();
    (this.helper.channel as { ref?(): void } | undefined)?.ref?.();
  }

  unref(): void {
    this.helper.unref();
    (this.helper.channel as { unref?(): void } | undefined)?.unref?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.helper.connected) this.helper.disconnect();
  }
}
