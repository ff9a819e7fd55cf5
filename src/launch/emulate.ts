// Emulation: N real agent processes on this machine, each seeing the SLURM_* environment of a node.
import { compressHostlist, formatCountList } from '../slurm/index.js';
import type { EmulateSpec, ResolvedOptions } from '../options.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { agentEnv, CLI_MAIN, startCoordinator, Tail } from './agents.js';
import { MAX_NODE_RESTARTS, type AgentIntake, type Launcher } from './launcher.js';
import { Spawner } from './spawner.js';
import { NodeRestarts } from './restarts.js';
import { describeFailure } from './failure.js';

/** CPUs of emulated node `index`. */
function cpusOfIndex(spec: EmulateSpec, index: number): number {
  return spec.cpus?.[index] ?? spec.cpusPerNode;
}

/** The environment Slurm would give a task on node `index` of an emulated allocation. */
export function emulatedNodeEnv(spec: EmulateSpec, index: number, jobId: string, prefix = 'emu'): Record<string, string> {
  const names = Array.from({ length: spec.nodes }, (_, i) => `${prefix}${i + 1}`);
  const counts = Array.from({ length: spec.nodes }, (_, i) => cpusOfIndex(spec, i));
  return {
    SLURM_JOB_ID: jobId,
    SLURM_JOBID: jobId,
    SLURM_JOB_NAME: 'slurmpool-emulate',
    SLURM_JOB_NODELIST: compressHostlist(names),
    SLURM_NODELIST: compressHostlist(names),
    SLURM_JOB_NUM_NODES: String(spec.nodes),
    SLURM_NNODES: String(spec.nodes),
    SLURM_JOB_CPUS_PER_NODE: formatCountList(counts),
    SLURM_TASKS_PER_NODE: spec.nodes > 1 ? `1(x${spec.nodes})` : '1',
    SLURM_CPUS_ON_NODE: String(counts[index]),
    SLURM_CPUS_PER_TASK: String(counts[index]),
    SLURM_NTASKS: String(spec.nodes),
    SLURM_NPROCS: String(spec.nodes),
    SLURM_NODEID: String(index),
    SLURM_PROCID: String(index),
    SLURM_LOCALID: '0',
    SLURM_STEP_ID: '0',
    SLURMD_NODENAME: names[index]!,
    SLURM_LAUNCH_NODE_IPADDR: '127.0.0.1',
    SLURMPOOL_EMULATED: '1',
  };
}

export class EmulateLauncher implements Launcher {
  readonly mode = 'emulate';
  readonly nodes: string[];
  private readonly spec: EmulateSpec;
  private server: CoordinatorServer | null = null;
  address: { host: string; port: number } | undefined;
  private spawner: Spawner | null = null;
  private readonly tails = new Map<string, Tail>();
  private readonly exits = new Map<string, string>();
  private readonly restarts = new NodeRestarts();

  constructor(opts: ResolvedOptions) {
    this.spec = opts.emulate ?? { nodes: 2, cpusPerNode: 1 };
    this.nodes = Array.from({ length: this.spec.nodes }, (_, i) => `emu${i + 1}`);
  }

  async start(scheduler: AgentIntake, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    this.restarts.scheduler = scheduler;
    const { server, secret } = await startCoordinator(scheduler, opts, '127.0.0.1');
    this.server = server;
    this.address = { host: server.host, port: server.port };
    const jobId = opts.env.SLURM_JOB_ID && opts.env.SLURMPOOL_EMULATED ? opts.env.SLURM_JOB_ID : `emu${process.pid}`;
    // Agents are started by a helper process (no fork from this one), each in its own process group:
    // Ctrl-C on a terminal reaches the coordinator, which decides, and not the agents directly.
    this.spawner = new Spawner(agentEnv(opts.env, `127.0.0.1:${server.port}`, null, opts.startTimeout), secret);
    this.restarts.spawner = this.spawner;
    const startNode = (node: string, i: number) => {
      const tail = new Tail();
      this.tails.set(node, tail);
      this.spawner!.spawn(
        node,
        process.execPath,
        [CLI_MAIN, 'agent'],
        emulatedNodeEnv(this.spec, i, jobId),
        {
          stderr: (d) => {
            tail.push(d);
            process.stderr.write(d);
          },
          exit: (e) => {
            this.exits.set(node, e.error ? `could not start: ${e.error}` : `agent exited with ${e.signal ?? `status ${e.code}`}`);
            const restart = this.restarts.take(node);
            if (restart > 0) {
              opts.log?.(`node ${node}: its agent died (${this.exits.get(node)}); starting it again (restart ${restart} of ${MAX_NODE_RESTARTS})`);
              startNode(node, i);
              return;
            }
            failed(node, this.failureOf(node) ?? 'agent exited');
          },
        },
        true,
      );
    };
    this.nodes.forEach((node, i) => startNode(node, i));
  }

  get restarting(): number {
    return this.restarts.pending;
  }

  isRunning(node: string): boolean {
    return this.spawner?.isRunning(node) ?? false;
  }

  cpusOf(node: string): number | undefined {
    const i = this.nodes.indexOf(node);
    return i >= 0 ? cpusOfIndex(this.spec, i) : undefined;
  }

  failureOf(node: string): string | undefined {
    return describeFailure(this.exits.get(node), this.tails.get(node)?.value);
  }

  ref(): void {
    this.setRef(true);
  }

  unref(): void {
    this.setRef(false);
  }

  /** The spawn helper (and so its watch over the agent processes), the listening port and the agents' sockets. */
  private setRef(on: boolean): void {
    if (on) {
      this.spawner?.ref();
      this.server?.ref();
    } else {
      this.spawner?.unref();
      this.server?.unref();
    }
  }

  async stop(graceful: boolean): Promise<void> {
    this.restarts.stopping = true;
    await this.spawner?.stopAll(graceful ? 5000 : 500);
    await this.server?.close();
  }
}
