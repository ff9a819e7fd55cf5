import { describe, expect, it } from 'vitest';
import { Pool, TaskError, OptionError, PoolClosedError, THREAD_VARIABLES } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

describe('Pool in local mode', () => {
  it('map keeps input order, starmap spreads arguments, apply runs one task', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    expect(pool.mode).toBe('local');
    expect(await pool.map('square', [1, 2, 3, 4, 5, 6, 7])).toEqual([1, 4, 9, 16, 25, 36, 49]);
    expect(await pool.starmap('add', [[1, 2], [3, 4]])).toEqual([3, 7]);
    expect(await pool.apply('add', 5, 6)).toBe(11);
    expect(await pool.map('square', [])).toEqual([]);
  });

  it('accepts sync and async iterables without a length, and a path as module', async () => {
    await using pool = await Pool.open({ module: 'test/fixtures/tasks.mjs', workers: 2 });
    function* gen() {
      for (let i = 0; i < 100; i++) yield i;
    }
    async function* agen() {
      for (let i = 0; i < 50; i++) yield i;
    }
    expect(await pool.map('identity', gen())).toEqual([...gen()]);
    expect(await pool.map('square', agen())).toEqual(Array.from({ length: 50 }, (_, i) => i * i));
    expect(await pool.map('identity', new Set([3, 1, 2]))).toEqual([3, 1, 2]);
  });

  it('chunksize: every item once, in order, for several sizes', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const items = Array.from({ length: 1001 }, (_, i) => i);
    for (const chunksize of [1, 7, 100, 5000]) {
      expect(await pool.map('identity', items, { chunksize })).toEqual(items);
    }
  });

  it('async tasks and imapUnordered yield in completion order', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const out: string[] = [];
    const items = [
      { ms: 300, v: 'slow' },
      { ms: 10, v: 'fast' },
    ];
    for await (const r of pool.imapUnordered<string>('sleepThen', items, { chunksize: 1 })) out.push(r);
    expect(out).toEqual(['fast', 'slow']);
    const ordered: string[] = [];
    for await (const r of pool.imap<string>('sleepThen', items, { chunksize: 1 })) ordered.push(r);
    expect(ordered).toEqual(['slow', 'fast']);
  });

  it('imap over an endless generator stops promptly after break and reads a bounded number of items', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    let read = 0;
    let returned = false;
    function* naturals() {
      try {
        for (let i = 0; ; i++) {
          read++;
          yield i;
        }
      } finally {
        returned = true;
      }
    }
    const got: number[] = [];
    for await (const r of pool.imap<number>('square', naturals())) {
      got.push(r);
      if (got.length === 10) break;
    }
    expect(got).toEqual([0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    expect(returned).toBe(true);
    console.log('imap endless: items read', read);
    expect(read).toBeLessThan(10_000);
    // the pool still works after a cancelled imap
    expect(await pool.map('square', [3])).toEqual([9]);
  });

  it('a failing task rejects map with a TaskError naming the index, node, worker and cause; the pool goes on', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const err = await pool.map('failOn', [0, 1, 2, 3, 4, 5], { chunksize: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    const te = err as InstanceType<typeof TaskError>;
    expect(te.index).toBe(3);
    expect(te.kind).toBe('error');
    expect(typeof te.node).toBe('string');
    expect(te.worker).toBeGreaterThanOrEqual(0);
    expect(te.cause.name).toBe('RangeError');
    expect(te.cause.message).toBe('bad item 3');
    expect(te.cause.stack).toContain('failOn');
    expect(te.message).toContain('task 3 (failOn) threw RangeError');
    expect(await pool.map('square', [2])).toEqual([4]);
  });

  it('imap yields the results before a failure, then throws at its position', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const got: number[] = [];
    let caught: unknown;
    try {
      for await (const r of pool.imap<number>('failOn', [0, 1, 2, 3, 4, 5], { chunksize: 1 })) got.push(r);
    } catch (e) {
      caught = e;
    }
    expect(got).toEqual([0, 1, 2]);
    expect((caught as InstanceType<typeof TaskError>).index).toBe(3);
  });

  it('a worker that exits is replaced, its chunk retried, then reported as died — never a hang', async () => {
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, workers: 2, retries: 1, log: (l) => logs.push(l) });
    const err = (await pool.map('exitOn', [0, 1, 2, 3, 4], { chunksize: 5 }).catch((e: unknown) => e)) as InstanceType<typeof TaskError>;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.index).toBe(2);
    expect(err.kind).toBe('died');
    expect(err.attempts).toBe(2);
    expect(err.message).toContain('exited with code 7');
    expect(logs.some((l) => l.includes('retrying'))).toBe(true);
    expect(await pool.map('square', [1, 2, 3, 4], { chunksize: 1 })).toEqual([1, 4, 9, 16]);
  });

  it('a task past the heap limit kills only its worker and is reported', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1, maxHeapMB: 32, retries: 0, log: false });
    const err = (await pool.map('eatMemory', [1]).catch((e: unknown) => e)) as InstanceType<typeof TaskError>;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.kind).toBe('died');
    expect(await pool.map('square', [5])).toEqual([25]);
  });

  it('timeout ends a hanging task and reports it; the worker is replaced', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1, log: false });
    const err = (await pool.map('hang', [1], { timeout: 200 }).catch((e: unknown) => e)) as InstanceType<typeof TaskError>;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('timeout of 200 ms');
    expect(await pool.map('square', [6])).toEqual([36]);
  });

  it('initializer runs once in each worker with initArgs', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, initializer: 'init', initArgs: ['ready'] });
    expect(await pool.map('getInit', [1, 2, 3, 4], { chunksize: 1 })).toEqual(['ready', 'ready', 'ready', 'ready']);
  });

  it('maxTasksPerWorker recycles workers', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1, maxTasksPerWorker: 2 });
    const ids = await pool.map<number>('tid', [1, 2, 3, 4, 5, 6], { chunksize: 1 });
    expect(new Set(ids).size).toBe(3);
  });

  it('pins thread variables inside tasks (threadsPerTask) over inherited ones, saying which, unless kept; taskEnv values win', async () => {
    const logs: string[] = [];
    const inherited = { ...process.env, MKL_NUM_THREADS: '5', OMP_NUM_THREADS: '16' };
    {
      await using pool = await Pool.open({ module: tasks, workers: 1, threadsPerTask: 2, env: inherited, log: (l) => logs.push(l) });
      expect(await pool.map('envOf', [...THREAD_VARIABLES, 'UV_THREADPOOL_SIZE'])).toEqual(['2', '2', '2', '2', '2', '4']);
    }
    expect(logs.filter((l) => l.startsWith('thread variables pinned'))).toEqual([
      'thread variables pinned to 2 per task (the cores each task has): OMP_NUM_THREADS=16, MKL_NUM_THREADS=5 from the environment overridden; keep them with keepThreadEnv (--keep-thread-env, SLURMPOOL_KEEP_THREAD_ENV=1), or give values for the tasks in taskEnv',
    ]);
    {
      await using pool = await Pool.open({ module: tasks, workers: 1, threadsPerTask: 2, env: inherited, keepThreadEnv: true, log: false });
      expect(await pool.map('envOf', THREAD_VARIABLES)).toEqual(['16', '5', '2', '2', '2']);
    }
    {
      await using pool = await Pool.open({ module: tasks, workers: 1, env: inherited, taskEnv: { OMP_NUM_THREADS: '3' }, log: false });
      expect(await pool.map('envOf', THREAD_VARIABLES)).toEqual(['3', '1', '1', '1', '1']);
    }
  });

  it('a CPU count per task larger than a node has is refused, naming the node and its CPUs', async () => {
    await expect(Pool.open({ module: tasks, emulate: '2x2', threadsPerTask: 3, log: false })).rejects.toThrow(/node emu\d has 2 CPU\(s\), fewer than the 3 each task asks for/);
  });

  it('bad options and bad task names give clear errors', async () => {
    await expect(Pool.open({ module: tasks, workers: 0 })).rejects.toThrow(new OptionError('options.workers must be a positive integer, got 0'));
    await expect(Pool.open({ module: tasks, workers: 1.5 })).rejects.toThrow('options.workers must be a positive integer, got 1.5');
    await expect(Pool.open({ module: './nope/missing.mjs' })).rejects.toThrow(/options.module "\.\/nope\/missing\.mjs" does not exist \(looked for .*nope\/missing\.mjs\)/);
    await expect(Pool.open({ module: tasks, retries: -1 })).rejects.toThrow('options.retries must be a non-negative integer, got -1');
    await expect(Pool.open({ module: tasks, mode: 'cloud' as never })).rejects.toThrow('options.mode must be one of local, emulate, slurm, ssh, join, got "cloud"');
    await expect(Pool.open({ module: tasks, emulate: '4by2' })).rejects.toThrow('options.emulate must look like NODESxCPUS (e.g. "4x2") or list CPUs node by node (e.g. "2,2,1" or "2(x2),1"), got "4by2"');
    await using pool = await Pool.open({ module: tasks, workers: 1 });
    await expect(pool.map('nope', [1])).rejects.toThrow(/has no export named 'nope' \(its function exports: .*square.*\)/);
    // Refused before any work starts (the nodes said what the module exports): an OptionError, not a TaskError of task 0.
    await expect(pool.map('nope', [1])).rejects.toBeInstanceOf(OptionError);
    expect(() => pool.imap('nope', [1])).toThrow(OptionError);
    await expect(pool.map('notAFunction', [1])).rejects.toThrow(/export 'notAFunction' of task module .* is not a function \(it is number\)/);
    await expect(pool.map('square', [1], { chunksize: 0 })).rejects.toThrow('options.chunksize must be a positive integer, got 0');
  });

  it('a module that fails to load rejects Pool.open with its error', async () => {
    await expect(Pool.open({ module: new URL('./fixtures/broken.mjs', import.meta.url), workers: 1 })).rejects.toThrow(/SyntaxError/);
  });

  it('close finishes submitted work; terminate rejects pending work with a clear error', async () => {
    const pool = await Pool.open({ module: tasks, workers: 1 });
    const p = pool.map('sleepThen', [{ ms: 100, v: 'done' }]);
    await pool.close();
    expect(await p).toEqual(['done']);
    await expect(pool.map('square', [1])).rejects.toBeInstanceOf(PoolClosedError);

    const pool2 = await Pool.open({ module: tasks, workers: 1 });
    const pending = pool2.map('hang', [1]).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await pool2.terminate();
    expect(await pending).toBeInstanceOf(PoolClosedError);
    expect(String(await pending)).toContain('the pool was terminated while this call was pending');
  });
});

