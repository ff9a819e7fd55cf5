#!/usr/bin/env node
// The benchmark: slurmpool and its peers on the same machine in one run, one child process per
// measurement, repetitions interleaved; prints one table with medians, ratios, targets and PASS/MISS.
//
//   node bench/run.mjs [--only W1,W3] [--reps N] [--json FILE] [--full]
//
// Extra sections: every bench/sections/*.mjs exporting `async function run(ctx)` that returns groups
// (see bench/README.md); an optional `export const id = 'W6'` lets --only select it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { measure, median, runChild } from './lib/harness.mjs';
import { evaluate, fmtValue, render } from './lib/report.mjs';
import { DEFAULT_REPS, SECTIONS, row } from './lib/workloads.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);

function parseArgs(argv) {
  const opts = { only: null, reps: null, json: null, full: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--only') opts.only = new Set(String(value()).split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
    else if (flag === '--reps') {
      const v = value();
      opts.reps = Number(v);
      if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error(`--reps must be a positive integer, got ${v}`);
    } else if (flag === '--json') opts.json = value();
    else if (flag === '--full') opts.full = true;
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: node bench/run.mjs [--only W1,W3] [--reps N] [--json FILE] [--full]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

function quiet(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

/** What this machine and its tools are, printed above the table and kept in --json. */
function machine() {
  // The real interpreter, not a pyenv shim: a shim's own startup would count in W4 and W5.
  const python = quiet('python3', ['-c', 'import sys; print(sys.executable)']);
  const pythonVersion = python ? quiet(python, ['-c', 'import sys; print(sys.version.split()[0])']) : null;
  let piscinaVersion = null;
  try {
    piscinaVersion = JSON.parse(readFileSync(join(root, 'node_modules/piscina/package.json'), 'utf8')).version;
  } catch {
    /* not installed */
  }
  const parallelLine = quiet('parallel', ['--version'])?.split('\n')[0] ?? null;
  const parallelVersion = parallelLine?.startsWith('GNU parallel') ? parallelLine.replace('GNU parallel ', '') : null;
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    python,
    pythonVersion,
    piscinaVersion,
    parallelVersion,
    xargs: quiet('sh', ['-c', 'command -v xargs']),
    slurmpool: quiet('git', ['-C', root, 'describe', '--always', '--dirty']),
    loadavg: loadavg().map((x) => x.toFixed(2)),
  };
}

async function loadExtraSections() {
  const dir = join(benchDir, 'sections');
  if (!existsSync(dir)) return [];
  const out = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort()) {
    try {
      const mod = await import(pathToFileURL(join(dir, f)).href);
      if (typeof mod.run !== 'function') throw new Error('exports no run(ctx)');
      out.push({ id: mod.id ? String(mod.id).toUpperCase() : null, file: f, run: mod.run });
    } catch (err) {
      out.push({ id: null, file: f, loadError: err.message });
    }
  }
  return out;
}

/** A placeholder group for a section that threw: its cell says `error: <message>`. */
function failedGroup(id, err) {
  return {
    id,
    title: `${id} (section failed)`,
    unit: '',
    better: 'higher',
    target: null,
    rows: [row({ errors: [err?.message ?? String(err)] }, { key: 'slurmpool', impl: 'slurmpool', role: 'subject' })],
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = Date.now();
  const params = JSON.parse(readFileSync(join(benchDir, 'params.json'), 'utf8'));
  const m = machine();
  const tmp = mkdtempSync(join(tmpdir(), 'slurmpool-bench-'));
  const log = (msg) => process.stderr.write(`${msg}\n`);

  const head = [
    `slurmpool bench — ${started.toISOString()}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, load ${m.loadavg.join(' ')}`,
    `node ${m.node}; python ${m.pythonVersion ?? 'not found'}${m.python ? ` (${m.python})` : ''}; piscina ${m.piscinaVersion ?? 'not installed'}; GNU parallel ${m.parallelVersion ?? 'not installed'}`,
    `slurmpool ${m.slurmpool ?? '?'}${existsSync(join(root, 'dist/index.js')) ? '' : ' (dist/index.js missing: run npm run build)'}; workers ${params.workers}; reps ${opts.reps ?? Object.entries(DEFAULT_REPS).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ];
  const busy = (when) => {
    const load = loadavg()[0];
    return load > m.cores / 2 ? [`warning: load ${load.toFixed(2)} on ${m.cores} cores ${when}: other work is running, figures are unreliable`] : [];
  };
  head.push(...busy('at the start'));
  process.stdout.write(`${head.join('\n')}\n\n`);

  const ctx = {
    root,
    benchDir,
    params,
    reps: opts.reps,
    full: opts.full,
    only: opts.only,
    tmpdir: tmp,
    node: process.execPath,
    python: m.python,
    pythonVersion: m.pythonVersion,
    piscinaVersion: m.piscinaVersion,
    parallelVersion: m.parallelVersion,
    xargs: m.xargs,
    log,
    median,
    row,
    runChild,
    measure: (spec) => measure({ cwd: root, log, ...spec }),
  };

  const sections = [...SECTIONS, ...(await loadExtraSections())];
  const groups = [];
  for (const s of sections) {
    if (opts.only && !(s.id && opts.only.has(s.id))) continue;
    if (s.loadError) {
      groups.push(failedGroup(s.file, new Error(s.loadError)));
      continue;
    }
    try {
      const out = await s.run(ctx);
      for (const g of out ?? []) groups.push(g);
    } catch (err) {
      log(`section ${s.id ?? s.file} failed: ${err.stack ?? err}`);
      groups.push(failedGroup(s.id ?? s.file, err));
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  for (const g of groups) evaluate(g);

  const seconds = (Date.now() - t0) / 1000;
  const tail = [`total ${seconds.toFixed(0)} s; load now ${loadavg().map((x) => x.toFixed(2)).join(' ')}`, ...busy('at the end')];
  process.stdout.write(`${render(groups)}\n\n${tail.join('\n')}\n`);

  if (opts.json) {
    const raw = {
      started: started.toISOString(),
      seconds,
      machine: m,
      params,
      options: { only: opts.only ? [...opts.only] : null, reps: opts.reps, full: opts.full },
      groups: groups.map((g) => ({
        id: g.id,
        name: g.name,
        title: g.title,
        unit: g.unit,
        better: g.better,
        target: g.target,
        rows: g.rows.map((r) => ({
          key: r.key,
          impl: r.impl,
          role: r.role,
          median: Number.isFinite(r.median) ? r.median : null,
          medianText: fmtValue(r.median, g.unit),
          values: r.values,
          errors: r.errors,
          skipped: r.skipped ?? null,
          na: r.na ?? null,
          note: r.note ?? null,
          vs: r.vs ?? null,
          ratio: r.ratio ?? null,
          against: r.against ?? null,
          pass: r.pass ?? null,
          results: r.results,
        })),
      })),
    };
    writeFileSync(opts.json, `${JSON.stringify(raw, null, 2)}\n`);
    log(`raw figures written to ${opts.json}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(2);
});
