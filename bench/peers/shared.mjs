// Issue 7: tasks that all read the same 256 MB buffer, shared once per node versus passed in every task's arguments.
//   node bench/peers/shared.mjs shared|args  -> one JSON line (tasks/s, peak RSS of each node's agent)
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from '../../dist/index.js';
import { runChild } from '../lib/child.mjs';

const MB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SHARED_MB ?? 256) * MB;

function peakRss(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

await runChild(async ([how]) => {
  const buf = Buffer.alloc(SIZE, 3);
  const pool = await Pool.open({ module: new URL('../tasks.mjs', import.meta.url), emulate: '2x2', log: false });
  try {
    const base = pool.nodes.map((n) => peakRss(n.pid));
    const tasks = how === 'shared' ? 2000 : 16;
    const t0 = performance.now();
    let out;
    if (how === 'shared') {
      const ref = await pool.share(buf);
      out = await pool.map('sampleSum', Array(tasks).fill(ref), { chunksize: 1 });
    } else {
      out = await pool.map('sampleSum', Array(tasks).fill(buf), { chunksize: 1 });
    }
    const seconds = (performance.now() - t0) / 1000;
    const want = (SIZE / 4096) * 3;
    if (out.some((s) => s !== want)) throw new Error('a task read the wrong bytes');
    const peak = pool.nodes.map((n) => peakRss(n.pid));
    return { seconds, tasks, tasksPerSecond: tasks / seconds, bytes: SIZE, agentPeakRss: peak, agentBaseRss: base };
  } finally {
    await pool.close();
  }
});
