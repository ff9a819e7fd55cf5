#!/usr/bin/env node
// W2 scaling on a many-core machine: prime counting split into 256 subranges, at 1, 2, 4, 8, 16… workers,
// slurmpool (local threads, and emulated nodes over TCP), piscina and multiprocessing, in one run.
//   node bench/scaling.mjs [--workers 1,2,4,8,16] [--reps 2] [--json FILE]
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { runChild, median } from './lib/harness.mjs';

const dir = import.meta.dirname;
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const cores = availableParallelism();
const counts = opt('--workers', [1, 2, 4, 8, 16, 32].filter((w) => w <= cores).join(',')).split(',').map(Number);
const reps = Number(opt('--reps', '2'));
const env = { ...process.env, BENCH_W2_TASKS: '256' };
let python = null;
try {
  python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
} catch {
  /* none */
}

const impls = [
  { key: 'slurmpool', cmd: process.execPath, args: (w) => [join(dir, 'peers/slurmpool.mjs'), 'W2', String(w)] },
  { key: 'piscina', cmd: process.execPath, args: (w) => [join(dir, 'peers/piscina.mjs'), 'W2', String(w)] },
  ...(python ? [{ key: 'multiprocessing', cmd: python, args: (w) => [join(dir, 'peers/mp_pool.py'), 'W2', String(w)] }] : []),
];
const results = {};
process.stderr.write(`scaling: ${cpus()[0]?.model}, ${cores} cores; workers ${counts.join(',')}; ${reps} reps\n`);
for (let r = 0; r < reps; r++) {
  for (const w of counts) {
    for (const impl of impls) {
      const res = await runChild(impl.cmd, impl.args(w), { timeoutMs: 180_000, env });
      const s = res.json?.ok ? res.json.seconds : NaN;
      ((results[impl.key] ??= {})[w] ??= []).push(s);
      process.stderr.write(`  ${impl.key} ${w}: ${Number.isFinite(s) ? s.toFixed(3) + ' s' : 'error ' + (res.json?.error ?? res.error ?? '')}\n`);
    }
  }
  // The distributed path: N emulated nodes of 4 CPUs each, agents over loopback TCP.
  for (const w of counts.filter((w) => w >= 4)) {
    const res = await runChild(process.execPath, [join(dir, 'peers/slurmpool.mjs'), 'W2', String(w)], { timeoutMs: 180_000, env: { ...env, BENCH_EMULATE: `${w / 4}x4` } });
    const s = res.json?.ok ? res.json.seconds : NaN;
    ((results['slurmpool emulate Nx4'] ??= {})[w] ??= []).push(s);
    process.stderr.write(`  emulate ${w / 4}x4: ${Number.isFinite(s) ? s.toFixed(3) + ' s' : 'error ' + (res.json?.error ?? res.error ?? '')}\n`);
  }
}
const lines = [`W2 (256 subranges) speedup over the same implementation at 1 worker; median of ${reps}; ${cpus()[0]?.model}, ${cores} cores`, ''];
lines.push(['implementation', ...counts.map((w) => `${w} workers`)].join(' | '));
lines.push(['---', ...counts.map(() => '---')].join(' | '));
for (const [key, by] of Object.entries(results)) {
  const t1 = median(results[key.startsWith('slurmpool emulate') ? 'slurmpool' : key]?.[1] ?? []);
  lines.push([key, ...counts.map((w) => {
    const t = median(by[w] ?? []);
    return Number.isFinite(t) ? `${(t1 / t).toFixed(2)}× (${t.toFixed(2)} s)` : '—';
  })].join(' | '));
}
console.log(lines.join('\n'));
const jsonOut = opt('--json', null);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ cores, model: cpus()[0]?.model, results }, null, 2));
