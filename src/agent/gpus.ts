// The GPUs a node gives this agent, and which of them each running task gets (CUDA_VISIBLE_DEVICES…).
//
// Which source wins, and why (docs/gpus.md): CUDA_VISIBLE_DEVICES first, because it is what the
// CUDA runtime of every task will read, in the numbering of this process's view of the node: Slurm
// sets it for each step from the GPUs it allocated, renumbered 0..n-1 where cgroups hide the other
// devices (ConstrainDevices=yes), while SLURM_STEP_GPUS / SLURM_JOB_GPUS keep the node's global
// indices. Splitting any other list would hand tasks ids that CUDA reads differently. Then the lists
// Slurm sets for other vendors (ROCR_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL, ZE_AFFINITY_MASK), then
// SLURM_STEP_GPUS, SLURM_JOB_GPUS, SLURM_GPUS_ON_NODE (a count: ids 0..n-1), and outside Slurm the
// /dev/nvidiaN device files.
import { readdirSync } from '../util/node-fs.js';

/** Variables that list the GPUs a process may use, as Slurm sets them for NVIDIA, AMD, Intel and OpenCL. */
export const GPU_VARIABLES = ['CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'GPU_DEVICE_ORDINAL', 'ZE_AFFINITY_MASK'] as const;

/** The GPUs of a node as this agent sees them. */
export interface NodeGpus {
  /** GPU ids as the winning source gives them (indices, or UUIDs / MIG names from CUDA_VISIBLE_DEVICES). */
  ids: string[];
  /** Where they were read: a variable name, `SLURM_GPUS_ON_NODE`, `/dev/nvidia*`, or 'none'. */
  source: string;
  /**
   * Each GPU variable of the environment whose list has one entry per GPU: a task's GPUs are the same
   * positions of every such list (vendors may number them differently).
   */
  lists: Partial<Record<(typeof GPU_VARIABLES)[number], string[]>>;
}

/** "0,1,2" → ["0","1","2"]; null for a value that names no list (unset, Slurm's "NoDevFiles"). */
function listOf(v: string | undefined): string[] | null {
  if (v === undefined) return null;
  const t = v.trim();
  if (t === 'NoDevFiles' || t === 'N/A') return null;
  // Set but empty, or CUDA's "-1": no device at all.
  if (t === '' || t === '-1') return [];
  return t
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The /dev/nvidiaN device files of this machine (N only), sorted by N. */
export function nvidiaDevices(dir = '/dev'): string[] {
  try {
    return readdirSync(dir)
      .map((f) => /^nvidia(\d+)$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .sort((a, b) => Number(a) - Number(b));
  } catch {
    return [];
  }
}

/** Read the node's GPUs from the environment (and, outside Slurm, the device files); see the header for the order. */
export function discoverGpus(env: NodeJS.ProcessEnv, devices: () => string[] = nvidiaDevices): NodeGpus {
  let ids: string[] | null = null;
  let source = 'none';
  for (const name of [...GPU_VARIABLES, 'SLURM_STEP_GPUS', 'SLURM_JOB_GPUS']) {
    const l = listOf(env[name]);
    if (l !== null) {
      ids = l;
      source = name;
      break;
    }
  }
  if (ids === null) {
    const n = Number(env.SLURM_GPUS_ON_NODE);
    if (env.SLURM_GPUS_ON_NODE !== undefined && Number.isInteger(n) && n >= 0) {
      ids = Array.from({ length: n }, (_, i) => String(i));
      source = 'SLURM_GPUS_ON_NODE';
    }
  }
  if (ids === null) {
    const d = devices();
    if (d.length > 0) {
      ids = d;
      source = '/dev/nvidia*';
    }
  }
  ids ??= [];
  const lists: NodeGpus['lists'] = {};
  for (const name of GPU_VARIABLES) {
    const l = listOf(env[name]);
    if (l !== null && l.length === ids.length && ids.length > 0) lists[name] = l;
  }
  return { ids, source, lists };
}

/** Where a node's GPUs came from, in words for messages: "CUDA_VISIBLE_DEVICES=0,1", "no GPU found". */
export function describeGpus(g: NodeGpus): string {
  if (g.ids.length === 0) {
    return g.source === 'none'
      ? 'no GPU found (none of CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL, ZE_AFFINITY_MASK, SLURM_STEP_GPUS, SLURM_JOB_GPUS, SLURM_GPUS_ON_NODE is set, and no /dev/nvidiaN)'
      : `no GPU (${g.source} lists none)`;
  }
  return `${g.ids.length} GPU${g.ids.length === 1 ? '' : 's'} (${g.source === '/dev/nvidia*' ? `/dev/nvidia${g.ids.join(',')}` : g.source === 'SLURM_GPUS_ON_NODE' ? `SLURM_GPUS_ON_NODE=${g.ids.length}` : `${g.source}=${g.ids.join(',')}`})`;
}

/**
 * The positions of the node's GPU list that each slot gets when every task takes `perTask`: slot k
 * gets positions [k·N, k·N+N). ⌊GPUs / N⌋ slots; GPUs left over are used by no task.
 */
export function gpuSlots(count: number, perTask: number): number[][] {
  if (perTask < 1) return [];
  const slots: number[][] = [];
  for (let k = 0; (k + 1) * perTask <= count; k++) slots.push(Array.from({ length: perTask }, (_, i) => k * perTask + i));
  return slots;
}

/**
 * The variables that give a task the GPUs at these positions of the node's list. Where the node's
 * environment sets GPU variables (the site's Slurm chose which vendors' to set), each of them is
 * narrowed to the same positions of its own list. Where it sets none (GPUs from SLURM_JOB_GPUS, a
 * count or the device files), CUDA_VISIBLE_DEVICES and ZE_AFFINITY_MASK are set, but not
 * ROCR_VISIBLE_DEVICES: HIP reads CUDA_VISIBLE_DEVICES too, relative to the devices ROCR left
 * visible, so setting both would filter AMD devices twice ("2" of a list of one). SLURMPOOL_TASK_GPUS
 * names the task's GPUs as the source listed them; SLURMPOOL_GPU_ORDINALS, where the source is a
 * GPU variable, their positions in it.
 */
export function gpuEnv(g: NodeGpus, positions: readonly number[]): Record<string, string> {
  // No GPU for this task (a packed task asking for none): CUDA sees none, whatever others hold.
  if (positions.length === 0) return { CUDA_VISIBLE_DEVICES: '', SLURMPOOL_TASK_GPUS: '' };
  const pick = (l: string[]) => positions.map((p) => l[p]!).join(',');
  const env: Record<string, string> = {};
  for (const name of GPU_VARIABLES) {
    const l = g.lists[name];
    if (l) env[name] = pick(l);
  }
  if (Object.keys(env).length === 0) {
    env.CUDA_VISIBLE_DEVICES = pick(g.ids);
    env.ZE_AFFINITY_MASK = pick(g.ids);
  }
  env.SLURMPOOL_TASK_GPUS = pick(g.ids);
  // Where the agent's own process sees exactly the listed devices, in order, the positions are the
  // device ordinals native code in the agent's process (a worker thread) must select by hand.
  if ((GPU_VARIABLES as readonly string[]).includes(g.source)) env.SLURMPOOL_GPU_ORDINALS = positions.join(',');
  return env;
}
