// The job the fault benchmark submits: a map long enough to suffer a fault, with time-stamped log lines.
//   node bench/faults-job.mjs TASKS MS [MARKER_DIR]   (inside sbatch -N3 --no-kill)
import { Pool } from '../dist/index.js';

const [n = '80', ms = '150', markers = ''] = process.argv.slice(2);
const t0 = Date.now();
const pool = await Pool.open({
  module: new URL('./faults-tasks.mjs', import.meta.url),
  heartbeatMs: 250,
  lostAfterMs: 3000,
  log: (l) => console.log(`${Date.now()} log ${l}`),
});
console.log(`${Date.now()} started ${pool.nodes.map((x) => `${x.node}:${x.pid}`).join(',')}`);
const items = Array.from({ length: Number(n) }, (_, i) => ({ i, ms: Number(ms), markers }));
const started = Date.now();
const out = await pool.map('work', items, { chunksize: 1 });
const ended = Date.now();
console.log(`${ended} result ${JSON.stringify({ results: out.length, distinct: new Set(out).size, inOrder: out.every((v, i) => v === i), mapMs: ended - started, openMs: started - t0 })}`);
await pool.close();
