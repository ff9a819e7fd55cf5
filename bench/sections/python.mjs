// Issue 16: Python task modules (one interpreter per worker slot) against multiprocessing.Pool, same
// interpreter, same functions (peers/py_tasks.py), in the same run.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const id = 'P';

/** Sizes: identity at chunksize 1 is slow for both (one message per item), so it maps fewer items. */
const N_C1 = 40_000;
const N_AUTO = 200_000;

/** The interpreter both sides use: one that imports msgpack (Debian's python3-msgpack), else the bench's python3. */
function pickPython(ctx) {
  for (const p of ['/usr/bin/python3', ctx.python].filter(Boolean)) {
    try {
      execFileSync(p, ['-c', 'import msgpack'], { stdio: 'ignore', timeout: 20_000 });
      return { python: p, msgpack: true };
    } catch {
      // no msgpack there
    }
  }
  return { python: ctx.python, msgpack: false };
}

export async function run(ctx) {
  const { python, msgpack } = pickPython(ctx);
  if (!python) return [{ id: 'P', title: 'P Python tasks (no python3 found)', unit: '', better: 'higher', target: null, rows: [] }];
  const sp = join(ctx.benchDir, 'peers/py-slurmpool.mjs');
  const mp = join(ctx.benchDir, 'peers/py_mp.py');
  const rate = (r) => r.json.n / r.json.seconds;
  const secs = (r) => r.json.seconds;
  const wall = (r) => r.wallSeconds;
  const noPkg = msgpack ? undefined : `${python} cannot import msgpack`;
  const reps = ctx.reps ?? 3;
  ctx.log(`P Python tasks (${python}${msgpack ? ', msgpack package' : ', no msgpack package'})`);

  const p1 = await ctx.measure({
    unit: 'tasks/s',
    reps,
    blocks: [
      [{ key: 'c1/msgpack', cmd: ctx.node, args: [sp, 'P1c1', String(N_C1), python, 'msgpack'], timeoutMs: 60_000, value: rate, skip: noPkg }],
      [{ key: 'c1/builtin', cmd: ctx.node, args: [sp, 'P1c1', String(N_C1), python, 'builtin'], timeoutMs: 60_000, value: rate }],
      [{ key: 'c1/mp', cmd: python, args: [mp, 'P1c1', String(N_C1)], timeoutMs: 60_000, value: rate }],
      [{ key: 'auto/msgpack', cmd: ctx.node, args: [sp, 'P1auto', String(N_AUTO), python, 'msgpack'], timeoutMs: 30_000, value: rate, skip: noPkg }],
      [{ key: 'auto/builtin', cmd: ctx.node, args: [sp, 'P1auto', String(N_AUTO), python, 'builtin'], timeoutMs: 30_000, value: rate }],
      [{ key: 'auto/mp', cmd: python, args: [mp, 'P1auto', String(N_AUTO)], timeoutMs: 30_000, value: rate }],
    ],
  });
  // P2's figure is a ratio of two noisy times: each repetition runs 1 and 2 workers back to back (in
  // alternating order) for each side, and the speedup is the median of those pairs' ratios, over more
  // repetitions than the other figures.
  const p2 = await ctx.measure({
    unit: 's',
    better: 'lower',
    reps: ctx.reps ?? 5,
    alternate: true,
    blocks: [
      [
        { key: 'sp/1', cmd: ctx.node, args: [sp, 'P2', '1', python, msgpack ? 'msgpack' : 'builtin'], timeoutMs: 60_000, value: secs },
        { key: 'sp/2', cmd: ctx.node, args: [sp, 'P2', '2', python, msgpack ? 'msgpack' : 'builtin'], timeoutMs: 60_000, value: secs },
      ],
      [
        { key: 'mp/1', cmd: python, args: [mp, 'P2', '1'], timeoutMs: 60_000, value: secs },
        { key: 'mp/2', cmd: python, args: [mp, 'P2', '2'], timeoutMs: 60_000, value: secs },
      ],
    ],
  });
  const p4 = await ctx.measure({
    unit: 's',
    better: 'lower',
    reps: ctx.reps ?? 5,
    blocks: [
      [{ key: 'sp', cmd: ctx.node, args: [sp, 'P4', python, msgpack ? 'msgpack' : 'builtin'], timeoutMs: 20_000, value: wall }],
      [{ key: 'mp', cmd: python, args: [mp, 'P4'], timeoutMs: 20_000, value: wall }],
      [{ key: 'node -e 0', cmd: ctx.node, args: ['-e', '0'], timeoutMs: 20_000, value: wall }],
      [{ key: 'python -c pass', cmd: python, args: ['-c', 'pass'], timeoutMs: 20_000, value: wall }],
    ],
  });

  const speedup = (key) => {
    const a = p2.get(`${key}/1`);
    const b = p2.get(`${key}/2`);
    const values = [];
    for (let i = 0; i < Math.min(a.results.length, b.results.length); i++) {
      const [t1, t2] = [a.results[i].value, b.results[i].value];
      if (Number.isFinite(t1) && Number.isFinite(t2)) values.push(t1 / t2);
    }
    return { values, errors: [...a.errors, ...b.errors], planned: Math.min(a.planned, b.planned), runs: Math.min(a.runs, b.runs), results: [] };
  };
  const mpName = 'multiprocessing.Pool (fork)';
  const codecRows = (prefix, subject) => [
    ctx.row(p1.get(`${prefix}/${subject}`), { key: 'slurmpool', impl: `slurmpool, ${subject} codec`, role: 'subject' }),
    ctx.row(p1.get(`${prefix}/${subject === 'msgpack' ? 'builtin' : 'msgpack'}`), { key: 'other', impl: `slurmpool, ${subject === 'msgpack' ? 'builtin' : 'msgpack'} codec`, role: 'baseline', comparable: false }),
    ctx.row(p1.get(`${prefix}/mp`), { key: 'mp', impl: mpName, role: 'peer' }),
  ];
  const subject = msgpack ? 'msgpack' : 'builtin';
  // Which interpreter both sides ran (the PATH python3 may be a pyenv one without the msgpack package).
  const on = ` (${python}, ${msgpack ? 'with' : 'without'} the msgpack package)`;
  return [
    { id: 'P1', title: `P1 Python identity, chunksize 1, ${N_C1.toLocaleString('en-US')} items, 2 workers${on}`, unit: 'tasks/s', better: 'higher', target: { kind: 'peer', peer: 'mp', min: 0.5 }, rows: codecRows('c1', subject) },
    { id: 'P1', name: 'P1auto', title: `P1 Python identity, automatic chunking, ${N_AUTO.toLocaleString('en-US')} items, 2 workers${on}`, unit: 'tasks/s', better: 'higher', target: { kind: 'peer', peer: 'mp', min: 1 }, rows: codecRows('auto', subject) },
    {
      id: 'P2',
      name: 'P2speedup',
      title: `P2 Python prime counting (64 ranges, chunksize 1), speedup T1/T2${on}`,
      unit: '×',
      better: 'higher',
      target: { kind: 'absolute', min: 1.9 },
      rows: [
        ctx.row(speedup('sp'), { key: 'slurmpool', impl: `slurmpool (${subject} codec)`, role: 'subject', note: pairNote('sp') }),
        ctx.row(speedup('mp'), { key: 'mp', impl: mpName, role: 'peer', note: pairNote('mp') }),
      ],
    },
    {
      id: 'P4',
      title: `P4 Python whole process: start, open 2 workers, 1 task, close, exit${on}`,
      unit: 's',
      better: 'lower',
      target: { kind: 'baseline', baseline: 'mp', max: 1.5 },
      rows: [
        ctx.row(p4.get('sp'), { key: 'slurmpool', impl: 'slurmpool (node + 2 interpreters)', role: 'subject' }),
        ctx.row(p4.get('mp'), { key: 'mp', impl: mpName, role: 'baseline' }),
        ctx.row(p4.get('node -e 0'), { key: 'node -e 0', impl: 'node -e 0', role: 'baseline' }),
        ctx.row(p4.get('python -c pass'), { key: 'python -c pass', impl: `${python} -c pass`, role: 'baseline' }),
      ],
    },
  ];

  /** The speedup is the median of per-repetition T1/T2; the medians of T1 and T2 beside it (their ratio may differ). */
  function pairNote(key) {
    return `median of ${speedup(key).values.length} paired T1/T2; median T1 ${fmt(p2.get(`${key}/1`))} s, T2 ${fmt(p2.get(`${key}/2`))} s`;
  }

  function fmt(rec) {
    const v = ctx.median(rec?.values ?? []);
    return Number.isFinite(v) ? v.toFixed(2) : '?';
  }
}
