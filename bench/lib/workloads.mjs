// The built-in sections W1..W5: which children to run, interleaved, and how their figures form rows.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Default repetitions per workload (overridden by --reps N). */
export const DEFAULT_REPS = { W1c1: 3, W1auto: 5, W1apply: 3, W2: 3, W3: 3, W4: 7, W5: 3 };

/** Per-repetition time bounds, in ms. */
const TIMEOUT = { W1c1: 60_000, W1auto: 30_000, W1apply: 90_000, W2: 45_000, W3: 60_000, W4: 20_000, W5: 90_000 };

/** A table row from a measured record: { key, impl, role, values, errors, skipped, na, planned, note, comparable }. */
export function row(rec, meta) {
  return {
    values: rec?.values ?? [],
    errors: rec?.errors ?? [],
    skipped: rec?.skipped,
    planned: rec?.planned ?? 0,
    runs: rec?.runs ?? 0,
    results: rec?.results ?? [],
    comparable: true,
    ...meta,
    note: [meta.note, rec?.note].filter(Boolean).join('; ') || undefined,
  };
}

function peerRuns(ctx, workload, args, value, timeoutMs) {
  const runs = {};
  runs.piscina = {
    key: 'piscina',
    cmd: ctx.node,
    args: [join(ctx.benchDir, 'peers/piscina.mjs'), ...args],
    timeoutMs,
    value,
    skip: ctx.piscinaVersion ? undefined : 'piscina not installed',
  };
  runs.mp = {
    key: 'mp',
    cmd: ctx.python ?? 'python3',
    args: [join(ctx.benchDir, 'peers/mp_pool.py'), ...args],
    timeoutMs,
    value,
    skip: ctx.python ? undefined : 'python3 not found',
  };
  return runs;
}

function spRun(ctx, key, args, value, timeoutMs) {
  return { key, cmd: ctx.node, args: [join(ctx.benchDir, 'peers/slurmpool.mjs'), ...args], timeoutMs, value };
}

const rate = (count) => (r) => count / r.json.seconds;

/** W1: identity over 0..n-1, chunksize 1 and automatic chunking; tasks/s of the map call. */
async function w1(ctx) {
  const n = ctx.params.w1.n;
  const groups = [];
  for (const [variant, title, target] of [
    ['W1c1', 'W1 identity, chunksize 1', { kind: 'bestPeer', min: 2 }],
    ['W1auto', 'W1 identity, automatic', { kind: 'bestPeer', min: 1.5 }],
  ]) {
    const t = TIMEOUT[variant];
    const sp = spRun(ctx, 'slurmpool', [variant], rate(n), t);
    const peers = peerRuns(ctx, variant, [variant], rate(n), t);
    ctx.log(`${title}`);
    const m = await ctx.measure({ unit: 'tasks/s', reps: ctx.reps ?? DEFAULT_REPS[variant], blocks: [[sp], [peers.piscina], [peers.mp]] });
    groups.push({
      id: 'W1',
      name: variant,
      title,
      unit: 'tasks/s',
      better: 'higher',
      target,
      rows: [
        row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }),
        row(m.get('piscina'), {
          key: 'piscina',
          impl: `piscina ${ctx.piscinaVersion ?? ''}`.trim(),
          role: 'peer',
          note: variant === 'W1auto' ? `chunked by hand: ${4 * ctx.params.workers} tasks` : undefined,
        }),
        row(m.get('mp'), { key: 'mp', impl: 'multiprocessing (fork)', role: 'peer' }),
      ],
    });
  }
  // The same items as 200,000 concurrent apply() calls (Promise.all), beside piscina's run() per item:
  // the loop-of-tasks pattern, shown without a target (the W1 targets are map's).
  const t = TIMEOUT.W1apply;
  ctx.log('W1 identity, one apply() per item');
  const m = await ctx.measure({
    unit: 'tasks/s',
    reps: ctx.reps ?? DEFAULT_REPS.W1apply,
    blocks: [[spRun(ctx, 'slurmpool', ['W1apply'], rate(n), t)], [peerRuns(ctx, 'W1c1', ['W1c1'], rate(n), t).piscina]],
  });
  groups.push({
    id: 'W1',
    name: 'W1apply',
    title: 'W1 identity, one apply() per item, all at once',
    unit: 'tasks/s',
    better: 'higher',
    target: null,
    rows: [
      row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool apply()', role: 'subject' }),
      row(m.get('piscina'), { key: 'piscina', impl: `piscina ${ctx.piscinaVersion ?? ''} run()`.trim(), role: 'peer' }),
    ],
  });
  return groups;
}

