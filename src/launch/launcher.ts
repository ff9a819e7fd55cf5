// What every way of starting agents provides: agents that end up as Links in the scheduler.
import type { ResolvedOptions } from '../options.js';
import type { Link } from '../transport/link.js';
import type { FromAgent, ToAgent } from '../protocol/messages.js';

/**
 * What a launcher hands its agents' links to, and may look at: launchers know nothing else of the
 * scheduler (the pool passes its scheduler, which has this shape).
 */
export interface AgentIntake {
  /** Take an authenticated agent's link, with the node it was started for. */
  addAgent(link: Link<ToAgent, FromAgent>, expected: string): unknown;
  /** The agents that connected so far: which node each was started for, and whether it is ready (or was). */
  readonly agents: readonly { readonly expected: string; readonly ready: boolean; readonly lost: boolean; readonly readyAt: number }[];
}

export interface Launcher {
  /** local, emulate, slurm or ssh. */
  readonly mode: string;
  /**
   * Start the agents; each one's link is handed to the scheduler with the node it was started for.
   * `failed` is called when a node's agent process ends (or cannot start), with the reason.
   */
  start(intake: AgentIntake, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void>;
  /** Where the coordinator listens, in modes that listen. */
  readonly address?: { host: string; port: number } | undefined;
  /** Names of the nodes agents were started for. */
  readonly nodes: string[];
  /** Stop what was started (processes, listeners); called once, after the agents were told to shut down. */
  stop(graceful: boolean): Promise<void>;
  /** Keep the process alive for the agents (work in flight); launchers that can, local and emulate. */
  ref?(): void;
  /** Let the process exit while the pool is idle: threads, agent processes and sockets unreferenced. */
  unref?(): void;
  /** Why a node's agent failed to start, if the launcher knows (e.g. srun's stderr). */
  failureOf?(node: string): string | undefined;
  /** CPUs the allocation gives a node, when the launcher knows (the agent is told; it wins over the step's own count). */
  cpusOf?(node: string): number | undefined;
  /** Nodes whose agent died mid-run and is being started again (none ready yet). */
  readonly restarting?: number;
  /** Whether the process started for a node still runs (its exit, and so any restart, is still to come). */
  isRunning?(node: string): boolean;
}

/** A node whose agent died after it was ready is started again at most this many times. */
export const MAX_NODE_RESTARTS = 3;
