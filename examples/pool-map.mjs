// Count primes below N with a Pool: the same code on a laptop, in emulation, or across an allocation.
import { Pool } from 'slurmpool';

const N = Number(process.argv[2] ?? 2_000_000);
const parts = 48;
const ranges = Array.from({ length: parts }, (_, i) => [Math.floor((N * i) / parts), Math.floor((N * (i + 1)) / parts)]);

const t0 = performance.now();
// Node 20 has no `await using` in plain JavaScript (TypeScript compiles it): close in finally.
const pool = await Pool.open({ module: new URL('./tasks.mjs', import.meta.url), minNodes: Number(process.env.MIN_NODES ?? 0) || undefined });
try {
  const results = await pool.map('countPrimes', ranges, { chunksize: 1 });
  const total = results.reduce((s, r) => s + r.count, 0);
  const perNode = {};
  for (const r of results) perNode[r.node] = (perNode[r.node] ?? 0) + 1;
  const nodes = pool.nodes.map((n) => n.node).sort();
  console.log(JSON.stringify({ mode: pool.mode, nodes, workers: pool.workers, primes: total, tasksPerNode: perNode, seconds: (performance.now() - t0) / 1000 }));
} finally {
  await pool.close();
}