/** W2: primes by trial division over 64 subranges, 1 and 2 workers and no pool; seconds and T1/T2. */
async function w2(ctx) {
  const t = TIMEOUT.W2;
  const secs = (r) => r.json.seconds;
  const sp1 = spRun(ctx, 'slurmpool/1', ['W2', '1'], secs, t);
  const sp2 = spRun(ctx, 'slurmpool/2', ['W2', '2'], secs, t);
  const p1 = peerRuns(ctx, 'W2', ['W2', '1'], secs, t);
  const p2 = peerRuns(ctx, 'W2', ['W2', '2'], secs, t);
  const rename = (run, key) => ({ ...run, key });
  const serial = { key: 'serial', cmd: ctx.node, args: [join(ctx.benchDir, 'peers/serial.mjs')], timeoutMs: t, value: secs };
  ctx.log('W2 primes');
  const m = await ctx.measure({
    unit: 's',
    better: 'lower',
    reps: ctx.reps ?? DEFAULT_REPS.W2,
    blocks: [
      [sp1, sp2],
      [rename(p1.piscina, 'piscina/1'), rename(p2.piscina, 'piscina/2')],
      [rename(p1.mp, 'mp/1'), rename(p2.mp, 'mp/2')],
      [serial],
    ],
  });
  const py = ctx.params.w2.python;
  const pyNote = `python range [${py.lo.toLocaleString('en-US')}, ${py.hi.toLocaleString('en-US')}): not comparable`;
  const pis = `piscina ${ctx.piscinaVersion ?? ''}`.trim();
  const timeRows = (w) => [
    row(m.get(`slurmpool/${w}`), { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }),
    row(m.get(`piscina/${w}`), { key: 'piscina', impl: pis, role: 'peer' }),
    row(m.get(`mp/${w}`), { key: 'mp', impl: 'multiprocessing (fork)', role: 'peer', comparable: false, note: pyNote }),
  ];
  const speedup = (key, meta) => {
    const a = m.get(`${key}/1`);
    const b = m.get(`${key}/2`);
    const values = [];
    for (let i = 0; i < Math.min(a.results.length, b.results.length); i++) {
      const t1 = a.results[i].value;
      const t2 = b.results[i].value;
      if (Number.isFinite(t1) && Number.isFinite(t2)) values.push(t1 / t2);
    }
    return row(
      {
        values,
        errors: [...a.errors, ...b.errors],
        skipped: a.skipped,
        planned: Math.min(a.planned, b.planned),
        runs: Math.min(a.runs, b.runs),
        results: [],
      },
      meta,
    );
  };
  const expected = ctx.params.w2.js.expected_primes.toLocaleString('en-US');
  return [
    {
      id: 'W2',
      name: 'W2t1',
      title: `W2 primes, 1 worker`,
      unit: 's',
      better: 'lower',
      target: null,
      rows: [
        ...timeRows(1),
        row(m.get('serial'), { key: 'serial', impl: 'same loop, no pool', role: 'baseline', note: `${expected} primes checked` }),
      ],
    },
    { id: 'W2', name: 'W2t2', title: 'W2 primes, 2 workers', unit: 's', better: 'lower', target: null, rows: timeRows(2) },
    {
      id: 'W2',
      name: 'W2speedup',
      title: 'W2 speedup T1/T2',
      unit: '×',
      better: 'higher',
      target: { kind: 'absolute', min: 1.9 },
      rows: [
        speedup('slurmpool', { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }),
        speedup('piscina', { key: 'piscina', impl: pis, role: 'peer' }),
        speedup('mp', { key: 'mp', impl: 'multiprocessing (fork)', role: 'peer' }),
      ],
    },
  ];
}

