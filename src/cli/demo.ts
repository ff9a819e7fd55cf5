// slurmpool demo: count primes below 5,000,000 on the pool, and on one worker, and show the speedup.
import { fileURLToPath } from 'node:url';
import { Pool } from '../pool.js';
import type { PoolOptions } from '../options.js';
import { CliError, EXIT } from './errors.js';
import type { Renderer } from './render.js';

const TASKS = fileURLToPath(new URL('./demo-tasks.js', import.meta.url));

/** [lo, hi) ranges covering [0, limit). */
function ranges(limit: number, parts: number): [number, number][] {
  const step = Math.ceil(limit / parts);
  const out: [number, number][] = [];
  for (let lo = 0; lo < limit; lo += step) out.push([lo, Math.min(limit, lo + step)]);
  return out;
}

async function timed(opts: PoolOptions, work: [number, number][]): Promise<{ primes: number; seconds: number; mode: string; nodes: number; workers: number }> {
  let pool: Pool;
  try {
    pool = await Pool.open(opts);
  } catch (e) {
    throw new CliError(`the demo pool did not start: ${(e as Error).message}`, EXIT.launch);
  }
  try {
    const t0 = performance.now();
    const counts = await pool.map<number>('countPrimes', work, { chunksize: 1 });
    const seconds = (performance.now() - t0) / 1000;
    return { primes: counts.reduce((a, b) => a + b, 0), seconds, mode: pool.mode, nodes: pool.nodes.length, workers: pool.workers };
  } finally {
    await pool.close();
  }
}

/** Run the demo and render what it measured. */
export async function demoCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const limit = Number(args.limit ?? 5_000_000);
  if (!Number.isSafeInteger(limit) || limit < 10) throw new CliError(`--limit must be a whole number ≥ 10, got ${JSON.stringify(args.limit)}`);
  const work = ranges(limit, 64);
  const opts: PoolOptions = { module: TASKS, log: false };
  if (args.local === true) opts.mode = 'local';
  else opts.emulate = String(args.emulate ?? '2x1');
  if (r.kind === 'human') r.note(`counting primes below ${limit.toLocaleString('en-US')} in ${work.length} tasks, on one worker and then on the pool…`);
  const one = await timed({ module: TASKS, mode: 'local', workers: 1, log: false }, work);
  const many = await timed(opts, work);
  if (one.primes !== many.primes) throw new CliError(`the pool counted ${many.primes} primes but one worker counted ${one.primes}`, EXIT.failed);
  r.demo({
    limit,
    primes: many.primes,
    mode: many.mode,
    nodes: many.nodes,
    workers: many.workers,
    seconds: many.seconds,
    oneWorkerSeconds: one.seconds,
    speedup: one.seconds / many.seconds,
  });
  return EXIT.ok;
}
