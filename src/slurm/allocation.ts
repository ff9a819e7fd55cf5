// The Slurm allocation this process runs in, read once from SLURM_* variables into one typed value.
import { parseCountList } from './counts.js';
import { SlurmParseError, expandHostlist, malformed, quoteValue } from './hostlist.js';

/** An environment to read: `process.env` or any plain record of strings. */
export type SlurmEnv = Readonly<Record<string, string | undefined>>;

/** What a Slurm job was given, as its environment tells it. */
export interface Allocation {
  /** SLURM_JOB_ID (or the older SLURM_JOBID). */
  jobId: string;
  /** Every node of the job, in Slurm's order (SLURM_JOB_NODELIST, or SLURM_NODELIST). */
  nodes: string[];
  /** nodes.length, checked against SLURM_JOB_NUM_NODES when that is set. */
  numNodes: number;
  /** CPUs allocated on each node, one entry per entry of `nodes` (SLURM_JOB_CPUS_PER_NODE). */
  cpusPerNode: number[];
  /**
   * SLURM_TASKS_PER_NODE expanded: one entry per node of the job in the batch script, but per node
   * of the step inside an `srun` step (whose nodes may be fewer). Null when unset.
   */
  tasksPerNode: number[] | null;
  /** SLURM_CPUS_PER_TASK: set only when the job asked for `-c`. */
  cpusPerTask: number | null;
  /** SLURM_NTASKS (or SLURM_NPROCS): set only when the job asked for `-n`/`--ntasks-per-node`. */
  ntasks: number | null;
  /** SLURM_CPUS_ON_NODE: CPUs of this job on the node this process runs on. */
  cpusOnNode: number | null;
  /** SLURM_MEM_PER_NODE, in MB. */
  memPerNodeMB: number | null;
  /** SLURMD_NODENAME: the node this process runs on; null under `salloc`, whose shell runs on the submit host. */
  nodeName: string | null;
  /** The first node of the job, where the batch script runs. */
  batchNode: string;
  /** SLURM_SUBMIT_DIR. */
  submitDir: string | null;
  /** SLURM_STEP_ID (or SLURM_STEPID): set inside a step. */
  stepId: string | null;
  /** SLURM_JOB_END_TIME as epoch milliseconds, when Slurm sets it. */
  endTime: number | null;
  /** SLURM_LAUNCH_NODE_IPADDR: the address of the node that ran `srun`/`sbatch`. */
  launchNodeAddr: string | null;
  /** For each field above that was read, the variable it came from. */
  sources: Record<string, string>;
}

/** Every variable readAllocation reads, for commands that show them. */
export const ALLOCATION_VARIABLES = [
  'SLURM_JOB_ID',
  'SLURM_JOBID',
  'SLURM_JOB_NODELIST',
  'SLURM_NODELIST',
  'SLURM_JOB_NUM_NODES',
  'SLURM_JOB_CPUS_PER_NODE',
  'SLURM_TASKS_PER_NODE',
  'SLURM_CPUS_PER_TASK',
  'SLURM_NTASKS',
  'SLURM_NPROCS',
  'SLURM_CPUS_ON_NODE',
  'SLURM_MEM_PER_NODE',
  'SLURMD_NODENAME',
  'SLURM_SUBMIT_DIR',
  'SLURM_STEP_ID',
  'SLURM_STEPID',
  'SLURM_JOB_END_TIME',
  'SLURM_LAUNCH_NODE_IPADDR',
] as const;

interface Found {
  variable: string;
  value: string;
}

/** The first of `names` that is set to a non-empty value. */
function lookup(env: SlurmEnv, names: readonly string[]): Found | null {
  for (const variable of names) {
    const value = env[variable];
    if (value !== undefined && value !== '') return { variable, value };
  }
  return null;
}

function integer(f: Found, min: number): number {
  const n = /^\d+$/.test(f.value) ? Number(f.value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw malformed('value', f.value, min > 0 ? 'expected a positive integer' : 'expected a non-negative integer', f.variable);
  }
  return n;
}

function missing(names: readonly string[], job: Found): SlurmParseError {
  const [variable = '', ...others] = names;
  const nor = others.length > 0 ? ` (nor ${others.join(', ')})` : '';
  const reason = `is not set${nor}, though ${job.variable}=${quoteValue(job.value)} says this is a Slurm job`;
  return new SlurmParseError(`${variable} ${reason}`, { variable, reason });
}