describe('process lifetime', () => {
  it('a process that closes its pool exits on its own', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(process.execPath, [new URL('./fixtures/leak-check.mjs', import.meta.url).pathname], { timeout: 20_000, encoding: 'utf8' });
    expect(out.trim()).toBe('closed');
  });
});

describe('stragglers', () => {
  it('a chunk running far longer than the others gets a copy on an idle worker; the first result wins, recorded once', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const marker = join(mkdtempSync(join(tmpdir(), 'sp-strag-')), 'm');
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, workers: 2, log: (l) => logs.push(l) });
    const items = Array.from({ length: 12 }, (_, i) => ({ v: i, marker: i === 11 ? marker : '', ms: 30_000 }));
    const t0 = Date.now();
    const out = await pool.map('slowFirstTime', items, { chunksize: 1 });
    expect(out).toEqual(items.map((x) => x.v));
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(logs.join('\n')).toMatch(/straggler: task 11 has run \d+ s on node .*a copy runs on node/);
  });
});

describe('values', () => {
  it('large Buffers, numeric lists, typed arrays and mixed values come back as they went', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const big = Buffer.alloc(200_000, 7);
    const out = await pool.map<Buffer>('identity', [big, Buffer.from('x'), big], { chunksize: 3 });
    expect(out.map((b) => [Buffer.isBuffer(b), b.length, b[100]])).toEqual([[true, 200_000, 7], [true, 1, undefined], [true, 200_000, 7]]);
    const nums = [0, -0, 1.5, -2, 2 ** 53, NaN, Infinity, 1e-300, ...Array.from({ length: 40 }, (_, i) => i)];
    const back = await pool.map<number>('identity', nums, { chunksize: nums.length });
    expect(back).toEqual(nums);
    expect(Object.is(back[1], -0)).toBe(true);
    const mixed = [1, 'a', null, [1, 2], { k: new Date(0) }, new Float32Array([1.5]), undefined, 10n ** 20n];
    expect(await pool.map('identity', mixed, { chunksize: 8 })).toEqual(mixed);
  });
});

