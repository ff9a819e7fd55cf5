// Slurm mode: one agent per node of the allocation, each its own `srun` step, so a lost node takes only its own agent.
import { LaunchError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { readAllocation, type Allocation } from '../slurm/index.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { agentEnv, CLI_MAIN, startCoordinator } from './agents.js';
import type { AgentIntake, Launcher } from './launcher.js';
import { NodeProcesses } from './node-processes.js';

/**
 * The srun command line for the agent of one node. One single-task step per node (as disBatch
 * does): Slurm kills a multi-node step on every node when one of its nodes fails, even in a
 * --no-kill job, and a later srun must name its nodes. `--overlap` lets the step share the CPUs the
 * batch step holds; `--kill-on-bad-exit=0` keeps one failure from ending anything else.
 */
export function srunArgs(node: string, cpus: number, agentArgv: string[]): string[] {
  return [
    '--nodes=1',
    '--ntasks=1',
    `--nodelist=${node}`,
    `--cpus-per-task=${cpus}`,
    '--overlap',
    '--kill-on-bad-exit=0',
    '--job-name=slurmpool-agent',
    '--export=ALL',
    ...agentArgv,
  ];
}

export class SrunLauncher implements Launcher {
  readonly mode = 'slurm';
  readonly nodes: string[];
  private readonly alloc: Allocation;
  private server: CoordinatorServer | null = null;
  address: { host: string; port: number } | undefined;
  private procs: NodeProcesses | null = null;

  constructor(opts: ResolvedOptions) {
    const alloc = readAllocation(opts.env);
    if (!alloc) {
      throw new LaunchError('slurm mode needs a Slurm allocation, but SLURM_JOB_ID is not set: run inside sbatch or salloc, or use emulation (--emulate NxC)');
    }
    this.alloc = alloc;
    this.nodes = alloc.nodes;
  }

  async start(intake: AgentIntake, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    const bind = opts.bind ?? '0.0.0.0';
    const { server, secret } = await startCoordinator(intake, opts, bind);
    this.server = server;
    this.address = { host: server.host, port: server.port };
    // Agents dial the node that ran srun (SLURM_LAUNCH_NODE_IPADDR in their step) unless an address was given.
    const advertised = bind === '0.0.0.0' || bind === '::' ? 'launch' : bind;
    const env = agentEnv(opts.env, `${advertised.includes(':') ? `[${advertised}]` : advertised}:${server.port}`, null, opts.startTimeout);
    const srun = opts.env.SLURMPOOL_SRUN || 'srun';
    // The srun processes are started by a small helper process: a thousand forks from this one would
    // block its event loop for seconds while the first agents are already dialling.
    const procs = new NodeProcesses(intake, env, secret, {
      log: opts.log,
      failed,
      describe: (e) =>
        e.error ? (e.error.startsWith('ENOENT') ? `${srun} not found on PATH` : `srun failed: ${e.error}`) : e.signal ? `srun ended by ${e.signal}` : `srun exited with status ${e.code}`,
      again: 'starting it again in a new step',
      detached: false,
    });
    this.procs = procs;
    let firstExit: ((e: { error?: string }) => void) | null = null;
    const first = new Promise<{ error?: string } | null>((res) => {
      firstExit = res;
      setTimeout(() => res(null), 200).unref();
    });
    this.nodes.forEach((node, i) => {
      const args = srunArgs(node, this.alloc.cpusPerNode[i] ?? 1, [process.execPath, CLI_MAIN, 'agent']);
      procs.start(node, srun, args, {}, i === 0 ? (e) => firstExit?.(e) : undefined);
    });
    // srun itself missing fails every node at once: say so plainly instead of waiting for agents.
    const r = await first;
    if (r?.error?.startsWith('ENOENT')) throw new LaunchError(`cannot start agents: ${srun} was not found on PATH (${opts.env.PATH ?? ''})`);
  }

  get restarting(): number {
    return this.procs?.restarting ?? 0;
  }

  isRunning(node: string): boolean {
    return this.procs?.isRunning(node) ?? false;
  }

  cpusOf(node: string): number | undefined {
    const i = this.nodes.indexOf(node);
    return i >= 0 ? this.alloc.cpusPerNode[i] : undefined;
  }

  failureOf(node: string): string | undefined {
    return this.procs?.failureOf(node);
  }

  async stop(graceful: boolean): Promise<void> {
    // srun forwards SIGTERM to its task; a second signal within a second would abort srun itself.
    await this.procs?.stop(graceful ? 10_000 : 1000, 5000);
    await this.server?.close();
  }
}
