// Python task modules on the real Slurm cluster: agents started with srun on 3 nodes, each running
// Python interpreters, with the msgpack package and with the built-in codec; and `slurmpool map` there.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterOrSkip, readOut, sbatch, waitJob } from './helpers/slurm.js';
import { PY_FIXTURES, pythonWithMsgpack } from './helpers/python.js';

const root = resolve(import.meta.dirname, '..');
const cluster = clusterOrSkip();

describe.skipIf(cluster.skip)(`Python tasks under Slurm ${cluster.why}`, () => {
  it('map, a crash, shared bytes and the initializer on 3 nodes with both codecs; slurmpool map -o and --resume', async () => {
    const python = pythonWithMsgpack();
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-py-sb-'));
    const out = join(dir, 'out.txt');
    const job = join(dir, 'job.mjs');
    const module = join(PY_FIXTURES, 'tasks.py');
    writeFileSync(
      job,
      `import { Pool } from ${JSON.stringify(join(root, 'dist/index.js'))};\n` +
        `for (const codec of ['msgpack', 'builtin']) {\n` +
        `  const pool = await Pool.open({ module: ${JSON.stringify(module)}, python: ${JSON.stringify(python)}, taskEnv: { SLURMPOOL_PY_CODEC: codec }, initializer: 'init', initArgs: ['sb', 3], log: false });\n` +
        `  try {\n` +
        `    const xs = Array.from({ length: 300 }, (_, i) => i);\n` +
        `    const squares = await pool.map('square', xs, { chunksize: 1 });\n` +
        `    const nodes = new Set();\n` +
        `    for await (const r of pool.imapRecords('pid', xs, { chunksize: 1 })) nodes.add(r.node);\n` +
        `    const seg = [];\n` +
        `    for await (const r of pool.imapRecords('segfault_on', [0, 1, 2, 3], { chunksize: 4 })) seg[r.index] = r.ok;\n` +
        `    const ref = await pool.share(new Float64Array([1, 2, 3]));\n` +
        `    const sums = await pool.starmap('shared_sum', xs.slice(0, 30).map((i) => [ref, i]), { chunksize: 1 });\n` +
        `    console.log(JSON.stringify({ codec, used: (await pool.map('codec', [0]))[0], mode: pool.mode, workers: pool.workers, ok: squares.every((v, i) => v === i * i), nodes: [...nodes].sort(), seg, sums: sums.every((v, i) => v === 6 * i), init: await pool.map('initialized', [0]) }));\n` +
        `  } finally {\n` +
        `    await pool.close();\n` +
        `  }\n` +
        `}\n`,
    );
    const input = join(dir, 'params.jsonl');
    writeFileSync(input, [0, 1, 2, 3, 4, 5, 6, 7].join('\n') + '\n');
    const marker = join(dir, 'marker');
    writeFileSync(marker, '');
    const results = join(dir, 'results.jsonl');
    const cliPath = join(root, 'dist/cli/main.js');
    const script = join(dir, 'job.sh');
    writeFileSync(
      script,
      `#!/bin/bash\nset -uo pipefail\n` +
        `${process.execPath} ${job} || exit 1\n` +
        `export SLURMPOOL_PYTHON=${python} MARKER=${marker}\n` +
        `${process.execPath} ${cliPath} map ${module} fail_if_marked --input ${input} -o ${results} --quiet; echo "first=$?"\n` +
        `rm -f ${marker}\n` +
        `${process.execPath} ${cliPath} map ${module} fail_if_marked --input ${input} -o ${results} --resume --quiet; echo "second=$?"\n`,
    );
    const id = sbatch(['-N3', `--chdir=${root}`, `--output=${out}`, '--time=00:05:00', script]);
    const end = await waitJob(id, 150_000);
    const text = readOut(out);
    expect(end.state, text).toBe('COMPLETED');
    const lines = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.codec), text).toEqual(['msgpack', 'builtin']);
    for (const l of lines) {
      expect(l.used).toBe(l.codec);
      expect(l.mode).toBe('slurm');
      expect(l.ok).toBe(true);
      expect(l.nodes).toEqual(['n1', 'n2', 'n3']);
      expect(l.seg).toEqual([true, true, false, true]);
      expect(l.sums).toBe(true);
      expect(l.init).toEqual([['sb', 3, 0]]);
    }
    expect(text).toMatch(/first=[1-9]/);
    expect(text).toContain('second=0');
    const recs = readFileSync(results, 'utf8').split('\n').filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as { index: number; ok: boolean; value: number; node: string });
    const final = new Map(recs.map((r) => [r.index, r]));
    expect([...final.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...final.values()].every((r) => r.ok)).toBe(true);
    expect(final.get(3)!.value).toBe(30);
    expect(recs.filter((r) => r.index !== 3).length).toBe(7); // only the failed task ran again
  });
});
