// Emulation: N real agent processes on this machine, each seeing the SLURM_* environment of a node.
import { compressHostlist, formatCountList } from '../slurm/index.js';
import type { EmulateSpec, ResolvedOptions } from '../options.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { agentEnv, CLI_MAIN, startCoordinator } from './agents.js';
import type { AgentIntake, Launcher } from './launcher.js';
import { NodeProcesses } from './node-processes.js';

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
  private procs: NodeProcesses | null = null;

  constructor(opts: ResolvedOptions) {
    this.spec = opts.emulate ?? { nodes: 2, cpusPerNode: 1 };
    this.nodes = Array.from({ length: this.spec.nodes }, (_, i) => `emu${i + 1}`);
  }

  async start(intake: AgentIntake, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    const { server, secret } = await startCoordinator(intake, opts, '127.0.0.1');
    this.server = server;
    this.address = { host: server.host, port: server.port };
    const jobId = opts.env.SLURM_JOB_ID && opts.env.SLURMPOOL_EMULATED ? opts.env.SLURM_JOB_ID : `emu${process.pid}`;
    // Agents are started by a helper process (no fork from this one), each in its own process group:
    // Ctrl-C on a terminal reaches the coordinator, which decides, and not the agents directly.
    const procs = new NodeProcesses(intake, agentEnv(opts.env, `127.0.0.1:${server.port}`, null, opts.startTimeout), secret, {
      log: opts.log,
      failed,
      describe: (e) => (e.error ? `could not start: ${e.error}` : `agent exited with ${e.signal ?? `status ${e.code}`}`),
      again: 'starting it again',
      detached: true,
    });
    this.procs = procs;
    this.nodes.forEach((node, i) => procs.start(node, process.execPath, [CLI_MAIN, 'agent'], emulatedNodeEnv(this.spec, i, jobId)));
  }

  get restarting(): number {
    return this.procs?.restarting ?? 0;
  }

  isRunning(node: string): boolean {
    return this.procs?.isRunning(node) ?? false;
  }

  cpusOf(node: string): number | undefined {
    const i = this.nodes.indexOf(node);
    return i >= 0 ? cpusOfIndex(this.spec, i) : undefined;
  }

  failureOf(node: string): string | undefined {
    return this.procs?.failureOf(node);
  }

  /** The spawn helper (and so its watch over the agent processes), the listening port and the agents' sockets. */
  ref(): void {
    this.procs?.ref();
    this.server?.ref();
  }

  unref(): void {
    this.procs?.unref();
    this.server?.unref();
  }

  async stop(graceful: boolean): Promise<void> {
    await this.procs?.stop(graceful ? 5000 : 500);
    await this.server?.close();
  }
}
