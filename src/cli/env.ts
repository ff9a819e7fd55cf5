// slurmpool env: what slurmpool sees here — the mode it would use and why, the allocation, CPUs, tools.
import { realpathSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { allowedCpus, formatCpuList } from '../agent/shell.js';
import { THREAD_VARIABLES } from '../agent/threads.js';
import { describeGpus, discoverGpus, gpuEnv, gpuSlots } from '../agent/gpus.js';
import { pickMode } from '../launch/pick.js';
import { resolveOptions, type PoolOptions } from '../options.js';
import { OptionError } from '../errors.js';
import { ALLOCATION_VARIABLES, compressHostlist, readAllocation, type Allocation } from '../slurm/index.js';
import { SECRET_ENV } from '../protocol/auth.js';
import { CliError } from './errors.js';
import { resolveCommon } from './options.js';
import type { EnvReport, Renderer } from './render.js';
import { findEndTime, which } from './timeleft.js';

function whyMode(mode: string, c: ReturnType<typeof resolveCommon>, env: NodeJS.ProcessEnv, alloc: Allocation | null): string {
  if (c.local) return '--local';
  if (mode === 'emulate') return c.emulate !== undefined && env.SLURMPOOL_EMULATE !== c.emulate ? `--emulate ${c.emulate}` : `SLURMPOOL_EMULATE=${env.SLURMPOOL_EMULATE}`;
  if (mode === 'ssh') return '--hosts/--hostfile: SSH to the hosts named';
  if (env.SLURMPOOL_AGENT === '1') return 'SLURMPOOL_AGENT=1: inside an agent, tasks run on this node';
  const job = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (!job) return 'no SLURM_JOB_ID: not inside a Slurm allocation, so this machine only';
  const n = env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES ?? '1';
  if (mode === 'slurm') return `SLURM_JOB_ID=${job} with SLURM_JOB_NUM_NODES=${n}: an agent on every node, started with srun`;
  return `SLURM_JOB_ID=${job} with ${n} node${alloc && alloc.numNodes > 1 ? 's' : ''}: one node, so this machine only`;
}

function shellName(): string | null {
  try {
    return realpathSync('/bin/sh');
  } catch {
    return null;
  }
}

/** Compute the report for `slurmpool env` and render it. */
export async function envCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const env = process.env;
  const c = resolveCommon(args);
  const po: PoolOptions = { env, log: false };
  if (c.emulate !== undefined) po.emulate = c.emulate;
  if (c.hosts !== undefined) po.hosts = c.hosts;
  if (c.local) po.mode = 'local';
  if (c.cpusPerTask !== undefined) po.threadsPerTask = c.cpusPerTask;
  if (c.workers !== undefined) po.workers = c.workers;
  let resolved;
  try {
    resolved = resolveOptions(po);
  } catch (e) {
    throw new CliError(e instanceof OptionError ? e.message : String(e));
  }
  const mode = pickMode(resolved);
  let alloc: Allocation | null = null;
  let allocationError: string | null = null;
  try {
    alloc = readAllocation(env);
  } catch (e) {
    allocationError = (e as Error).message;
  }
  const end = alloc ? await findEndTime(env, c.timeLeftMs) : c.timeLeftMs !== undefined ? await findEndTime(env, c.timeLeftMs) : null;
  const variables: Record<string, string> = {};
  for (const k of ALLOCATION_VARIABLES) if (env[k] !== undefined) variables[k] = env[k]!;
  for (const k of Object.keys(env).sort()) if (k.startsWith('SLURMPOOL_') && k !== SECRET_ENV) variables[k] = env[k]!;
  // The GPUs an agent on this node would find, and each worker slot's share with --gpus-per-task.
  const g = discoverGpus(env);
  const perTask = c.gpusPerTask ?? 0;
  const slots = perTask > 0 ? gpuSlots(g.ids.length, perTask).map((p) => gpuEnv(g, p)) : [];
  const gpus: EnvReport['gpus'] = { ids: g.ids, source: g.source, what: describeGpus(g), perTask, slots };
  const threads: Record<string, string | null> = {};
  for (const k of THREAD_VARIABLES) threads[k] = env[k] ?? null;
  const report: EnvReport = {
    mode,
    why: whyMode(mode, c, env, alloc),
    allocation: alloc
      ? {
          jobId: alloc.jobId,
          nodes: alloc.nodes,
          nodelist: compressHostlist(alloc.nodes),
          cpusPerNode: alloc.cpusPerNode,
          tasksPerNode: alloc.tasksPerNode,
          cpusPerTask: alloc.cpusPerTask,
          ntasks: alloc.ntasks,
          nodeName: alloc.nodeName,
          endTime: end ? new Date(end.at).toISOString() : null,
          timeLeftSeconds: end ? Math.round((end.at - Date.now()) / 1000) : null,
          endSource: end?.source ?? null,
          sources: alloc.sources,
        }
      : null,
    allocationError,
    here: { hostname: hostname(), cpus: availableParallelism(), cpusAllowed: formatCpuList(allowedCpus()), workers: perTask > 0 ? Math.min(resolved.workers, slots.length) : resolved.workers },
    gpus,
    variables,
    threads,
    tools: { sh: shellName(), srun: which('srun'), squeue: which('squeue'), taskset: which('taskset'), ssh: which('ssh') },
  };
  r.env(report);
  return allocationError ? 1 : 0;
}
