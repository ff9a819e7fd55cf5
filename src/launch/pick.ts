// Which mode Pool.open uses when none is forced.
import type { Mode, ResolvedOptions } from '../options.js';

/** Emulation or SSH when asked for; Slurm inside an allocation of more than one node (or of one, with grow); else local threads. */
export function pickMode(opts: ResolvedOptions): Mode {
  if (opts.mode) return opts.mode;
  if (opts.join) return 'join';
  if (opts.emulate) return 'emulate';
  if (opts.hosts) return 'ssh';
  const env = opts.env;
  if (env.SLURMPOOL_AGENT === '1') return 'local';
  const jobId = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  const nodes = Number(env.SLURM_JOB_NUM_NODES ?? env.SLURM_NNODES ?? '1');
  // A pool that grows runs its own node's agent as a step too, so that it is named as Slurm names it.
  if (jobId && (nodes > 1 || opts.grow)) return 'slurm';
  return 'local';
}
