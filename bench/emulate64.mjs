// Real agents at 64 emulated nodes: Pool.open without minNodes, a 2,000,000-item map, no node lost,
// the coordinator's event loop never stalled over 250 ms. (Issue 11's check with real agent processes.)
//   npm run build && node bench/emulate64.mjs [--nodes 64] [--items 2000000]
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Pool } from '../dist/index.js';

const args = process.argv.slice(2);
const nodes = Number(args[args.indexOf('--nodes') + 1] || 64) || 64;
const items = Number(args[args.indexOf('--items') + 1] || 2_000_000) || 2_000_000;
const loop = monitorEventLoopDelay({ resolution: 10 });
// Garbage-collection pauses, to tell the coordinator's own long turns from the collector's.
let gcMax = 0;
let gcKind = '';
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.duration > gcMax) {
      gcMax = e.duration;
      gcKind = String(e.detail?.kind ?? '');
    }
  }
}).observe({ entryTypes: ['gc'] });
loop.enable();
const lost = [];
const t0 = performance.now();
const pool = await Pool.open({ module: new URL('./tasks.mjs', import.meta.url), emulate: `${nodes}x1`, log: (l) => (/lost/.test(l) ? lost.push(l) : undefined), startTimeout: 300_000 });
const openS = (performance.now() - t0) / 1000;
const admitted = pool.nodes.length;
const openMax = loop.max / 1e6;
// The 64 agents stand in for 64 other machines: on this 2-core one they yield the CPU to the
// coordinator under test (as bench/scale.mjs's simulated agents do), so that the loop delay measured
// is the coordinator's own work, not the kernel handing 2 cores to 65 busy processes. --no-renice
// measures at equal priority.
const renice = !args.includes('--no-renice');
if (renice) {
  // Linux priorities are per thread: every thread of each agent (its workers included).
  for (const n of pool.nodes) {
    let tids = [String(n.pid)];
    try {
      tids = readdirSync(`/proc/${n.pid}/task`);
    } catch {
      // no /proc: the main thread only
    }
    for (const t of tids) {
      try {
        setPriority(Number(t), 10);
      } catch {
        // not permitted: measured at equal priority
      }
    }
  }
}
// The input is built, and the results checked, outside the measured window: they are this script's work, not the pool's.
const xs = Array.from({ length: items }, (_, i) => i);
loop.reset();
gcMax = 0;
const m0 = performance.now();
const out = await pool.map('identity', xs);
const mapS = (performance.now() - m0) / 1000;
const mapMax = loop.max / 1e6;
const gcMapMax = gcMax;
let wrong = 0;
for (let i = 0; i < items; i++) if (out[i] !== i) wrong++;
const alive = pool.stats().filter((s) => s.alive).length;
await pool.close();
loop.disable();
console.log(JSON.stringify({ nodes, admitted, agents_reniced: renice, open_s: +openS.toFixed(2), items, map_s: +mapS.toFixed(2), wrong, nodes_alive_at_end: alive, lost_lines: lost.length, max_loop_delay_ms: { open: +openMax.toFixed(1), map: +mapMax.toFixed(1) }, max_gc_pause_ms_in_map: +gcMapMax.toFixed(1), gc_kind: gcKind }));
