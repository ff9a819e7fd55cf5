// slurmpool join FILE: from any allocation (an sbatch script, salloc), one agent per node of it joins
// a running pool through its join file. The secret goes to each agent on its standard input, never argv.
import { hostname } from 'node:os';
import { LaunchError } from '../errors.js';
import { LEAVE_ENV, LEAVE_MARGIN_ENV } from '../agent/main.js';
import { agentEnv, CLI_MAIN } from '../launch/agents.js';
import { readJoinFile } from '../launch/join.js';
import { NodeProcesses } from '../launch/node-processes.js';
import { srunArgs } from '../launch/srun.js';
import type { SpawnedExit } from '../launch/spawner.js';
import { readAllocation } from '../slurm/index.js';
import { CliError, EXIT } from './errors.js';
import type { Renderer } from './render.js';

/** After a signal, the agents get this long to leave before they are stopped. */
const SIGNAL_GRACE_MS = 60_000;

export async function joinCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const file = String(args.file ?? '');
  let info;
  try {
    info = readJoinFile(file);
  } catch (e) {
    throw new CliError(e instanceof LaunchError ? e.message : String(e), EXIT.usage);
  }
  const env = process.env;
  let margin: string | undefined;
  if (args['leave-margin'] !== undefined) {
    margin = String(args['leave-margin']).trim();
    if (!/^\d+$/.test(margin)) throw new CliError(`--leave-margin must be whole seconds, got ${JSON.stringify(args['leave-margin'])}`);
  }
  const inJob = !!(env.SLURM_JOB_ID ?? env.SLURM_JOBID) && args.local !== true;
  const alloc = inJob ? readAllocation(env) : null;
  const nodes = alloc ? alloc.nodes.map((node, i) => ({ node, cpus: alloc.cpusPerNode[i] ?? 1 })) : [{ node: env.SLURMD_NODENAME || hostname(), cpus: 0 }];
  const host = info.host.includes(':') ? `[${info.host}]` : info.host;
  const base = agentEnv(env, `${host}:${info.port}`, null);
  base[LEAVE_ENV] = '1';
  if (margin !== undefined) base[LEAVE_MARGIN_ENV] = margin;
  const srun = env.SLURMPOOL_SRUN || 'srun';
  r.note(`joining the pool of ${info.coordinatorHost} (pid ${info.pid}) at ${info.host}:${info.port}: ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map((n) => n.node).join(',')})${alloc ? ` of job ${alloc.jobId}` : ', this machine'}`);
  const exits = new Map<string, SpawnedExit>();
  let allDone!: () => void;
  const finished = new Promise<void>((res) => (allDone = res));
  // No intake: a node here is never started again (its allocation is what ends it), so none is named ready.
  const procs = new NodeProcesses({ addAgent: () => undefined, agents: [] }, base, info.secret, {
    log: (l) => r.note(l),
    failed: () => undefined,
    describe: (e) => (e.error ? `${alloc ? srun : 'agent'} failed: ${e.error}` : e.signal ? `ended by ${e.signal}` : `exited with status ${e.code}`),
    again: '',
    detached: false,
  });
  const onExit = (node: string) => (e: SpawnedExit) => {
    exits.set(node, e);
    if (exits.size === nodes.length) allDone();
  };
  for (const { node, cpus } of nodes) {
    if (alloc) procs.start(node, srun, srunArgs(node, cpus, [process.execPath, CLI_MAIN, 'agent']), { SLURMPOOL_CPUS: String(cpus) }, onExit(node));
    else procs.start(node, process.execPath, [CLI_MAIN, 'agent'], {}, onExit(node));
  }
  // scancel and the time limit signal every process of the job: the agents leave by themselves
  // (a second signal from here could make srun abort its step). Wait for them, within a bound.
  let signalled = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    r.note(`${sig}: the agents leave the pool, handing back their work`);
    // An agent on this machine hears it from here (SIGTERM: it leaves at once); srun steps heard it from Slurm.
    if (!alloc) void procs.stop(SIGNAL_GRACE_MS, 5000);
    killTimer = setTimeout(() => void procs.stop(1000, 5000), SIGNAL_GRACE_MS);
    killTimer.unref();
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    await finished;
  } finally {
    clearTimeout(killTimer);
    for (const s of signals) process.off(s, onSignal);
    await procs.stop(1000, 1000);
  }
  const bad = [...exits].filter(([, e]) => e.code !== 0 && !(signalled && (e.signal || e.code === 143)));
  if (bad.length === 0) {
    r.note(`every agent has left the pool`);
    return EXIT.ok;
  }
  const lines = bad.slice(0, 20).map(([n]) => `  ${n}: ${procs.failureOf(n) ?? 'failed'}`);
  throw new CliError(`${bad.length} of ${nodes.length} agent(s) could not join or failed:\n${lines.join('\n')}`, EXIT.launch);
}
