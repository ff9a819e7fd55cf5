// AbortSignal on every call and on Pool.open: an AbortError at once, the call's chunks cancelled, nothing left running.
import { describe, expect, it } from 'vitest';
import { runScript as run } from './helpers/script.js';
import { AbortError, Pool, SlurmpoolError } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);
const slow = (v: number) => ({ ms: 600_000, v });

function expectAbortError(e: unknown, reason?: unknown): void {
  expect(e).toBeInstanceOf(AbortError);
  expect(e).toBeInstanceOf(SlurmpoolError);
  expect((e as AbortError).name).toBe('AbortError');
  expect((e as AbortError).code).toBe('ABORT_ERR');
  if (reason !== undefined) expect((e as AbortError).cause).toBe(reason);
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('signal on calls', () => {
  it('aborting a running map rejects it at once and cancels its chunks; the pool goes on and closes', async () => {
    // Chunks already running finish (a thread is not interrupted), but they are no longer waited for:
    // the third worker stays free for the next call, and close() does not wait for the abandoned tasks.
    const pool = await Pool.open({ module: tasks, workers: 3 });
    const ac = new AbortController();
    const p = pool.map('sleepThen', [slow(1), slow(2)], { chunksize: 1, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    const reason = new Error('user cancelled');
    ac.abort(reason);
    expectAbortError(await caught(p), reason);
    // One chunk, so that it goes to the free worker and not behind an abandoned task.
    expect(await pool.map('square', [1, 2, 3], { chunksize: 3 })).toEqual([1, 4, 9]);
    await pool.close();
  });

  it('an already aborted signal rejects every kind of call before anything runs', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1 });
    const signal = AbortSignal.abort();
    expectAbortError(await caught(pool.map('square', [1], { signal })));
    expectAbortError(await caught(pool.starmap('add', [[1, 2]], { signal })));
    expectAbortError(await caught(pool.applyWith('add', [1, 2], { signal })));
    expectAbortError(await caught(pool.imap('square', [1], { signal }).next()));
    expectAbortError(await caught(pool.imapUnordered('square', [1], { signal }).next()));
    expectAbortError(await caught(pool.imapRecords('square', [1], { signal }).next()));
    expectAbortError(await caught(pool.runCommands(['true'], { signal }).next()));
    expect(pool.stats()[0]!.tasks).toBe(0);
  });

  it('aborting an iterator throws from its next read even with results buffered, and stops its input', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const ac = new AbortController();
    let read = 0;
    function* input() {
      for (;;) {
        read++;
        yield read;
      }
    }
    const it = pool.imap<number>('square', input(), { chunksize: 1, signal: ac.signal });
    expect((await it.next()).value).toBe(1);
    expect((await it.next()).value).toBe(4);
    ac.abort();
    expectAbortError(await caught(it.next()));
    expect((await it.next()).done).toBe(true);
    const after = read;
    expect(await pool.map('square', [5])).toEqual([25]);
    expect(read).toBe(after);
  });

  it('aborting imapRecords and runCommands mid-run', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1 });
    const ac1 = new AbortController();
    const recs = pool.imapRecords('sleepThen', [{ ms: 0, v: 1 }, slow(2)], { chunksize: 1, signal: ac1.signal });
    expect((await recs.next()).value).toMatchObject({ index: 0, ok: true, value: 1 });
    ac1.abort();
    expectAbortError(await caught(recs.next()));
    const ac2 = new AbortController();
    const cmds = pool.runCommands(['sleep 600'], { signal: ac2.signal });
    const next = cmds.next();
    ac2.abort();
    expectAbortError(await caught(next));
  });

  it('a call that finished before the abort is not affected', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1 });
    const ac = new AbortController();
    expect(await pool.map('square', [2], { signal: ac.signal })).toEqual([4]);
    ac.abort();
    expect(await pool.map('square', [3], { signal: ac.signal }).catch((e: Error) => e.name)).toBe('AbortError');
  });
});

/** Run a script in a child node that must exit by itself: nothing of an aborted open may keep it alive. */
const runScript = (code: string) => run(code, 45_000);

describe('signal on Pool.open', () => {
  it('an aborted signal rejects at once', async () => {
    const reason = new Error('not now');
    expectAbortError(await caught(Pool.open({ module: tasks, workers: 1, signal: AbortSignal.abort(reason) })), reason);
  });

  for (const mode of ['local', 'emulate'] as const) {
    it(`aborting while ${mode} workers start rejects and stops what was started`, async () => {
      const index = new URL('../dist/index.js', import.meta.url).href;
      const extra = mode === 'emulate' ? "emulate: '2x1', log: false" : 'workers: 2';
      const code = `import { Pool } from ${JSON.stringify(index)};
const ac = new AbortController();
const p = Pool.open({ module: new URL(${JSON.stringify(tasks.href)}), ${extra}, signal: ac.signal });
setImmediate(() => ac.abort());
try { await p; console.log('opened'); } catch (e) { console.log(e.name, e.code); }`;
      const r = await runScript(code);
      expect(r.stdout.trim()).toBe('AbortError ABORT_ERR');
      expect(r.code).toBe(0);
    });
  }
});
