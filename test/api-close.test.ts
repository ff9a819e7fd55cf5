// close() and `await using` end whatever the caller did with iterators: never read, read part way, or abandoned by an exception.
import { describe, expect, it } from 'vitest';
import { Pool, PoolClosedError } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function* gen(n: number) {
  for (let i = 0; i < n; i++) yield i;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('close() with iterators nobody reads', () => {
  it('resolves when an imap was never iterated; its results are still there to read after', async () => {
    const pool = await Pool.open({ module: tasks, workers: 2 });
    const it = pool.imap<number>('square', range(50), { chunksize: 1 });
    await pool.close();
    expect(await collect(it)).toEqual(range(50).map((x) => x * x));
  });

  it('resolves when imap and imapUnordered over lazy inputs longer than the read-ahead window were read once', async () => {
    const pool = await Pool.open({ module: tasks, workers: 2 });
    const ordered = pool.imap<number>('identity', gen(500), { chunksize: 1 });
    const unordered = pool.imapUnordered<number>('identity', gen(500), { chunksize: 1 });
    expect((await ordered.next()).value).toBe(0);
    expect((await unordered.next()).done).toBe(false);
    await pool.close();
    expect(await collect(ordered)).toEqual(range(500).slice(1));
    expect((await collect(unordered)).length).toBe(499);
  });

  it('resolves when imapRecords and runCommands were never read', async () => {
    const pool = await Pool.open({ module: tasks, workers: 1 });
    const recs = pool.imapRecords('identity', gen(300), { chunksize: 1 });
    const cmds = pool.runCommands(['true', 'exit 3']);
    await pool.close();
    expect((await collect(recs)).length).toBe(300);
    expect((await collect(cmds)).map((r) => r.ok).sort()).toEqual([false, true]);
  });

  it('resolves when an imap stopped at a failure nobody read', async () => {
    const pool = await Pool.open({ module: tasks, workers: 2 });
    const it = pool.imap('failOn', gen(200), { chunksize: 1 });
    await pool.close();
    await expect(collect(it)).rejects.toThrow('bad item 3');
  });
});

describe('await using after an exception', () => {
  it('abandons an iterator read part way at once, even with a task still running', async () => {
    const block = async () => {
      await using pool = await Pool.open({ module: tasks, workers: 2 });
      const it = pool.imap('sleepThen', [{ ms: 0, v: 1 }, { ms: 600_000, v: 2 }, { ms: 600_000, v: 3 }], { chunksize: 1 });
      expect((await it.next()).value).toBe(1);
      throw new Error('boom');
    };
    await expect(block()).rejects.toThrow('boom');
  });

  it('abandons an iterator never read', async () => {
    const block = async () => {
      await using pool = await Pool.open({ module: tasks, workers: 1 });
      pool.imapUnordered('sleepThen', [{ ms: 600_000, v: 1 }]);
      throw new Error('boom');
    };
    await expect(block()).rejects.toThrow('boom');
  });

  it('waits at most disposeTimeout for a pending map, then terminates it (PoolClosedError)', async () => {
    let pending: Promise<unknown> | undefined;
    const block = async () => {
      await using pool = await Pool.open({ module: tasks, workers: 1, disposeTimeout: 200 });
      pending = pool.map('sleepThen', [{ ms: 600_000, v: 1 }]);
      pending.catch(() => undefined);
      throw new Error('boom');
    };
    await expect(block()).rejects.toThrow('boom');
    await expect(pending).rejects.toThrow(PoolClosedError);
  });

  it('a pending map that finishes within disposeTimeout is waited for', async () => {
    let pending: Promise<unknown> | undefined;
    const block = async () => {
      await using pool = await Pool.open({ module: tasks, workers: 1, disposeTimeout: 60_000 });
      pending = pool.map('sleepThen', [{ ms: 50, v: 7 }]);
      pending.catch(() => undefined);
      throw new Error('boom');
    };
    await expect(block()).rejects.toThrow('boom');
    await expect(pending).resolves.toEqual([7]);
  });
});
