// Slurm mode: one agent per node of the allocation, each its own `srun` step, so a lost node takes only its own agent.
import type { ResultPromise } from 'execa';
import { LaunchError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { readAllocation, type Allocation } from '../slurm/index.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { agentEnv, CLI_MAIN, startCoordinator, Tail } from './agents.js';
import { describeFailure } from './failure.js';
import type { Launcher } from './launcher.js';

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
  private readonly steps = new Map<string, ResultPromise>();
  private readonly tails = new Map<string, Tail>();
  private readonly exits = new Map<string, string>();

  constructor(opts: ResolvedOptions) {
    const alloc = readAllocation(opts.env);
    if (!alloc) {
      throw new LaunchError('slurm mode needs a Slurm allocation, but SLURM_JOB_ID is not set: run inside sbatch or salloc, or use emulation (--emulate NxC)');
    }
    this.alloc = alloc;
    this.nodes = alloc.nodes;
  }

  async start(scheduler: Scheduler, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    const { execa } = await import('execa');
    const bind = opts.bind ?? '0.0.0.0';
    const { server, secret } = await startCoordinator(scheduler, opts, bind);
    this.server = server;
    this.address = { host: server.host, port: server.port };
    // Agents dial the node that ran srun (SLURM_LAUNCH_NODE_IPADDR in their step) unless an address was given.
    const advertised = bind === '0.0.0.0' || bind === '::' ? 'launch' : bind;
    const env = agentEnv(opts.env, `${advertised.includes(':') ? `[${advertised}]` : advertised}:${server.port}`, secret);
    const srun = opts.env.SLURMPOOL_SRUN || 'srun';
    for (const [i, node] of this.nodes.entries()) {
      const cpus = this.alloc.cpusPerNode[i] ?? 1;
      const tail = new Tail();
      this.tails.set(node, tail);
      const step = execa(srun, srunArgs(node, cpus, [process.execPath, CLI_MAIN, 'agent']), {
        env,
        extendEnv: false,
        stdin: 'ignore',
        stdout: 'inherit',
        stderr: 'pipe',
        buffer: false,
        reject: false,
      });
      step.stderr?.on('data', (d: Buffer) => {
        tail.push(d);
        process.stderr.write(d);
      });
      step.then(
        (r) => {
          const why = r.failed && r.code === 'ENOENT' ? `${srun} not found on PATH` : r.signal ? `srun ended by ${r.signal}` : `srun exited with status ${r.exitCode}`;
          this.exits.set(node, why);
          failed(node, this.failureOf(node) ?? why);
        },
        (e: unknown) => {
          this.exits.set(node, `srun failed: ${(e as Error).message}`);
          failed(node, this.failureOf(node) ?? 'srun failed');
        },
      );
      this.steps.set(node, step);
    }
    // srun itself missing fails every node at once: say so plainly instead of waiting for agents.
    const first = this.steps.get(this.nodes[0]!);
    if (first) {
      const r = await Promise.race([first.then((x) => x), new Promise<null>((res) => setTimeout(() => res(null), 200).unref())]);
      if (r && r.failed && r.code === 'ENOENT') throw new LaunchError(`cannot start agents: ${srun} was not found on PATH (${opts.env.PATH ?? ''})`);
    }
  }

  failureOf(node: string): string | undefined {
    return describeFailure(this.exits.get(node), this.tails.get(node)?.value);
  }

  async stop(graceful: boolean): Promise<void> {
    const steps = [...this.steps.values()];
    const done = Promise.allSettled(steps);
    const timeout = (ms: number) => new Promise<'t'>((r) => setTimeout(() => r('t'), ms).unref());
    if ((await Promise.race([done, timeout(graceful ? 10_000 : 1000)])) === 't') {
      // srun forwards SIGTERM to its task; a second signal within a second would abort srun itself.
      for (const s of steps) s.kill('SIGTERM');
      if ((await Promise.race([done, timeout(5000)])) === 't') for (const s of steps) s.kill('SIGKILL');
      await done;
    }
    await this.server?.close();
  }
}
