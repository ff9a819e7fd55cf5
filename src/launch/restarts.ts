// Which nodes' agents are started again after dying mid-run, and how many are on their way back (emulation and Slurm alike).
import { MAX_NODE_RESTARTS, type AgentIntake } from './launcher.js';
import type { Spawner } from './spawner.js';

export class NodeRestarts {
  private readonly counts = new Map<string, number>();
  /** The pool is stopping: nothing is started again. */
  stopping = false;
  scheduler: AgentIntake | null = null;
  spawner: Spawner | null = null;

  /**
   * A node whose agent was ready and then died mid-run is started again, up to MAX_NODE_RESTARTS
   * times: returns the restart's number (1, 2, …), or 0 when it is not to be restarted.
   */
  take(node: string): number {
    const n = this.counts.get(node) ?? 0;
    if (this.stopping || n >= MAX_NODE_RESTARTS) return 0;
    if (!this.scheduler?.agents.some((a) => a.expected === node && a.readyAt > 0)) return 0;
    this.counts.set(node, n + 1);
    return n + 1;
  }

  /** Nodes started again whose process runs but whose new agent is not ready yet. */
  get pending(): number {
    if (!this.spawner || !this.scheduler) return 0;
    let n = 0;
    for (const node of this.counts.keys()) {
      if (this.spawner.isRunning(node) && !this.scheduler.agents.some((a) => a.expected === node && a.ready && !a.lost)) n++;
    }
    return n;
  }
}
