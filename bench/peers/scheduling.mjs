// Scheduling benchmarks (section H): head-of-line blocking and mixed durations, as makespans.
//   node bench/peers/scheduling.mjs cli FILE [--emulate 2x1]   → {seconds, ideal}: `slurmpool run` of a command file, 2 workers
//   node bench/peers/scheduling.mjs parallel FILE                → {seconds, makespan}: GNU parallel -j2 --joblog
//   node bench/peers/scheduling.mjs map array|gen              → {seconds, ideal}: 490 × 1 ms and 10 × 500 ms, mixed, 2 workers
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runChild, warmAllWorkers } from '../lib/child.mjs';

const root = new URL('../..', import.meta.url).pathname;

await runChild(async ([what, a, ...rest]) => {
  if (what === 'cli') {
    const dir = mkdtempSync(join(tmpdir(), 'sp-h-'));
    const out = join(dir, 'r.jsonl');
    const t0 = performance.now();
    execFileSync(process.execPath, [join(root, 'dist/cli/main.js'), 'run', a, '--workers', '2', '--quiet', '-o', out, ...(rest.length ? rest : ['--local'])], { stdio: ['ignore', 'ignore', 'pipe'] });
    const seconds = (performance.now() - t0) / 1000;
    // The ideal makespan from what the commands took here: their total over 2 workers, or the longest.
    const recs = readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('{"index"') || (l.startsWith('{') && l.includes('"durationMs"')));
    let total = 0;
    let longest = 0;
    let first = Infinity;
    let last = 0;
    for (const l of recs) {
      const r = JSON.parse(l);
      const ms = r.durationMs ?? 0;
      total += ms;
      longest = Math.max(longest, ms);
      first = Math.min(first, r.started);
      last = Math.max(last, r.ended);
    }
    rmSync(dir, { recursive: true, force: true });
    // makespan: first task's start to last task's end (the scheduling's share; the process's own start-up is W4's).
    return { seconds, makespan: (last - first) / 1000, ideal: Math.max(total / 2, longest) / 1000, records: recs.length };
  }
  if (what === 'parallel') {
    // GNU parallel -j2 over the same file, its makespan from its own --joblog (Starttime, JobRuntime per job).
    const dir = mkdtempSync(join(tmpdir(), 'sp-hp-'));
    const log = join(dir, 'joblog');
    const t0 = performance.now();
    execFileSync('parallel', ['-j2', '--joblog', log, '--arg-file', a], { stdio: ['ignore', 'ignore', 'pipe'] });
    const seconds = (performance.now() - t0) / 1000;
    let first = Infinity;
    let last = 0;
    for (const l of readFileSync(log, 'utf8').split('\n').slice(1)) {
      const f = l.split('\t');
      if (f.length < 4) continue;
      const start = Number(f[2]);
      const run = Number(f[3]);
      first = Math.min(first, start);
      last = Math.max(last, start + run);
    }
    rmSync(dir, { recursive: true, force: true });
    return { seconds, makespan: last - first };
  }
  if (what === 'map') {
    const { Pool } = await import(join(root, 'dist/index.js'));
    const items = Array.from({ length: 500 }, (_, i) => (i % 50 === 17 ? 500 : 1));
    const pool = await Pool.open({ module: join(root, 'bench/tasks.mjs'), workers: 2, log: false });
    try {
      // As before Pool.open resolved at the first ready worker: both workers up before the clock starts.
      await warmAllWorkers(pool);
      const input = a === 'gen' ? (function* () { yield* items; })() : items;
      const t0 = performance.now();
      const out = a === 'gen' ? await (async () => { const o = []; for await (const v of pool.imap('sleepMs', input)) o.push(v); return o; })() : await pool.map('sleepMs', input);
      const seconds = (performance.now() - t0) / 1000;
      if (out.length !== items.length || out.some((v, i) => v !== items[i])) throw new Error('wrong results');
      const total = items.reduce((s, x) => s + x, 0);
      return { seconds, ideal: Math.max(total / 2, 500) / 1000 };
    } finally {
      await pool.close();
    }
  }
  throw new Error(`unknown mode ${what}`);
});