/** W3: 2,000 tasks of a 1 MiB buffer returning its length, chunksize 1; MB/s of argument data. */
async function w3(ctx) {
  const { tasks, bytes } = ctx.params.w3;
  const t = TIMEOUT.W3;
  const mbps = (r) => (tasks * bytes) / 1e6 / r.json.seconds;
  const copy = spRun(ctx, 'slurmpool', ['W3copy'], mbps, t);
  const peers = peerRuns(ctx, 'W3', ['W3'], mbps, t);
  ctx.log('W3 1 MiB buffers');
  const m = await ctx.measure({ unit: 'MB/s', reps: ctx.reps ?? DEFAULT_REPS.W3, blocks: [[copy], [peers.piscina], [peers.mp]] });
  return [
    {
      id: 'W3',
      name: 'W3',
      title: 'W3 1 MiB buffers, chunksize 1',
      unit: 'MB/s',
      better: 'higher',
      target: { kind: 'peer', peer: 'piscina', min: 2 },
      rows: [
        row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool', role: 'subject', note: 'one copy, moved to the worker' }),
        row(m.get('piscina'), { key: 'piscina', impl: `piscina ${ctx.piscinaVersion ?? ''}`.trim(), role: 'peer', note: 'structured clone copies' }),
        row(m.get('mp'), { key: 'mp', impl: 'multiprocessing (fork)', role: 'peer', note: 'pickled' }),
      ],
    },
  ];
}

/** W4: whole-process wall time of open 2 workers, one trivial task, close, exit. */
async function w4(ctx) {
  const t = TIMEOUT.W4;
  const wall = (r) => r.wallSeconds;
  const peer = (key, script, skip, cmd = ctx.node) => ({ key, cmd, args: [join(ctx.benchDir, 'peers', script)], timeoutMs: t, value: wall, skip });
  const blocks = [
    [{ key: 'node -e 0', cmd: ctx.node, args: ['-e', '0'], timeoutMs: t, value: wall }],
    [peer('slurmpool', 'w4-slurmpool.mjs')],
    [peer('piscina', 'w4-piscina.mjs', ctx.piscinaVersion ? undefined : 'piscina not installed')],
    [peer('mp', 'w4_mp.py', ctx.python ? undefined : 'python3 not found', ctx.python ?? 'python3')],
    [{ key: 'python -c pass', cmd: ctx.python ?? 'python3', args: ['-c', 'pass'], timeoutMs: t, value: wall, skip: ctx.python ? undefined : 'python3 not found' }],
    [peer('floor', 'w4-floor.mjs')],
  ];
  ctx.log('W4 whole process');
  const m = await ctx.measure({ unit: 's', better: 'lower', reps: ctx.reps ?? DEFAULT_REPS.W4, blocks });
  return [
    {
      id: 'W4',
      name: 'W4',
      title: 'W4 open, 1 task, close, exit',
      unit: 's',
      better: 'lower',
      target: { kind: 'baseline', baseline: 'node -e 0', max: 1.6 },
      rows: [
        row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }),
        row(m.get('node -e 0'), { key: 'node -e 0', impl: 'node -e 0', role: 'baseline' }),
        row(m.get('piscina'), { key: 'piscina', impl: `piscina ${ctx.piscinaVersion ?? ''}`.trim(), role: 'peer' }),
        row(m.get('mp'), { key: 'mp', impl: 'multiprocessing (fork)', role: 'peer' }),
        row(m.get('python -c pass'), { key: 'python -c pass', impl: 'python3 -c pass', role: 'baseline' }),
        row(m.get('floor'), { key: 'floor', impl: 'node + 2 empty worker threads', role: 'baseline', note: 'what any worker-thread pool needs at least' }),
      ],
    },
    // Issue 19's targets for the same processes: no slower than piscina, within 1.15× of the floor.
    {
      id: 'W4',
      name: 'W4p',
      title: 'W4 against piscina',
      unit: 's',
      better: 'lower',
      target: { kind: 'peer', peer: 'piscina', min: 1 },
      rows: [row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }), row(m.get('piscina'), { key: 'piscina', impl: `piscina ${ctx.piscinaVersion ?? ''}`.trim(), role: 'peer' })],
    },
    {
      id: 'W4',
      name: 'W4f',
      title: 'W4 against the floor',
      unit: 's',
      better: 'lower',
      target: { kind: 'baseline', baseline: 'floor', max: 1.15 },
      rows: [row(m.get('slurmpool'), { key: 'slurmpool', impl: 'slurmpool', role: 'subject' }), row(m.get('floor'), { key: 'floor', impl: 'node + 2 empty worker threads', role: 'baseline' })],
    },
  ];
}