/**
 * Read the Slurm allocation this process runs in from its environment, or null when it runs
 * outside a Slurm job (no SLURM_JOB_ID). Throws SlurmParseError, naming the variable and quoting
 * its value, when a required variable is missing or any variable is malformed.
 */
export function readAllocation(env: SlurmEnv = process.env): Allocation | null {
  const job = lookup(env, ['SLURM_JOB_ID', 'SLURM_JOBID']);
  if (job === null) return null;
  const sources: Record<string, string> = {};
  const required = (field: string, names: readonly string[]): Found => {
    const f = lookup(env, names);
    if (f === null) throw missing(names, job);
    sources[field] = f.variable;
    return f;
  };
  const optional = (field: string, names: readonly string[]): Found | null => {
    const f = lookup(env, names);
    if (f !== null) sources[field] = f.variable;
    return f;
  };
  const optionalInt = (field: string, names: readonly string[], min: number): number | null => {
    const f = optional(field, names);
    return f === null ? null : integer(f, min);
  };

  sources.jobId = job.variable;
  if (!/^\d+$/.test(job.value)) throw malformed('value', job.value, 'expected a numeric job id', job.variable);

  const list = required('nodes', ['SLURM_JOB_NODELIST', 'SLURM_NODELIST']);
  const nodes = expandHostlist(list.value, list.variable);
  if (nodes.length === 0) throw malformed('value', list.value, 'it names no nodes', list.variable);
  const seen = new Set<string>();
  for (const n of nodes) {
    if (seen.has(n)) throw malformed('value', list.value, `node ${n} appears more than once`, list.variable);
    seen.add(n);
  }
  const listText = `${list.variable}=${quoteValue(list.value)}`;

  const num = optional('numNodes', ['SLURM_JOB_NUM_NODES']);
  if (num === null) sources.numNodes = list.variable;
  else if (integer(num, 1) !== nodes.length) {
    throw disagree(num, `disagrees with ${listText}, which names ${plural(nodes.length, 'node')}`);
  }

  const cpus = required('cpusPerNode', ['SLURM_JOB_CPUS_PER_NODE']);
  const cpusPerNode = parseCountList(cpus.value, cpus.variable);
  if (cpusPerNode.length !== nodes.length) {
    throw disagree(cpus, `gives ${plural(cpusPerNode.length, 'count')} but ${listText} names ${plural(nodes.length, 'node')}`);
  }
  const idle = cpusPerNode.indexOf(0);
  if (idle >= 0) throw malformed('value', cpus.value, `node ${nodes[idle] ?? ''} has 0 CPUs`, cpus.variable);

  const tasks = optional('tasksPerNode', ['SLURM_TASKS_PER_NODE']);
  const end = optionalInt('endTime', ['SLURM_JOB_END_TIME'], 0);
  sources.batchNode = list.variable;

  return {
    jobId: job.value,
    nodes,
    numNodes: nodes.length,
    cpusPerNode,
    tasksPerNode: tasks === null ? null : parseCountList(tasks.value, tasks.variable),
    cpusPerTask: optionalInt('cpusPerTask', ['SLURM_CPUS_PER_TASK'], 1),
    ntasks: optionalInt('ntasks', ['SLURM_NTASKS', 'SLURM_NPROCS'], 1),
    cpusOnNode: optionalInt('cpusOnNode', ['SLURM_CPUS_ON_NODE'], 1),
    memPerNodeMB: optionalInt('memPerNodeMB', ['SLURM_MEM_PER_NODE'], 0),
    nodeName: optional('nodeName', ['SLURMD_NODENAME'])?.value ?? null,
    batchNode: nodes[0] as string,
    submitDir: optional('submitDir', ['SLURM_SUBMIT_DIR'])?.value ?? null,
    stepId: optional('stepId', ['SLURM_STEP_ID', 'SLURM_STEPID'])?.value ?? null,
    endTime: end === null ? null : end * 1000,
    launchNodeAddr: optional('launchNodeAddr', ['SLURM_LAUNCH_NODE_IPADDR'])?.value ?? null,
    sources,
  };
}

/** A variable that contradicts the node list: `SLURM_JOB_NUM_NODES="4" disagrees with …`. */
function disagree(f: Found, reason: string): SlurmParseError {
  return new SlurmParseError(`${f.variable}=${quoteValue(f.value)} ${reason}`, { value: f.value, variable: f.variable, reason });
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
