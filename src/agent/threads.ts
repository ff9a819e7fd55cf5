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
 * The environment for tasks: each thread variable set to `threadsPerTask` unless the user set it
 * already, and UV_THREADPOOL_SIZE sized so that every worker can have a libuv thread.
 */
export function pinnedEnv(base: NodeJS.ProcessEnv, threadsPerTask: number, workers: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  for (const name of THREAD_VARIABLES) if (env[name] === undefined || env[name] === '') env[name] = String(threadsPerTask);
  if (env.UV_THREADPOOL_SIZE === undefined || env.UV_THREADPOOL_SIZE === '') {
    env.UV_THREADPOOL_SIZE = String(Math.min(1024, Math.max(4, workers * threadsPerTask)));
  }
  return env;
}
