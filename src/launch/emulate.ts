// Emulation: N real agent processes on this machine, each seeing the SLURM_* environment of a node.
import { spawn, type ChildProcess } from 'node:child_process';
import { compressHostlist } from '../slurm/index.js';
import type { EmulateSpec, ResolvedOptions } from '../options.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { agentEnv, CLI_MAIN, startCoordinator, Tail } from './agents.js';
import { describeFailure } from './failure.js';
import type { Launcher } from './launcher.js';

/** The environment Slurm would give a task on node `index` of an emulated allocation. */
export function emulatedNodeEnv(spec: EmulateSpec, index: number, jobId: string, prefix = 'emu'): Record<string, string> {
  const names = Array.from({ length: spec.nodes }, (_, i) => `${prefix}${i + 1}`);
  return {
    SLURM_JOB_ID: jobId,
    SLURM_JOBID: jobId,
    SLURM_JOB_NAME: 'slurmpool-emulate',
    SLURM_JOB_NODELIST: compressHostlist(names),
    SLURM_NODELIST: compressHostlist(names),
    SLURM_JOB_NUM_NODES: String(spec.nodes),
    SLURM_NNODES: String(spec.nodes),
    SLURM_JOB_CPUS_PER_NODE: spec.nodes > 1 ? `${spec.cpusPerNode}(x${spec.nodes})` : String(spec.cpusPerNode),
    SLURM_TASKS_PER_NODE: spec.nodes > 1 ? `1(x${spec.nodes})` : '1',
    SLURM_CPUS_ON_NODE: String(spec.cpusPerNode),
    SLURM_CPUS_PER_TASK: String(spec.cpusPerNode),
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
  private readonly procs = new Map<string, ChildProcess>();
  private readonly tails = new Map<string, Tail>();
  private readonly exits = new Map<string, string>();

  constructor(opts: ResolvedOptions) {
    this.spec = opts.emulate ?? { nodes: 2, cpusPerNode: 1 };
    this.nodes = Array.from({ length: this.spec.nodes }, (_, i) => `emu${i + 1}`);
  }

  async start(scheduler: Scheduler, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    const { server, secret } = await startCoordinator(scheduler, opts, '127.0.0.1');
    this.server = server;
    this.address = { host: server.host, port: server.port };
    const jobId = opts.env.SLURM_JOB_ID && opts.env.SLURMPOOL_EMULATED ? opts.env.SLURM_JOB_ID : `emu${process.pid}`;
    this.nodes.forEach((node, i) => {
      const env = { ...agentEnv(opts.env, `127.0.0.1:${server.port}`, secret), ...emulatedNodeEnv(this.spec, i, jobId) };
      const child = spawn(process.execPath, [CLI_MAIN, 'agent'], { env, stdio: ['ignore', 'inherit', 'pipe'] });
      const tail = new Tail();
      this.tails.set(node, tail);
      child.stderr?.on('data', (d: Buffer) => {
        tail.push(d);
        process.stderr.write(d);
      });
      child.on('error', (e) => {
        this.exits.set(node, `could not start: ${e.message}`);
        failed(node, this.failureOf(node) ?? e.message);
      });
      child.on('exit', (code, sig) => {
        this.exits.set(node, `agent exited with ${sig ?? `status ${code}`}`);
        failed(node, this.failureOf(node) ?? 'agent exited');
      });
      this.procs.set(node, child);
    });
  }

  failureOf(node: string): string | undefined {
    return describeFailure(this.exits.get(node), this.tails.get(node)?.value);
  }

  /** The agent process of a node, for tests that kill nodes. */
  processOf(node: string): ChildProcess | undefined {
    return this.procs.get(node);
  }

  async stop(graceful: boolean): Promise<void> {
    await waitForExit([...this.procs.values()], graceful ? 5000 : 500);
    await this.server?.close();
  }
}

/** Wait for processes to exit; SIGTERM then SIGKILL those that outlive the bound. */
export async function waitForExit(procs: ChildProcess[], graceMs: number): Promise<void> {
  const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;
  const gone = (p: ChildProcess) => (alive(p) ? new Promise<void>((r) => p.once('exit', () => r())) : Promise.resolve());
  const all = Promise.all(procs.map(gone));
  const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  if ((await Promise.race([all, timeout(graceMs)])) !== 'timeout') return;
  for (const p of procs) if (alive(p)) p.kill('SIGTERM');
  if ((await Promise.race([all, timeout(2000)])) !== 'timeout') return;
  for (const p of procs) if (alive(p)) p.kill('SIGKILL');
  await all;
}
