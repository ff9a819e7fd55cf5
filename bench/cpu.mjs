// CPU per call, by thread and process, for the W1 and D2 figures (Linux: /proc schedstat):
//   node bench/cpu.mjs w1 [DIST]      W1 automatic, the second call in a fresh process (as the bench times it):
//                                     wall ms, the main thread's CPU ms, the whole process's CPU ms (its worker threads too)
//   node bench/cpu.mjs w1c1 [DIST]    the same at chunksize 1
//   node bench/cpu.mjs d2 [DIST] [N]  D2 (apply('noop') to one emulated agent over TCP), N round trips after 500:
//                                     median µs, and CPU µs per round trip of every thread of the coordinator and of the agent
// DIST defaults to this tree's dist/; A/B runs alternate two trees' dist folders (one JSON line each).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [what = 'w1', distArg, nArg] = process.argv.slice(2);
const dist = distArg ?? fileURLToPath(new URL('../dist', import.meta.url));
const { Pool } = await import(`${dist}/index.js`);
const module = new URL('./tasks.mjs', import.meta.url);

/** Nanoseconds on CPU of one thread so far. */
const cpuNs = (pid, tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
/** Every thread of a process: tid → ns on CPU. */
const threads = (pid) => Object.fromEntries(readdirSync(`/proc/${pid}/task`).map((t) => [t, cpuNs(pid, t)]));
/** µs per operation by thread ('main' for the process's main thread), those over 0.05 µs. */
function perOp(pid, before, after, n) {
  const out = {};
  for (const [t, ns] of Object.entries(after)) {
    const us = (ns - (before[t] ?? 0)) / 1000 / n;
    if (us >= 0.05) out[t === String(pid) ? 'main' : `thread ${t}`] = +us.toFixed(1);
  }
  return out;
}

if (what === 'w1' || what === 'w1c1') {
  const pool = await Pool.open({ module, workers: 2 });
  const n = 200_000;
  const items = Array.from({ length: n }, (_, i) => i);
  const opts = what === 'w1c1' ? { chunksize: 1 } : undefined;
  await pool.map('identity', items, opts);
  const p0 = process.cpuUsage();
  const m0 = cpuNs(process.pid, process.pid);
  const t0 = performance.now();
  const out = await pool.map('identity', items, opts);
  const wallMs = performance.now() - t0;
  const mainCpuMs = (cpuNs(process.pid, process.pid) - m0) / 1e6;
  const p = process.cpuUsage(p0);
  await pool.close();
  if (out.length !== n || out[n - 1] !== n - 1) throw new Error('wrong results');
  console.log(JSON.stringify({ what, dist, wallMs: +wallMs.toFixed(2), mainCpuMs: +mainCpuMs.toFixed(2), processCpuMs: +((p.user + p.system) / 1000).toFixed(2) }));
} else if (what === 'd2') {
  const N = Number(nArg ?? 3000);
  const pool = await Pool.open({ module, emulate: { nodes: 1, cpusPerNode: 1 }, log: false });
  const agent = pool.nodes[0].pid;
  for (let k = 0; k < Number(process.env.D2_WARM ?? 500); k++) await pool.apply('noop');
  const a0 = threads(agent);
  const c0 = threads(process.pid);
  const us = [];
  for (let k = 0; k < N; k++) {
    const t0 = performance.now();
    await pool.apply('noop');
    us.push((performance.now() - t0) * 1000);
  }
  const a1 = threads(agent);
  const c1 = threads(process.pid);
  await pool.close();
  us.sort((a, b) => a - b);
  console.log(JSON.stringify({ what, dist, medianUs: +us[us.length >> 1].toFixed(1), coordinatorCpuUs: perOp(process.pid, c0, c1, N), agentCpuUs: perOp(agent, a0, a1, N) }));
} else throw new Error(`unknown: ${what} (w1, w1c1 or d2)`);
