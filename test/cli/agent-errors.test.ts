// Errors outside a task's body fail that item with a clear error and never kill the worker thread.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, exactlyOnce, FIXTURES, records, tmp, tmpfsForFile } from './helpers.js';

const t = tmp();
afterAll(() => t.done());
const BAD = join(FIXTURES, 'bad-results.mjs');

describe('results that cannot be encoded', () => {
  for (const [name, extra] of [
    ['local', []],
    ['emulation', ['--emulate', '2x1']],
  ] as const) {
    it(`map of an export returning a circular object over --range 0:40 (${name}): exactly the bad items fail, saying why; exit 1`, async () => {
      const out = t.path(`circ-${name}.jsonl`);
      const r = await cli(['map', BAD, 'circularEvery7', '--range', '0:40', '--workers', '2', '-o', out, ...extra]);
      expect(r.exitCode, String(r.stderr)).toBe(1);
      const recs = records(out);
      expect(exactlyOnce(recs, 40)).toBe(true);
      const bad = recs.filter((x) => !x.ok).map((x) => x.index).sort((a, b) => a - b);
      expect(bad).toEqual([3, 10, 17, 24, 31, 38]);
      for (const x of recs) {
        expect(x.attempts).toBe(1);
        if (x.ok) expect(x.value).toBe(x.index * x.index);
        else {
          expect(x.error).toMatchObject({
            name: 'ResultNotEncodable',
            message: `item ${x.index}: the task's result (Object) could not be encoded to send back: the result.self refers back to the result: a circular structure`,
          });
        }
      }
      // No worker died for it: nothing was retried.
      expect(String(r.stderr)).not.toMatch(/died|retrying/);
      expect(String(r.stderr)).toContain('failed indices: 3,10,17,24,31,38');
    });
  }

  it('a Symbol result fails its item naming the type', async () => {
    const out = t.path('sym.jsonl');
    const r = await cli(['map', BAD, 'symbolEvery10', '--range', '0:20', '-o', out]);
    expect(r.exitCode).toBe(1);
    const failed = records(out).filter((x) => !x.ok).sort((a, b) => a.index - b.index);
    expect(failed.map((x) => [x.index, (x.error as { message: string }).message])).toEqual(
      [5, 15].map((i) => [i, `item ${i}: the task's result (symbol) could not be encoded to send back: the result is a Symbol (Symbol(s${i}))`]),
    );
  });
});

describe('a promise a task rejects after it returned', () => {
  it('is logged naming the task that started it; the next task of that worker is not failed or retried', async () => {
    const out = t.path('late.jsonl');
    const r = await cli(['map', BAD, 'lateReject', '--range', '0:10', '--workers', '1', '--chunksize', '1', '-o', out]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(exactlyOnce(recs, 10)).toBe(true);
    for (const x of recs) expect(x).toMatchObject({ ok: true, value: x.index, attempts: 1 });
    expect(String(r.stderr)).toContain(
      "worker 0: a promise rejected with nobody waiting for it (started by 'lateReject' on item 2; no task is failed for it): Error: late failure started by item 2",
    );
    expect(String(r.stderr)).not.toMatch(/died|retrying/);
  });
});

const disk = tmpfsForFile('slurmpool-logfull-', 'size=48k');

describe.skipIf(!disk.dir)(`a --log-dir that fills up ${disk.why}`, () => {
  it('fails each task whose output could not be written with ENOSPC and the file, keeps its head, runs the rest', async () => {
    // 12 tasks of 20 KB stdout each: the 48 KiB disk holds two files.
    const tasks = t.write('big.txt', Array.from({ length: 12 }, (_, i) => `head -c 20000 /dev/zero | tr '\\0' ${String.fromCharCode(97 + i)}`).join('\n') + '\n');
    const out = t.path('big.jsonl');
    const r = await cli(['run', tasks, '-o', out, '--log-dir', disk.dir!, '--workers', '1']);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const recs = records(out);
    expect(exactlyOnce(recs, 12)).toBe(true);
    const ok = recs.filter((x) => x.ok);
    const bad = recs.filter((x) => !x.ok);
    expect(ok.length).toBeGreaterThan(0);
    expect(bad.length).toBeGreaterThan(0);
    for (const x of ok) expect(x.stdoutFile).toBe(join(disk.dir!, '0', `${x.index}.out`));
    for (const x of bad) {
      expect(x.exitCode).toBe(0);
      expect(x.error).toMatchObject({ name: 'OutputError', code: 'ENOSPC' });
      expect((x.error as { message: string }).message).toContain(`cannot write its stdout (20000 bytes) to ${join(disk.dir!, '0', `${x.index}.out`)}: ENOSPC: no space left on device`);
      expect(String(x.stdout).slice(0, 100), JSON.stringify(x).slice(0, 600)).toBe(String.fromCharCode(97 + x.index).repeat(100));
      expect(String(x.stdout).startsWith(String.fromCharCode(97 + x.index).repeat(4096))).toBe(true);
      expect(x.stdout).toContain('more bytes lost');
    }
    // No half-written file of a failed task is left behind.
    expect(readdirSync(join(disk.dir!, '0')).sort()).toEqual(ok.map((x) => `${x.index}.out`).sort());
    expect(String(r.stderr)).not.toMatch(/died|retrying/);
  });
});
