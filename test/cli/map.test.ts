// slurmpool map, as a user runs it: --input, --range, stdin, --star; bad input refused before any work.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, cli, exactlyOnce, FIXTURES, records, summaryOf, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());
const TASKS = join(FIXTURES, 'tasks.mjs');

describe('slurmpool map', () => {
  it('applies an export to every line of --input and writes a record per item', async () => {
    const input = t.write('items.jsonl', '1\n2\n\n3\n4\n');
    const out = t.path('map.jsonl');
    const r = await cli(['map', TASKS, 'failOn3', '--input', input, '--output', out]);
    expect(r.exitCode).toBe(1);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(exactlyOnce(recs, 4)).toBe(true);
    expect(recs.map((x) => x.value ?? null)).toEqual([1, 2, null, 4]);
    expect(recs[2]).toMatchObject({ ok: false, error: { name: 'RangeError', message: 'bad item 3' } });
    expect(String((recs[2]!.error as { stack: string }).stack)).toContain('tasks.mjs');
    // Named by the line of --input (blank lines count), as it happens and in the summary.
    expect(String(r.stderr)).toMatch(/line 4 failed on \S+: bad item 3\n/);
    expect(String(r.stderr)).toMatch(/failed lines: 4\n/);
  });

  it('--retries runs an item again after it threw; the record counts the attempts', async () => {
    const input = t.write('retry.jsonl', '1\n2\n');
    const out = t.path('retry.jsonl.out');
    const r = await cli(['map', join(FIXTURES, 'retry-tasks.mjs'), 'failOnce', '--input', input, '--retries', '1', '-o', out, '--emulate', '2x1'], { env: { ...cleanEnv(), MARKERS: t.dir } });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(records(out).sort((a, b) => a.index - b.index).map((x) => [x.value, x.attempts])).toEqual([[1, 2], [2, 2]]);
  });

  it('writes records to stdout without --output, from --range or standard input', async () => {
    const range = await cli(['map', TASKS, 'square', '--range', '0:10:3']);
    expect(range.exitCode).toBe(0);
    const recs = records(String(range.stdout), true).sort((a, b) => a.index - b.index);
    expect(recs.map((x) => x.value)).toEqual([0, 9, 36, 81]);
    const stdin = await cli(['map', TASKS, 'add', '--star', '--json'], { input: '[1,2]\n[3,4]\n' });
    expect(stdin.exitCode).toBe(0);
    expect(records(String(stdin.stdout), true).map((x) => x.value).sort()).toEqual([3, 7]);
    expect(summaryOf(String(stdin.stderr))).toMatchObject({ command: 'map', succeeded: 2 });
  });

  it('runs on emulated nodes', async () => {
    const out = t.path('emu.jsonl');
    const r = await cli(['map', TASKS, 'where', '--range', '0:8', '--emulate', '2x1', '--chunksize', '1', '-o', out, '-q']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(exactlyOnce(recs, 8)).toBe(true);
    for (const x of recs) expect((x.value as { node: string }).node).toBe(x.node);
  });

  it('refuses bad input with exit 2, naming the file and line, and writes no results file', async () => {
    const out = t.path('never.jsonl');
    const bad = await cli(['map', TASKS, 'square', '--input', t.write('bad.jsonl', '1\n2\n{"a":\n4\n'), '-o', out]);
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toMatch(/bad\.jsonl line 3 is not JSON/);
    const unknown = await cli(['map', TASKS, 'cube', '--range', '0:3', '-o', out]);
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr)).toMatch(/has no export named 'cube' \(its function exports: add, failOn3, slow, square, where\)/);
    const notFn = await cli(['map', TASKS, 'notAFunction', '--range', '0:3', '-o', out]);
    expect(notFn.exitCode).toBe(2);
    expect(String(notFn.stderr)).toMatch(/export 'notAFunction' .* is not a function \(it is number\)/);
    const noModule = await cli(['map', t.path('missing.mjs'), 'f', '--range', '0:3', '-o', out]);
    expect(noModule.exitCode).toBe(2);
    expect(String(noModule.stderr)).toMatch(/missing\.mjs.* does not exist/);
    const star = await cli(['map', TASKS, 'add', '--star', '--input', t.write('star.jsonl', '[1,2]\n3\n'), '-o', out]);
    expect(star.exitCode).toBe(2);
    expect(String(star.stderr)).toMatch(/star\.jsonl line 2 is not an array/);
    const range = await cli(['map', TASKS, 'square', '--range', '5:5', '-o', out]);
    expect(range.exitCode).toBe(2);
    expect(String(range.stderr)).toMatch(/--range "5:5" is empty/);
    const empty = await cli(['map', TASKS, 'square', '--input', t.write('empty.jsonl', ''), '-o', out]);
    expect(empty.exitCode).toBe(2);
    expect(String(empty.stderr)).toMatch(/empty\.jsonl has no items/);
    expect(existsSync(out)).toBe(false);
  });
});
