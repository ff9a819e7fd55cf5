// Helpers for one measurement child: read the sizes, time a call, print one JSON line.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The workload sizes, from bench/params.json. */
export const params = JSON.parse(readFileSync(new URL('../params.json', import.meta.url), 'utf8'));
// The 16-core scaling run (bench/scaling.mjs) splits W2 into more subranges.
if (process.env.BENCH_W2_TASKS) params.w2.tasks = Number(process.env.BENCH_W2_TASKS);

/** Seconds taken by `fn` (awaited), and what it returned. */
export async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

/** The 64 (or params.w2.tasks) equal subranges [lo, hi) of the W2 range. */
/**
 * Pool.open resolves once one worker is ready, the others still starting: run tiny tasks until every
 * worker has run one (bounded: 400 rounds), so that timing starts with the module loaded everywhere.
 */
export async function warmAllWorkers(pool, fn = 'identity') {
  const total = pool.nodes.reduce((n, x) => n + x.workers, 0);
  const ran = new Set();
  for (let round = 0; round < 400 && ran.size < total; round++) {
    for await (const r of pool.imapRecords(fn, Array.from({ length: total * 4 }, (_, i) => i), { chunksize: 1 })) ran.add(`${r.node}/${r.worker}`);
    if (ran.size < total) await new Promise((r) => setTimeout(r, 5));
  }
  if (ran.size < total) throw new Error(`only ${ran.size} of ${total} workers ran a task during the warm-up`);
}

export function primeRanges(lo, hi, tasks) {
  const step = (hi - lo) / tasks;
  const out = [];
  for (let i = 0; i < tasks; i++) out.push([lo + Math.round(i * step), lo + Math.round((i + 1) * step)]);
  return out;
}

/** Throws unless `results` is exactly 0..n-1 in order. */
export function checkIdentity(results, n) {
  if (!Array.isArray(results) || results.length !== n) {
    throw new Error(`expected ${n} results, got ${Array.isArray(results) ? results.length : typeof results}`);
  }
  for (let i = 0; i < n; i++) {
    if (results[i] !== i) throw new Error(`result ${i} is ${JSON.stringify(results[i])}, expected ${i}`);
  }
}

/** Sum of W2 counts, checked against the expected total. */
export function checkPrimes(counts, expected) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== expected) throw new Error(`counted ${total} primes, expected ${expected}`);
  return total;
}

/** Runs `main(argv)` and prints its result as one JSON line: {ok:true,...} or {ok:false,error}. */
export async function runChild(main) {
  let out;
  try {
    out = { ok: true, ...(await main(process.argv.slice(2))) };
  } catch (err) {
    const e = /** @type {Error} */ (err);
    out = { ok: false, error: String(e?.message ?? e).split('\n')[0], stack: e?.stack };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  // Pools that fail to close must not keep the child alive: the measurement is done.
  setTimeout(() => process.exit(out.ok ? 0 : 1), 2000).unref();
}
