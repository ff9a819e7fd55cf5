// Pool.open resolves once one worker has started; the others go on starting and take tasks when ready.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';

const module = new URL('./fixtures/staggered-start.mjs', import.meta.url);
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'sp-start-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('worker start', () => {
  it('open and the first results do not wait for every worker; a worker that starts later takes tasks too', async () => {
    const dir = tempDir();
    await using pool = await Pool.open({ module, workers: 2, initializer: 'init', initArgs: [dir], log: false });
    // The second worker is still in its initializer (it waits for the release file): only the first answers.
    const before = await pool.map<{ role: string; threadId: number }>('whoami', Array.from({ length: 20 }, (_, i) => i), { chunksize: 1 });
    expect(new Set(before.map((r) => r.role))).toEqual(new Set(['first']));
    expect(new Set(before.map((r) => r.threadId)).size).toBe(1);
    writeFileSync(join(dir, 'release'), '');
    // Once released, the second worker runs tasks as well (bounded: 200 rounds).
    const seen = new Set<number>(before.map((r) => r.threadId));
    for (let i = 0; i < 200 && seen.size < 2; i++) {
      for (const r of await pool.map<{ threadId: number }>('whoami', [1, 2, 3, 4], { chunksize: 1 })) seen.add(r.threadId);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen.size).toBe(2);
  });

  it('a worker whose start fails after another started ends the pool with its error, not silently', async () => {
    const dir = tempDir();
    const pool = await Pool.open({ module, workers: 2, initializer: 'init', initArgs: [dir], log: false });
    try {
      expect((await pool.map<{ role: string }>('whoami', [1]))[0]!.role).toBe('first');
      writeFileSync(join(dir, 'fail'), '');
      // The node reports the failed start: calls made from then on fail, naming the error (bounded: 200 rounds).
      let err: unknown = null;
      for (let i = 0; i < 200 && err === null; i++) {
        err = await pool.map('whoami', [1, 2]).then(() => null, (e: unknown) => e);
        if (err === null) await new Promise((r) => setTimeout(r, 10));
      }
      expect(String(err)).toContain('this worker cannot start (test fixture)');
    } finally {
      await pool.terminate();
    }
  });

  it('a task module that fails to load in every worker still fails open, naming the error', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fail'), '');
    writeFileSync(join(dir, 'first'), '');
    const err = await Pool.open({ module, workers: 2, initializer: 'init', initArgs: [dir], log: false }).then(() => null, (e: unknown) => e);
    expect(String(err)).toContain('this worker cannot start (test fixture)');
  });
});
