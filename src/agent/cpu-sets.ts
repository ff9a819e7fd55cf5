// CPU sets: the CPUs this process may run on, and each worker slot's own cores when tasks are pinned.
// A module of its own, light, so that the Python slots load it without the shell runner (node:fs
// through require: an ES module import of it costs a pool's main thread 3–5 ms, see util/node-fs.ts).
import { availableParallelism } from 'node:os';
import { formatRanges } from '../util/ranges.js';
import { readFileSync } from '../util/node-fs.js';

/** CPUs per task: pin worker slot w to its own cores [w*N, w*N+N) of the node's allowed CPUs (SHELL_ENV.pinCpus). */
export const PIN_CPUS_ENV = 'SLURMPOOL_PIN_CPUS';

/** The CPUs this process may run on: /proc/self/status Cpus_allowed_list on Linux, else 0..n-1. */
export function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) {
      const list = parseCpuList(m[1]!);
      if (list.length > 0) return list;
    }
  } catch {
    // not Linux
  }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

/** "0-3,8,10-11" → [0,1,2,3,8,10,11]. */
export function parseCpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let c = a; c <= b && out.length < 65536; c++) out.push(c);
  }
  return out;
}

/** [0,1,2,3,8] → "0-3,8". */
export function formatCpuList(cpus: readonly number[]): string {
  return formatRanges([...new Set(cpus)]);
}

/**
 * The cores of worker slot `worker` when each task gets `perTask` of them: [w*N, w*N+N) of the
 * allowed list, starting `offset` cores in (emulated nodes share one machine), wrapping around when
 * the machine has fewer cores than asked for.
 */
export function slotCpus(allowed: readonly number[], worker: number, perTask: number, offset = 0): number[] {
  if (allowed.length === 0 || perTask < 1) return [];
  const out: number[] = [];
  for (let k = 0; k < perTask; k++) out.push(allowed[(offset + worker * perTask + k) % allowed.length]!);
  return [...new Set(out)];
}

/** The cores a worker is pinned to (ascending), from its environment, or null when pinning is off. */
export function pinnedCpuList(env: Record<string, string | undefined>, worker: number): number[] | null {
  const n = Number(env[PIN_CPUS_ENV]);
  if (!Number.isInteger(n) || n < 1) return null;
  let offset = 0;
  if (env.SLURMPOOL_EMULATED === '1') {
    const node = Number(env.SLURM_NODEID);
    const per = Number(env.SLURM_CPUS_ON_NODE);
    if (Number.isInteger(node) && Number.isInteger(per)) offset = node * per;
  }
  const cpus = slotCpus(allowedCpus(), worker, n, offset);
  return cpus.length ? cpus.sort((a, b) => a - b) : null;
}

/** The pinned CPU list for a worker from its environment, as "2-3", or null when pinning is off. */
export function pinnedCpus(env: Record<string, string | undefined>, worker: number): string | null {
  const cpus = pinnedCpuList(env, worker);
  return cpus ? formatCpuList(cpus) : null;
}
