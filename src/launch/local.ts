// Local mode: one in-process agent, joined to the scheduler by an in-process link.
import { hostname } from 'node:os';
import { Agent } from '../agent/agent.js';
import type { FromAgent, ToAgent } from '../protocol/messages.js';
import type { ResolvedOptions } from '../options.js';
import { inprocPair } from '../transport/inproc.js';
import type { AgentIntake, Launcher } from './launcher.js';

export class LocalLauncher implements Launcher {
  readonly mode = 'local';
  readonly nodes: string[] = [hostname()];
  private agent: Agent | null = null;
  private stopped: Promise<void> | null = null;

  async start(scheduler: AgentIntake, opts: ResolvedOptions): Promise<void> {
    const node = this.nodes[0]!;
    const [coordEnd, agentEnd] = inprocPair<ToAgent, FromAgent>('local agent', 'coordinator');
    let done!: () => void;
    this.stopped = new Promise((r) => (done = r));
    this.agent = new Agent(agentEnd, { node, cpus: opts.workers * opts.threadsPerTask, env: opts.env, onExit: () => done() });
    scheduler.addAgent(coordEnd, node);
  }

  ref(): void {
    this.agent?.ref();
  }

  unref(): void {
    this.agent?.unref();
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    await this.stopped;
  }
}