describe('records', () => {
  it('imapRecords: a task that succeeded after its worker died says attempts 2; failures are records, not throws', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const marker = join(mkdtempSync(join(tmpdir(), 'sp-rec-')), 'm');
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    const recs = [];
    for await (const r of pool.imapRecords('exitFirstTime', [{ v: 'a', marker: '' }, { v: 'b', marker }, { v: 'c', marker: '' }], { chunksize: 1 })) recs.push(r);
    recs.sort((x, y) => x.index - y.index);
    expect(recs.map((r) => [r.index, r.ok, r.value, r.attempts])).toEqual([[0, true, 'a', 1], [1, true, 'b', 2], [2, true, 'c', 1]]);
    const bad = [];
    for await (const r of pool.imapRecords('failOn', [2, 3, 4], { chunksize: 3 })) bad.push(r);
    expect(bad.map((r) => [r.index, r.ok])).toEqual([[0, true], [1, false], [2, true]]);
    expect(bad[1]!.error!.name).toBe('RangeError');
  });
});

describe('stopStarting', () => {
  it('starts nothing new: no task starts after the stop, not-started items are cancelled records, running ones finish', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    const items = Array.from({ length: 20 }, (_, i) => ({ ms: 300, v: i }));
    const recs: { index: number; ok: boolean; started: number; error?: { kind?: string } }[] = [];
    let stoppedAt = Infinity;
    setTimeout(() => {
      stoppedAt = Date.now();
      pool.stopStarting();
    }, 450);
    for await (const r of pool.imapRecords('sleepThen', items, { chunksize: 1 })) recs.push(r);
    // Items never read from the input get no record at all; those read but not started come back cancelled.
    const done = recs.filter((r) => r.ok);
    const cancelled = recs.filter((r) => !r.ok);
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done.length).toBeLessThan(12);
    expect(cancelled.every((r) => r.error?.kind === 'cancelled')).toBe(true);
    // Not one task began after the stop (a worker clock may differ from this one by a few ms).
    for (const r of done) expect(r.started).toBeLessThan(stoppedAt + 50);
    expect(new Set(recs.map((r) => r.index)).size).toBe(recs.length);
  });

  it('a worker stops inside a chunk: items of a running chunk not yet begun are cancelled, not run', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    const items = Array.from({ length: 10 }, (_, i) => ({ ms: 300, v: i }));
    setTimeout(() => pool.stopStarting(), 450);
    const recs: { index: number; ok: boolean; error?: { kind?: string } }[] = [];
    for await (const r of pool.imapRecords('sleepThen', items, { chunksize: 5 })) recs.push(r);
    recs.sort((a, b) => a.index - b.index);
    expect(recs.length).toBe(10);
    const ok = recs.filter((r) => r.ok).length;
    expect(ok).toBeGreaterThanOrEqual(2);
    expect(ok).toBeLessThanOrEqual(6);
    // Within each chunk, what ran is a prefix and the rest is cancelled.
    for (const chunk of [recs.slice(0, 5), recs.slice(5)]) {
      const firstBad = chunk.findIndex((r) => !r.ok);
      expect(firstBad).toBeGreaterThan(0);
      expect(chunk.slice(firstBad).every((r) => !r.ok && r.error?.kind === 'cancelled')).toBe(true);
    }
  });
});

describe('items too large for a frame', () => {
  it('a chunk over the 1 GiB frame limit is not sent: its item fails with ItemTooLarge naming pool.share, and the others run', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1, log: false });
    const huge = Buffer.allocUnsafe(1024 * 1024 * 1024 + 1024);
    const recs: { index: number; ok: boolean; value?: unknown; error?: { name: string; message: string } }[] = [];
    for await (const r of pool.imapRecords('len', [Buffer.alloc(10), huge, Buffer.alloc(20)], { chunksize: 1 })) recs.push(r);
    recs.sort((a, b) => a.index - b.index);
    expect(recs.map((r) => [r.index, r.ok])).toEqual([[0, true], [1, false], [2, true]]);
    expect(recs[1]!.error!.name).toBe('ItemTooLarge');
    expect(recs[1]!.error!.message).toMatch(/over the 1073741824-byte frame limit: pass large read-only data with pool.share/);
    expect(pool.nodes.length).toBe(1);
  });
});