/** W5: 2,000 runs of `true`, 2 at a time; commands/s of the whole process. */
async function w5(ctx) {
  const t = TIMEOUT.W5;
  const n = ctx.params.w5.commands;
  const line = ctx.params.w5.argv.join(' ');
  const file = join(ctx.tmpdir, 'w5-tasks.txt');
  writeFileSync(file, `${line}\n`.repeat(n));
  // GNU parallel manages about 30 commands/s on a 2-core machine: 2,000 would take a minute, so by default
  // it gets one repetition of a quarter of the commands (its per-command cost dominates its startup).
  const nPar = ctx.full ? n : Math.ceil(n / 4);
  const filePar = join(ctx.tmpdir, 'w5-tasks-parallel.txt');
  writeFileSync(filePar, `${line}\n`.repeat(nPar));
  const per = (count) => (r) => count / r.wallSeconds;
  const cli = join(ctx.root, 'dist/cli/main.js');
  const cliMissing = !existsSync(cli);
  const runs = [
    [{ key: 'slurmpool', cmd: ctx.node, args: [cli, 'run', file, '--workers', '2', '--quiet'], timeoutMs: t, value: per(n), stopOnError: true, skip: cliMissing ? 'cli' : undefined }],
    // The same commands from a template (`true {}` ::: 1 … n: the argument appended), so that templates keep W5's rate.
    [{ key: 'slurmpool-template', cmd: ctx.node, args: [cli, 'run', '--workers', '2', '--quiet', line, ':::', ...Array.from({ length: n }, (_, i) => String(i + 1))], timeoutMs: t, value: per(n), stopOnError: true, skip: cliMissing ? 'cli' : undefined }],
    [{ key: 'xargs', cmd: 'xargs', args: ['-P2', '-d', '\\n', '-n1', '-a', file, 'sh', '-c'], timeoutMs: t, value: per(n), skip: ctx.xargs ? undefined : 'xargs not found' }],
    [{ key: 'parallel', cmd: 'parallel', args: ['-j2', '--will-cite'], stdinFile: filePar, timeoutMs: ctx.full ? 4 * t : t, value: per(nPar), reps: ctx.full ? undefined : 1, skip: ctx.parallelVersion ? undefined : 'GNU parallel not installed' }],
    [{ key: 'mp', cmd: ctx.python ?? 'python3', args: [join(ctx.benchDir, 'peers/mp_pool.py'), 'W5'], timeoutMs: t, value: per(n), skip: ctx.python ? undefined : 'python3 not found' }],
  ];
  ctx.log('W5 shell commands');
  const m = await ctx.measure({ unit: 'commands/s', reps: ctx.reps ?? DEFAULT_REPS.W5, blocks: runs });
  const sp = m.get('slurmpool');
  const spRow = row(sp, { key: 'slurmpool', impl: 'slurmpool run (CLI)', role: 'subject' });
  const tplRow = row(m.get('slurmpool-template'), { key: 'slurmpool-template', impl: `slurmpool run '${line}' ::: 1 … ${n} (template)`, role: 'subject' });
  for (const r of [spRow, tplRow]) {
    if (cliMissing) {
      r.skipped = undefined;
      r.na = 'not implemented';
    } else if (r.values.length === 0 && r.errors.length) {
      r.na = `failed: ${r.errors[0]}`;
    }
  }
  return [
    {
      id: 'W5',
      name: 'W5',
      title: `W5 ${n.toLocaleString('en-US')} × \`${line}\`, 2 at a time`,
      unit: 'commands/s',
      better: 'higher',
      target: null,
      rows: [
        spRow,
        tplRow,
        row(m.get('xargs'), { key: 'xargs', impl: 'xargs -P2 (sh -c each)', role: 'peer' }),
        row(m.get('parallel'), {
          key: 'parallel',
          impl: `GNU parallel -j2`,
          role: 'peer',
          note: ctx.full ? undefined : `${nPar.toLocaleString('en-US')} commands, 1 repetition (--full: all)`,
        }),
        row(m.get('mp'), { key: 'mp', impl: 'multiprocessing + subprocess.run', role: 'peer' }),
      ],
    },
  ];
}

/** The built-in sections, in order. */
export const SECTIONS = [
  { id: 'W1', run: w1 },
  { id: 'W2', run: w2 },
  { id: 'W3', run: w3 },
  { id: 'W4', run: w4 },
  { id: 'W5', run: w5 },
];
