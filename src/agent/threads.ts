// Thread-count variables pinned for every task, so that N tasks on N cores do not oversubscribe.

/** Variables read by OpenMP, MKL, OpenBLAS, Accelerate and numexpr for their thread counts. */
export const THREAD_VARIABLES = [
  'OMP_NUM_THREADS',
  'MKL_NUM_THREADS',
  'OPENBLAS_NUM_THREADS',
  'VECLIB_MAXIMUM_THREADS',
  'NUMEXPR_NUM_THREADS',
] as const;

/**
 * The environment for tasks: every thread variable set to `threadsPerTask` (the cores each task
 * has), whatever the inherited environment says (a login shell's OMP_NUM_THREADS=16 would make N
 * tasks on N cores oversubscribe 16 times), except where the user gave a value for the tasks
 * (`taskEnv`), or asked to keep the inherited ones (`keep`). UV_THREADPOOL_SIZE is sized so that
 * every worker can have a libuv thread.
 */
export function pinnedEnv(
  base: NodeJS.ProcessEnv,
  threadsPerTask: number,
  workers: number,
  opts: { taskEnv?: Record<string, string>; keep?: boolean } = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  const task = opts.taskEnv ?? {};
  for (const [k, v] of Object.entries(task)) env[k] = v;
  for (const name of THREAD_VARIABLES) {
    if (task[name] !== undefined) continue;
    if (opts.keep && env[name] !== undefined && env[name] !== '') continue;
    env[name] = String(threadsPerTask);
  }
  if (env.UV_THREADPOOL_SIZE === undefined || env.UV_THREADPOOL_SIZE === '') {
    env.UV_THREADPOOL_SIZE = String(Math.min(1024, Math.max(4, workers * threadsPerTask)));
  }
  return env;
}

/** Inherited thread variables that pinning replaces (`NAME=old`), to say so once. */
export function overriddenThreadVariables(base: NodeJS.ProcessEnv, threadsPerTask: number, taskEnv: Record<string, string>, keep: boolean): string[] {
  if (keep) return [];
  const out: string[] = [];
  for (const name of THREAD_VARIABLES) {
    const v = base[name];
    if (taskEnv[name] === undefined && v !== undefined && v !== '' && v !== String(threadsPerTask)) out.push(`${name}=${v}`);
  }
  return out;
}
