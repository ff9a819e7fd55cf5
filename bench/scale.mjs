// One coordinator toward 1,000 nodes: a real Pool in join mode, N simulated agents (bench/lib/sim-agents.mjs)
// in a few processes over real loopback TCP, all dialling at once.
//
//   npm run build && node bench/scale.mjs --agents 1000 [--agents 2000 …] [--json FILE] [--items N] [--procs K] [--chunksize K] [--share-mib M]
//
// Each run also measures 10 agents first, in the same invocation (the baseline). Figures are the
// coordinator's own: CPU time per chunk (process.cpuUsage), event-loop delay (monitorEventLoopDelay),
// RSS, idle CPU per agent per second, and bytes it sent for one 64 MiB shared value.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Pool } from '../dist/index.js';

const args = process.argv.slice(2);
const agentCounts = [];
let jsonOut = null;
let items = 200_000;
let procs = 4;
let shareMiB = 64;
let chunksize = 1;
let idleSeconds = 20;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--agents') agentCounts.push(Number(args[++i]));
  else if (args[i] === '--json') jsonOut = args[++i];
  else if (args[i] === '--items') items = Number(args[++i]);
  else if (args[i] === '--procs') procs = Number(args[++i]);
  else if (args[i] === '--share-mib') shareMiB = Number(args[++i]);
  else if (args[i] === '--chunksize') chunksize = Number(args[++i]);
  else if (args[i] === '--idle-s') idleSeconds = Number(args[++i]);
  else throw new Error(`unknown argument ${args[i]}`);
}
if (agentCounts.length === 0) agentCounts.push(250);

const tasks = new URL('./tasks.mjs', import.meta.url);
const simFile = new URL('./lib/sim-agents.mjs', import.meta.url).pathname;

async function measure(n) {
  const dir = mkdtempSync(join(tmpdir(), 'sp-scale-'));
  const file = join(dir, 'join.json');
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const opening = Pool.open({ module: tasks, join: { nodes: n, file }, log: false, startTimeout: 180_000 });
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  const k = Math.min(procs, n);
  const sims = [];
  for (let p = 0; p < k; p++) {
    const count = Math.floor(n / k) + (p < n % k ? 1 : 0);
    const first = p * Math.floor(n / k) + Math.min(p, n % k) + 1;
    const child = spawn(process.execPath, [simFile, file, String(count), String(first), '1'], { stdio: ['ignore', 'inherit', 'inherit'] });
    // The simulated agents stand in for other machines: on this one they yield the CPU to the coordinator under test.
    try {
      setPriority(child.pid, 10);
    } catch {
      // not permitted: measured at equal priority
    }
    sims.push(new Promise((r) => child.on('exit', r)));
  }
  const pool = await opening;
  const openS = (performance.now() - t0) / 1000;
  const phases = {};
  const phase = (name) => {
    phases[name] = +(loop.max / 1e6).toFixed(1);
    loop.reset();
  };
  phase('open');
  const admitted = pool.nodes.length;

  // Chunks at chunksize 1, answered at once: the coordinator's cost per chunk.
  const xs = Array.from({ length: items }, (_, i) => i);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const out = await pool.map('identity', xs, { chunksize });
  const wall = (performance.now() - w0) / 1000;
  const cpu = process.cpuUsage(c0);
  let wrong = 0;
  for (let i = 0; i < xs.length; i++) if (out[i] !== i) wrong++;
  if (wrong) throw new Error(`${wrong} wrong results at ${n} agents`);

  // Idle: the coordinator's CPU per agent per second with nothing to do, over two heartbeat periods
  // (the loop-delay monitor, this script's own instrument, is off meanwhile: its 100 wake-ups a second are not the pool's).
  phase('map');
  loop.disable();
  await new Promise((r) => setTimeout(r, 1000));
  const i0 = process.cpuUsage();
  const iw0 = performance.now();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const icpu = process.cpuUsage(i0);
  const iwall = (performance.now() - iw0) / 1000;
  loop.enable();

  // One shared value of shareMiB to every node: bytes the coordinator sent for it.
  let egress = null;
  let shareS = null;
  let shareDepth = null;
  if (shareMiB > 0) {
    const before = pool.sharedState().reduce((s, x) => s + x.bytesSent, 0);
    const s0 = performance.now();
    const ref = await pool.share(Buffer.alloc(shareMiB * 1024 * 1024, 1));
    shareS = +((performance.now() - s0) / 1000).toFixed(2);
    const st = pool.sharedState();
    const after = st.reduce((s, x) => s + x.bytesSent, 0);
    egress = (after - before) / (shareMiB * 1024 * 1024);
    // Depth of the relay tree: hops from the coordinator to the farthest node.
    const from = new Map(st.map((x) => [x.node, x.from[ref.$slurmpoolShared]]));
    const depth = (node, seen = 0) => (seen > st.length ? Infinity : from.get(node) === 'coordinator' ? 1 : 1 + depth(from.get(node), seen + 1));
    shareDepth = Math.max(...st.map((x) => depth(x.node)));
    await pool.unshare(ref);
  }
  phase('share');
  loop.disable();
  const rss = process.memoryUsage().rss / 1024 / 1024;
  await pool.close();
  await Promise.race([Promise.all(sims), new Promise((r) => setTimeout(r, 10_000))]);
  rmSync(dir, { recursive: true, force: true });
  return {
    agents: n,
    admitted,
    open_s: +openS.toFixed(2),
    chunksize,
    chunks_per_s: Math.round(items / chunksize / wall),
    items_per_s: Math.round(items / wall),
    coord_cpu_us_per_chunk: +((cpu.user + cpu.system) / (items / chunksize)).toFixed(2),
    coord_cpu_us_per_item: +((cpu.user + cpu.system) / items).toFixed(3),
    max_loop_delay_ms: Math.max(...Object.values(phases)),
    loop_delay_by_phase: phases,
    rss_mb: Math.round(rss),
    idle_cpu_us_per_agent_s: +((icpu.user + icpu.system) / n / iwall).toFixed(2),
    shared_egress_ratio: egress === null ? null : +egress.toFixed(2),
    share_s: shareS,
    share_tree_depth: shareDepth,
  };
}

const base = await measure(10);
const rows = [base];
for (const n of agentCounts) if (n !== 10) rows.push(await measure(n));
for (const r of rows) r.baseline_cpu_us_per_chunk = base.coord_cpu_us_per_chunk;
const cols = ['agents', 'admitted', 'open_s', 'chunks_per_s', 'coord_cpu_us_per_chunk', 'baseline_cpu_us_per_chunk', 'max_loop_delay_ms', 'rss_mb', 'idle_cpu_us_per_agent_s', 'shared_egress_ratio', 'share_s', 'share_tree_depth'];
console.log(`| ${cols.join(' | ')} |`);
console.log(`|${cols.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(rows.length === 2 ? rows[1] : rows, null, 2)}\n`);
