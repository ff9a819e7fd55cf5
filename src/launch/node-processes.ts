// One agent process per node, started through the spawn helper, watched, and started again when it
// dies mid-run: what emulation and Slurm launch share (they differ in the command and its words).
import { Tail } from './agents.js';
import { describeFailure } from './failure.js';
import { MAX_NODE_RESTARTS, type AgentIntake } from './launcher.js';
import { Spawner, type SpawnedExit } from './spawner.js';

export interface NodeProcessOptions {
  /** The pool's log, for the line saying a node is started again. */
  log: ((line: string) => void) | null;
  /** A node's process ended and will not be started again. */
  failed: (node: string, why: string) => void;
  /** How an exit reads in messages (`agent exited with SIGKILL`, `srun exited with status 1`). */
  describe: (e: SpawnedExit) => string;
  /** What starting a node again means here (`starting it again`, `starting it again in a new step`). */
  again: string;
  /** Each process in its own process group (so a terminal's Ctrl-C reaches only the coordinator). */
  detached: boolean;
}

export class NodeProcesses {
  private readonly spawner: Spawner;
  private readonly tails = new Map<string, Tail>();
  private readonly exits = new Map<string, string>();
  private readonly restarts = new Map<string, number>();
  private stopping = false;

  /** `env` is every process's base environment; `secret` goes to each one's standard input. */
  constructor(
    private readonly intake: AgentIntake,
    env: NodeJS.ProcessEnv,
    secret: string,
    private readonly opts: NodeProcessOptions,
  ) {
    this.spawner = new Spawner(env, secret);
  }

  /**
   * Start a node's process. When it exits: a node whose agent was ready and then died mid-run is
   * started again, up to MAX_NODE_RESTARTS times; otherwise the node has failed. `onExit` sees every exit first.
   */
  start(node: string, cmd: string, args: string[], env: Record<string, string>, onExit?: (e: SpawnedExit) => void): void {
    const tail = new Tail();
    this.tails.set(node, tail);
    this.spawner.spawn(
      node,
      cmd,
      args,
      env,
      {
        stderr: (d) => {
          tail.push(d);
          process.stderr.write(d);
        },
        exit: (e) => {
          const why = this.opts.describe(e);
          this.exits.set(node, why);
          onExit?.(e);
          const restart = this.takeRestart(node);
          if (restart > 0) {
            this.opts.log?.(`node ${node}: its agent died (${why}); ${this.opts.again} (restart ${restart} of ${MAX_NODE_RESTARTS})`);
            this.start(node, cmd, args, env, onExit);
            return;
          }
          this.opts.failed(node, this.failureOf(node) ?? why);
        },
      },
      this.opts.detached,
    );
  }

  /** The restart's number (1, 2, …), or 0 when the node is not to be started again. */
  private takeRestart(node: string): number {
    const n = this.restarts.get(node) ?? 0;
    if (this.stopping || n >= MAX_NODE_RESTARTS) return 0;
    if (!this.intake.agents.some((a) => a.expected === node && a.readyAt > 0)) return 0;
    this.restarts.set(node, n + 1);
    return n + 1;
  }

  /** Nodes started again whose process runs but whose new agent is not ready yet. */
  get restarting(): number {
    let n = 0;
    for (const node of this.restarts.keys()) {
      if (this.spawner.isRunning(node) && !this.intake.agents.some((a) => a.expected === node && a.ready && !a.lost)) n++;
    }
    return n;
  }

  isRunning(node: string): boolean {
    return this.spawner.isRunning(node);
  }

  /** Why a node's process failed: its own last words first, then how it exited. */
  failureOf(node: string): string | undefined {
    return describeFailure(this.exits.get(node), this.tails.get(node)?.value);
  }

  ref(): void {
    this.spawner.ref();
  }

  unref(): void {
    this.spawner.unref();
  }

  /** Start nothing again; wait for every process (SIGTERM, then SIGKILL, past the bounds). */
  async stop(graceMs: number, termGraceMs?: number): Promise<void> {
    this.stopping = true;
    await this.spawner.stopAll(graceMs, termGraceMs);
  }
}
