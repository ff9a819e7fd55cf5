// Distributed figures over real agent processes and loopback TCP:
//   node bench/peers/distributed.mjs auto NODES   items/s of map(identity) over 200,000 items, automatic chunking, NODES emulated agents
//   node bench/peers/distributed.mjs rtt          median round trip of one empty chunk (apply('noop')) to one agent, in µs
//   node bench/peers/distributed.mjs open         Pool.open in the current allocation to the first result (run inside sbatch/salloc)
import { performance } from 'node:perf_hooks';
import { Pool } from '../../dist/index.js';
import { checkIdentity, params, runChild } from '../lib/child.mjs';

const tasks = new URL('../tasks.mjs', import.meta.url);

await runChild(async ([what, arg]) => {
  if (what === 'auto') {
    const nodes = Number(arg ?? 3);
    const pool = await Pool.open({ module: tasks, emulate: { nodes, cpusPerNode: 1 }, log: false });
    try {
      const n = params.w1.n;
      const items = Array.from({ length: n }, (_, i) => i);
      await pool.map('identity', items); // warm up: JIT, credits, batch sizes
      const times = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const out = await pool.map('identity', items);
        times.push((performance.now() - t0) / 1000);
        checkIdentity(out, n);
      }
      times.sort((a, b) => a - b);
      return { seconds: times[2], items: n, nodes };
    } finally {
      await pool.close();
    }
  }
  if (what === 'rtt') {
    const pool = await Pool.open({ module: tasks, emulate: { nodes: 1, cpusPerNode: 1 }, log: false });
    try {
      // Steady state, as the ping-pong floors: after 200 round trips V8's optimising compiler still ran on the
      // other core for most of the next 1,000 (JIT warm-up measured, not the round trip); 5,000 take 1-2 s.
      for (let k = 0; k < 5000; k++) await pool.apply('noop');
      const us = [];
      for (let k = 0; k < 1000; k++) {
        const t0 = performance.now();
        await pool.apply('noop');
        us.push((performance.now() - t0) * 1000);
      }
      us.sort((a, b) => a - b);
      return { us: us[us.length >> 1], p90: us[Math.floor(us.length * 0.9)] };
    } finally {
      await pool.close();
    }
  }
  if (what === 'open') {
    const t0 = performance.now();
    const pool = await Pool.open({ module: tasks, log: false });
    const opened = performance.now();
    await pool.apply('noop');
    const first = performance.now();
    const nodes = pool.nodes.length;
    await pool.close();
    return { seconds: (first - t0) / 1000, openSeconds: (opened - t0) / 1000, nodes, mode: pool.mode };
  }
  throw new Error(`unknown: ${what}`);
});
