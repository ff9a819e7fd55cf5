// Python task modules: a real interpreter per worker slot, locally and on emulated nodes, with the msgpack
// package and with the built-in codec.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, OptionError, Pool, TaskError, type TaskRecord } from '../dist/index.js';
import { PythonSlots, startInterpreter } from '../dist/agent/python-process.js';
import { PythonWorker } from '../dist/agent/python-slot.js';
import { WorkerPool } from '../dist/agent/worker-pool.js';
import { decode, encode } from '../dist/protocol/codec.js';
import type { ChunkResult } from '../dist/protocol/messages.js';
import { CODECS, PY_FIXTURES, pythonWithMsgpack } from './helpers/python.js';
import { cleanEnv, cli, records as readRecords, tmp } from './cli/helpers.js';

const python = pythonWithMsgpack();
const MODULE = join(PY_FIXTURES, 'tasks.py');
const OLD_PYTHON = join(PY_FIXTURES, 'old-python.sh');
const PYTHON_DIR = new URL('../python/', import.meta.url).pathname;

function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, SLURMPOOL_PYTHON: python, ...extra };
}

async function records(it: AsyncIterable<TaskRecord>): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for await (const r of it) out.push(r);
  return out.sort((a, b) => a.index - b.index);
}

describe.each(CODECS)(`Python tasks (${python}), local mode, $codec codec`, ({ codec, env }) => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await Pool.open({ module: MODULE, workers: 2, env: envWith(env), initializer: 'init', initArgs: ['ready', 7], log: false });
  });
  afterAll(() => pool?.close());

  it('runs in interpreters using the codec asked for', async () => {
    expect(await pool.map('codec', [0, 1])).toEqual([codec, codec]);
  });

  it('map, imap, imapUnordered, starmap and apply, with the meaning of the JS path', async () => {
    const xs = Array.from({ length: 200 }, (_, i) => i);
    expect(await pool.map('square', xs, { chunksize: 7 })).toEqual(xs.map((x) => x * x));
    expect(await pool.map('square', xs)).toEqual(xs.map((x) => x * x));
    const ordered: unknown[] = [];
    for await (const v of pool.imap('square', xs.slice(0, 50), { chunksize: 1 })) ordered.push(v);
    expect(ordered).toEqual(xs.slice(0, 50).map((x) => x * x));
    const unordered: unknown[] = [];
    for await (const v of pool.imapUnordered('square', xs.slice(0, 50))) unordered.push(v);
    expect((unordered as number[]).sort((a, b) => a - b)).toEqual(xs.slice(0, 50).map((x) => x * x));
    expect(await pool.starmap('add', [[1, 2], ['a', 'b'], [[1], [2]]])).toEqual([3, 'ab', [1, 2]]);
    expect(await pool.apply('add', 40, 2)).toBe(42);
  });

  it('values cross as msgpack both ways: numbers stay ints and floats, bytes stay bytes', async () => {
    const items = [1, -5, 2.5, 'text', true, null, [1, 'a'], { k: [1, 2] }, Buffer.from([0, 255]), 2n ** 70n, -(2n ** 64n), new Float64Array([1.5, 2]), new Int32Array([-1, 7]), new Date(1_000_000_000_000)];
    const got = (await pool.map('kinds', items, { chunksize: 3 })) as [string, unknown][];
    expect(got.map(([t]) => t)).toEqual(['int', 'int', 'float', 'str', 'bool', 'NoneType', 'list', 'dict', 'bytes', 'int', 'int', 'array', 'array', 'datetime']);
    expect(got.map(([, v]) => v)).toEqual([1, -5, 2.5, 'text', true, null, [1, 'a'], { k: [1, 2] }, Buffer.from([0, 255]), 2n ** 70n, -(2n ** 64n), new Float64Array([1.5, 2]), new Int32Array([-1, 7]), new Date(1_000_000_000_000)]);
    // A long list of numbers travels as one Float64Array; integral values come back as Python ints.
    const nums = Array.from({ length: 64 }, (_, i) => (i % 2 ? i : i + 0.5));
    const back = (await pool.map('kinds', nums, { chunksize: 64 })) as [string, number][];
    expect(back.map(([t]) => t)).toEqual(nums.map((x) => (Number.isInteger(x) ? 'int' : 'float')));
    expect(back.map(([, v]) => v)).toEqual(nums);
    // The edges of msgpack's integer forms, in one long numeric list: ints within 32 bits, floats outside.
    const edges = [0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, 0.5, -0, 1e300];
    const seen = (await pool.map('kinds', edges, { chunksize: edges.length })) as [string, number][];
    expect(seen.map(([t]) => t)).toEqual(edges.map((x) => (Number.isInteger(x) && x >= -2147483648 && x <= 4294967295 ? 'int' : 'float')));
    expect(seen.map(([, v]) => v)).toEqual(edges.map((x) => (Object.is(x, -0) ? 0 : x)));
    // JS Sets and RegExps (msgpackr's prefix extensions) still decode.
    expect(await pool.map('kinds', [new Set([3])])).toEqual([['set', [3]]]);
  });

  it('the initializer ran once in each interpreter before any task, with initArgs', async () => {
    expect(await pool.map('initialized', [1, 2])).toEqual([
      ['ready', 7, 1],
      ['ready', 7, 2],
    ]);
  });

  it('an exception is a TaskError with the Python class, message and traceback', async () => {
    const e = await pool.map('fail_on', [1, 2, 3, 4]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TaskError);
    const t = e as TaskError;
    expect(t.index).toBe(2);
    expect(t.kind).toBe('error');
    const cause = t.cause as Error;
    expect(cause.name).toBe('ValueError');
    expect(cause.message).toBe('item 3 is bad');
    expect(cause.stack).toContain('Traceback (most recent call last)');
    expect(cause.stack).toMatch(/tasks\.py", line \d+, in fail_on/);
    expect(cause.stack).not.toContain('slurmpool_runtime');
  });

  it('a segfault fails only its own item; the others of its chunk succeed; the interpreter is replaced', async () => {
    const recs = await records(pool.imapRecords('segfault_on', [0, 1, 2, 3, 4, 5], { chunksize: 6 }));
    expect(recs.map((r) => r.ok)).toEqual([true, true, false, true, true, true]);
    expect(recs[2]!.error!.kind).toBe('died');
    expect(recs[2]!.error!.message).toMatch(/killed by SIGSEGV/);
    expect(recs[2]!.attempts).toBe(2); // retried once (retries: 1), and died again
    expect(await pool.map('square', [3])).toEqual([9]);
  });

  it('tiny items run in bulk keep their meaning: each failure at its own index, a crash found and isolated', async () => {
    const items = Array.from({ length: 6000 }, (_, i) => (i === 1234 || i === 4321 ? 1 : i === 3000 ? 2 : 5));
    const recs = await records(pool.imapRecords('bulk', items, { chunksize: 6000 }));
    expect(recs).toHaveLength(6000);
    const bad = recs.filter((r) => !r.ok).map((r) => [r.index, r.error!.name, r.error!.kind]);
    expect(bad).toEqual([
      [1234, 'KeyError', 'error'],
      [3000, 'WorkerExit', 'died'],
      [4321, 'KeyError', 'error'],
    ]);
    expect(recs.filter((r) => r.ok).every((r) => r.value === -5)).toBe(true);
    const e = (await pool.map('bulk', items.slice(0, 3000), { chunksize: 3000 }).catch((x: unknown) => x)) as TaskError;
    expect(e.index).toBe(1234);
    expect((e.cause as Error).name).toBe('KeyError');
  });

  it('large values cross both ways whole (frames longer than one pipe read)', async () => {
    const [back] = (await pool.map('big', [24 * 1024 * 1024])) as Buffer[];
    expect(back!.length).toBe(24 * 1024 * 1024);
    expect(back![255]).toBe(255);
    expect(back![24 * 1024 * 1024 - 1]).toBe(255);
    expect(await pool.map('length', [Buffer.alloc(20 * 1024 * 1024, 7), Buffer.alloc(3)])).toEqual([20 * 1024 * 1024, 3]);
  });

  it('a result msgpack cannot hold fails its own item, naming the type; a tuple is an array', async () => {
    const recs = await records(pool.imapRecords('unencodable', [0, 1, 2], { chunksize: 3 }));
    expect(recs.map((r) => r.ok)).toEqual([true, false, true]);
    expect(recs[0]!.value).toEqual([0, 'tuple']);
    expect(recs[1]!.error!.name).toBe('ResultNotEncodable');
    expect(recs[1]!.error!.message).toMatch(/could not be encoded .*object/);
    expect(await pool.map('pattern_info', [/ab+c/i])).toEqual([['Pattern', 'ab+c', true, true]]);
  });

  it('an async def task is awaited', async () => {
    expect(await pool.map('later', [1, 2, 3])).toEqual([2, 3, 4]);
  });

  it('os._exit in a task fails only its item, with the exit status', async () => {
    const recs = await records(pool.imapRecords('exit_on', [0, 1, 2], { chunksize: 3 }));
    expect(recs.map((r) => r.ok)).toEqual([true, false, true]);
    expect(recs[1]!.error!.message).toMatch(/exited with status 7/);
  });

  it('a timeout kills the interpreter and replaces it; the pool goes on', async () => {
    const one = await Pool.open({ module: MODULE, workers: 1, env: envWith(env), log: false });
    try {
      const [before] = await one.map('pid', [0]);
      const e = (await one.map('sleep', [0.01, 30], { timeout: 400, chunksize: 1 }).catch((x: unknown) => x)) as TaskError;
      expect(e).toBeInstanceOf(TaskError);
      expect(e.kind).toBe('timeout');
      expect(e.index).toBe(1);
      expect(e.message).toMatch(/Python interpreter was killed/);
      const [after] = await one.map('pid', [0]);
      expect(after).not.toBe(before);
    } finally {
      await one.close();
    }
  });

  it('what a task prints does not corrupt the channel', async () => {
    expect(await pool.map('noisy', [1, 2, 3])).toEqual([1, 2, 3]);
  });

  it('a binary shared value is a read-only memoryview of its typed array; other values decoded', async () => {
    const data = new Float64Array(1000).map((_, i) => i);
    const ref = await pool.share(data);
    const info = (await pool.map('shared_info', [ref, ref])) as Record<string, unknown>[];
    expect(info[0]).toEqual({ type: 'memoryview', readonly: true, format: 'd', len: 1000, first: 0, last: 999 });
    expect(await pool.starmap('shared_sum', [[ref, 1], [ref, 2]])).toEqual([499500, 999000]);
    const bytes = await pool.share(Buffer.from('hello'));
    expect(((await pool.map('shared_info', [bytes])) as Record<string, unknown>[])[0]).toMatchObject({ format: 'B', len: 5, first: 104 });
    const table = await pool.share({ table: ['a', 'b', 'c'] });
    expect(await pool.map('shared_value', [table])).toEqual(['b']);
    await pool.unshare(ref);
    const e = (await pool.map('shared_info', [ref]).catch((x: unknown) => x)) as TaskError;
    expect((e.cause as Error).message).toMatch(/not on this node/);
  });

  it('a missing function is refused before work starts, listing the functions the module has', async () => {
    await expect(pool.map('nope', [1])).rejects.toThrow(OptionError);
    await expect(pool.map('nope', [1])).rejects.toThrow(/no export named 'nope' \(its function exports: .*square.*\)/);
    await expect(pool.map('NOT_A_FUNCTION', [1])).rejects.toThrow(/is not a function \(it is int\)/);
  });
});

describe('Python tasks: interpreters, environment, replacement', () => {
  it('maxTasksPerWorker replaces the interpreter; thread variables and the sibling module are there', async () => {
    const pool = await Pool.open({ module: MODULE, workers: 1, maxTasksPerWorker: 2, threadsPerTask: 1, env: envWith({ OMP_NUM_THREADS: '8' }), log: false });
    try {
      const pids = await pool.map('pid', [0, 1, 2, 3, 4, 5, 6, 7], { chunksize: 1 });
      expect(new Set(pids).size).toBe(4);
      expect(await pool.map('env', ['OMP_NUM_THREADS', 'SLURMPOOL_WORKER'])).toEqual(['1', '0']);
      expect(await pool.map('helper_value', [1])).toEqual([1001]);
    } finally {
      await pool.close();
    }
  });

  it('without the msgpack package the built-in codec is used; SLURMPOOL_PY_CODEC=msgpack then refuses to start', async () => {
    const noPackage = { PYTHONPATH: join(PY_FIXTURES, 'no-msgpack') };
    const pool = await Pool.open({ module: MODULE, workers: 1, env: envWith(noPackage), log: false });
    try {
      expect(await pool.map('codec', [0])).toEqual(['builtin']);
      expect(await pool.map('square', [12])).toEqual([144]);
    } finally {
      await pool.close();
    }
    const e = (await Pool.open({ module: MODULE, workers: 1, env: envWith({ ...noPackage, SLURMPOOL_PY_CODEC: 'msgpack' }), log: false }).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(LaunchError);
    expect(e.message).toMatch(/SLURMPOOL_PY_CODEC=msgpack, but this interpreter \(.*\) cannot import msgpack/);
  });

  it('with SLURMPOOL_PIN_CPUS each interpreter is pinned to its slot\'s cores before the module loads', async () => {
    const pool = await Pool.open({ module: MODULE, workers: 1, env: envWith({ SLURMPOOL_PIN_CPUS: '1' }), log: false });
    try {
      const [cpus] = (await pool.map('affinity', [0])) as number[][];
      expect(cpus).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });

  it('a module that fails to import: Pool.open says so with its traceback', async () => {
    const e = (await Pool.open({ module: join(PY_FIXTURES, 'broken.py'), workers: 1, env: envWith({}), log: false }).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(LaunchError);
    expect(e.message).toMatch(/import of .*broken\.py failed/);
    expect(e.message).toMatch(/broken\.py", line 5, in <module>/);
    expect(e.message).toContain('RuntimeError: cannot read the configuration');
  });

  it('no interpreter found: the error names what was tried', async () => {
    const env = { ...process.env, PATH: '/nonexistent-bin' } as NodeJS.ProcessEnv;
    delete env.SLURMPOOL_PYTHON;
    delete env.VIRTUAL_ENV;
    const e = (await Pool.open({ module: MODULE, workers: 1, env, log: false }).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(LaunchError);
    expect(e.message).toMatch(/no Python interpreter found .*tried SLURMPOOL_PYTHON \(not set\), \$VIRTUAL_ENV\/bin\/python \(VIRTUAL_ENV not set\), python3 and python on PATH \(\/nonexistent-bin\)/);
    const given = (await Pool.open({ module: MODULE, workers: 1, python: '/nonexistent/python3', log: false }).catch((x: unknown) => x)) as Error;
    expect(given.message).toMatch(/options\.python is "\/nonexistent\/python3", which is not an executable file/);
  });

  it('a Python older than 3.8 is refused, naming its version', async () => {
    const e = (await Pool.open({ module: MODULE, workers: 1, python: join(PY_FIXTURES, 'old-python.sh'), env: envWith({ REAL_PYTHON: python }), log: false }).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(LaunchError);
    expect(e.message).toMatch(/Python 3\.6\.9 at .* is older than 3\.8/);
  });

  it('an initializer that is not in the module is named, with the functions it has', async () => {
    const e = (await Pool.open({ module: MODULE, workers: 1, initializer: 'setup', env: envWith({}), log: false }).catch((x: unknown) => x)) as Error;
    expect(e.message).toMatch(/has no function named 'setup' \(its functions: add, .*codec, .*square/);
  });

  it('shared files are removed on unshare and when the pool closes', async () => {
    const pool = await Pool.open({ module: MODULE, workers: 2, env: envWith({}), log: false });
    const ref = await pool.share(Buffer.alloc(4096, 1));
    await pool.map('shared_info', [ref, ref]);
    const files = () => (existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(`slurmpool-${process.pid}-`)) : []);
    const listed = files();
    expect(listed.length).toBe(1);
    const ref2 = await pool.share(Buffer.alloc(16, 2));
    await pool.map('shared_info', [ref2]);
    await pool.unshare(ref);
    expect(files().length).toBe(1);
    await pool.close();
    expect(files()).toEqual([]);
  });
});


describe.each(CODECS)('Python tasks: the next batch waits in the interpreter, $codec codec', ({ env }) => {
  // A function whose chunks are known to be short (a first call taught it) is pipelined: each
  // interpreter holds its next batch while it runs one. These check that it does, and that the batch
  // waiting there is handed over, dropped or run again as a batch waiting in the agent would be.
  const open = (workers: number, extra: Partial<Parameters<typeof Pool.open>[0]> = {}) => Pool.open({ module: MODULE, workers, env: envWith(env), log: false, ...extra });

  it('an interpreter holds its next batch while it runs one', async () => {
    await using pool = await open(1);
    await pool.map('queued_batches', [0, 0, 0, 0], { chunksize: 1 });
    // The first task waits (up to 10 s) until a batch waits behind it: with no pipelining none ever would.
    const [first] = (await pool.map('queued_batches', [10, 0, 0], { chunksize: 1 })) as number[];
    expect(first).toBeGreaterThanOrEqual(1);
  });

  it('a worker that idles takes back the batch waiting behind a long task (it does not wait behind it)', async () => {
    await using pool = await open(2);
    await pool.map('sleep', [0, 0, 0, 0], { chunksize: 1 });
    const recs = await records(pool.imapRecords('sleep', [1.5, 0.05, 0.05, 0.05], { chunksize: 1 }));
    expect(recs.map((r) => r.ok)).toEqual([true, true, true, true]);
    // Task 2 was sent to wait behind task 0; the other worker, idle, took it back and ran it before task 0 ended.
    expect(recs[2]!.worker).not.toBe(recs[0]!.worker);
    expect(recs[2]!.started).toBeLessThan(recs[0]!.ended);
    expect(recs[3]!.started).toBeLessThan(recs[0]!.ended);
  });

  it('a cancelled call: the batch waiting in the interpreter is dropped, not run', async () => {
    await using pool = await open(1);
    const dir = tmp('slurmpool-py-cancel-');
    const at = (k: string) => dir.path(k);
    await pool.map('mark', [{ path: at('w0') }, { path: at('w1') }], { chunksize: 1 });
    const ac = new AbortController();
    const call = pool.map('mark', [{ path: at('a'), sleep: 1 }, { path: at('b') }], { chunksize: 1, signal: ac.signal });
    call.catch(() => undefined);
    for (let i = 0; i < 1000 && !existsSync(at('a')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(at('a'))).toBe(true);
    ac.abort();
    await expect(call).rejects.toThrow();
    // The interpreter runs in order: once this later call is done, item b would have run had it been kept.
    expect(await pool.map('square', [3])).toEqual([9]);
    expect(existsSync(at('b'))).toBe(false);
    dir.done();
  });

  it('a stop (stopStarting): the batch waiting in the interpreter comes back cancelled, not run', async () => {
    await using pool = await open(1);
    const dir = tmp('slurmpool-py-stop-');
    const at = (k: string) => dir.path(k);
    await pool.map('mark', [{ path: at('w0') }, { path: at('w1') }], { chunksize: 1 });
    const recsP = records(pool.imapRecords('mark', [{ path: at('a'), sleep: 1 }, { path: at('b') }, { path: at('c') }], { chunksize: 1 }));
    for (let i = 0; i < 1000 && !existsSync(at('a')); i++) await new Promise((r) => setTimeout(r, 10));
    pool.stopStarting();
    const recs = await recsP;
    // Item c may not have been read from the input by then (it then has no record at all, as for JS workers).
    expect(recs.length).toBeGreaterThanOrEqual(2);
    expect(recs.map((r) => r.ok)).toEqual([true, ...recs.slice(1).map(() => false)]);
    expect(recs.slice(1).map((r) => r.error?.kind)).toEqual(recs.slice(1).map(() => 'cancelled'));
    expect([existsSync(at('b')), existsSync(at('c'))]).toEqual([false, false]);
    dir.done();
  });

  it('a crash loses only its item: the batch waiting behind it runs in the new interpreter', async () => {
    await using pool = await open(1);
    await pool.map('segfault_on', [0, 1, 3], { chunksize: 1 });
    const recs = await records(pool.imapRecords('segfault_on', [0, 1, 2, 3, 4], { chunksize: 1 }));
    expect(recs.map((r) => r.ok)).toEqual([true, true, false, true, true]);
    expect(recs[2]!.error?.kind).toBe('died');
    expect(recs.filter((r) => r.ok).map((r) => r.value)).toEqual([0, 1, 3, 4]);
  });

  it('a timeout: the batch waiting behind the killed task runs in the new interpreter', async () => {
    await using pool = await open(1);
    const [before] = (await pool.map('sleep', [0, 0], { chunksize: 1 })) as number[];
    const recs = await records(pool.imapRecords('sleep', [30, 0, 0], { chunksize: 1, timeout: 300 }));
    expect(recs.map((r) => r.ok)).toEqual([false, true, true]);
    expect(recs[0]!.error?.kind).toBe('timeout');
    expect(recs[1]!.value).not.toBe(before);
  });

  it('maxTasksPerWorker: an interpreter retiring with a batch waiting hands it on; each runs its share', async () => {
    await using pool = await open(1, { maxTasksPerWorker: 2 });
    const warm = (await pool.map('pid', [0, 1], { chunksize: 1 })) as number[];
    const pids = (await pool.map('pid', [0, 1, 2, 3, 4, 5, 6, 7], { chunksize: 1 })) as number[];
    expect(new Set(pids).size).toBe(4);
    for (const p of new Set(pids)) expect(pids.filter((x) => x === p)).toHaveLength(2);
    expect(pids).not.toContain(warm[0]);
  });
});

describe('Python interpreters started ahead of their slot (while the Python side loads)', () => {
  it('one that ends before its slot takes it over: what it wrote and its exit status are in the error', async () => {
    const slots = new PythonSlots({ python: OLD_PYTHON, env: {}, node: 'here' });
    await slots.load();
    const env = { ...process.env, REAL_PYTHON: python } as Record<string, string>;
    const early = startInterpreter(OLD_PYTHON, env, 0);
    // Node throws away what a child that ended wrote unless someone reads it: startInterpreter keeps it.
    await new Promise((r) => early.child.once('close', r));
    const init = { module: MODULE, initializer: null, initArgs: [], slot: new SharedArrayBuffer(32), workerIndex: 0, maxTasks: 0, env, shared: [] };
    const worker = new PythonWorker(OLD_PYTHON, init, slots.files, new Set(), early);
    const seen: unknown[] = [];
    worker.on('error', (e: Error) => seen.push(e.message));
    const code = await new Promise((r) => worker.on('exit', r));
    expect(code).toBe(3);
    expect(seen).toEqual([expect.stringMatching(/old-python\.sh exited with status 3 while starting: .*Python 3\.6\.9 at .* is older than 3\.8/)]);
    slots.close();
  });

  it('a value shared while they start (before their slot exists) reaches them', async () => {
    const env = { ...process.env, SLURMPOOL_PY_CODEC: 'msgpack' } as Record<string, string>;
    const results: ChunkResult[] = [];
    const fatal: unknown[] = [];
    const pool = new WorkerPool(
      { size: 1, module: MODULE, initializer: null, initArgs: [], maxTasksPerWorker: 0, maxHeapMB: 0, env, shared: [], python: new PythonSlots({ python, env, node: 'here' }) },
      { results: (rs) => results.push(...rs), handBack: () => undefined, fatal: (e) => fatal.push(e) },
    );
    try {
      // start() starts the interpreter and sends its init frame at once, then waits for python-slot.ts:
      // this share comes in between, and reaches the interpreter all the same.
      const started = pool.start();
      const sab = new SharedArrayBuffer(24);
      new Float64Array(sab).set([1, 2, 3]);
      pool.share({ id: 7, kind: 'bytes', ctor: 'Float64Array', sab });
      await started;
      pool.submit([{ id: 1, job: 1, fn: 'shared_sum', kind: 'star', start: 0, items: encode([[{ $slurmpoolShared: 7, bytes: 24 }, 2]]), count: 1, stopOnError: true, timeoutMs: 0 }]);
      await pool.idle();
      expect(fatal).toEqual([]);
      expect(results.map((r) => [r.failures, decode(r.values)])).toEqual([[[], [12]]]);
    } finally {
      await pool.terminate();
    }
  });
});

describe('Python tasks: slurmpool compiles its own runtime once', () => {
  it('the compiled runtime is cached beside it, else in the user\'s cache; a damaged cache file is compiled again', () => {
    const t = tmp('slurmpool-py-cache-');
    for (const f of ['slurmpool_worker.py', 'slurmpool_runtime.py', 'slurmpool_codec.py']) copyFileSync(join(PYTHON_DIR, f), t.path(f));
    // A read-only install: __pycache__ cannot be made there (a file has its name), so the user's cache is used.
    writeFileSync(t.path('__pycache__'), '');
    const env = { ...process.env, XDG_CACHE_HOME: t.path('cache'), PYTHONDONTWRITEBYTECODE: '1' };
    const load = () => execFileSync(python, ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import slurmpool_worker as w; m = w._load("slurmpool_codec"); print(m.choose("builtin").name)', t.dir], { env, encoding: 'utf8' }).trim();
    expect(load()).toBe('builtin');
    const files = readdirSync(t.path('cache/slurmpool'));
    expect(files).toEqual([expect.stringMatching(/^slurmpool_codec\.cpython-\d+\.[0-9a-f]{8}\.slurmpool$/)]);
    const cached = t.path(`cache/slurmpool/${files[0]}`);
    const good = readFileSync(cached);
    writeFileSync(cached, Buffer.concat([good.subarray(0, good.indexOf(0x0a, good.indexOf(0x20)) + 1), Buffer.from('not marshal data')]));
    expect(load()).toBe('builtin');
    // Written again whole, as an interpreter that found it unreadable compiled it.
    writeFileSync(cached, 'garbage');
    expect(load()).toBe('builtin');
    expect(readFileSync(cached).equals(good)).toBe(true);
    // A changed source (another version, same size) is compiled again, not taken from the cache.
    const src = readFileSync(t.path('slurmpool_codec.py'), 'utf8');
    writeFileSync(t.path('slurmpool_codec.py'), src.replace('return Codec("builtin", "", builtin_decode, builtin_encode)', 'return Codec("BUILTIN", "", builtin_decode, builtin_encode)'));
    expect(load()).toBe('BUILTIN');
    // Code is run from the cache only where nobody else could have written it: the changed source's
    // code planted under the original source's key is run from a private file, and not from a file
    // or folder that group or others may write.
    const other = readFileSync(cached);
    writeFileSync(t.path('slurmpool_codec.py'), src);
    const keyEnd = (b: Buffer) => b.indexOf(0x0a, b.indexOf(0x20)) + 1;
    const planted = Buffer.concat([good.subarray(0, keyEnd(good)), other.subarray(keyEnd(other))]);
    writeFileSync(cached, planted);
    chmodSync(cached, 0o644);
    expect(load()).toBe('BUILTIN');
    chmodSync(cached, 0o664);
    expect(load()).toBe('builtin');
    writeFileSync(cached, planted);
    chmodSync(cached, 0o644);
    chmodSync(t.path('cache/slurmpool'), 0o777);
    expect(load()).toBe('builtin');
    chmodSync(t.path('cache/slurmpool'), 0o700);
    t.done();
  });
});

describe.each(CODECS)('Python tasks on 2 emulated nodes, $codec codec', ({ env }) => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await Pool.open({ module: MODULE, emulate: '2x2', env: envWith(env), initializer: 'init', initArgs: ['emu', 1], log: false });
  });
  afterAll(() => pool?.close());

  it('runs on both nodes; a crash is isolated; shared bytes reach every node', async () => {
    const recs = await records(pool.imapRecords('pid', Array.from({ length: 40 }, (_, i) => i), { chunksize: 1 }));
    expect(new Set(recs.map((r) => r.node)).size).toBe(2);
    const seg = await records(pool.imapRecords('segfault_on', [0, 1, 2, 3], { chunksize: 4 }));
    expect(seg.map((r) => r.ok)).toEqual([true, true, false, true]);
    const ref = await pool.share(new Float64Array([1, 2, 3]));
    const sums = await records(pool.imapRecords('shared_sum', Array.from({ length: 16 }, (_, i) => [ref, i]), { star: true, chunksize: 1 }));
    expect(sums.map((r) => r.value)).toEqual(Array.from({ length: 16 }, (_, i) => 6 * i));
    expect(new Set(sums.map((r) => r.node)).size).toBe(2);
    expect(await pool.map('initialized', [0])).toEqual([['emu', 1, 0]]);
  });
});

describe('slurmpool map with a Python module', () => {
  const t = tmp('slurmpool-py-cli-');
  afterAll(() => t.done());

  it('writes records with -o; --resume runs only the failed task again', async () => {
    const input = t.write('params.jsonl', [0, 1, 2, 3, 4, 5].join('\n') + '\n');
    const out = t.path('results.jsonl');
    const marker = t.write('marker', '');
    const env = cleanEnv({ SLURMPOOL_PYTHON: python, MARKER: marker });
    const first = await cli(['map', MODULE, 'fail_if_marked', '--input', input, '-o', out, '--workers', '2'], { env });
    expect(first.exitCode, String(first.stderr)).not.toBe(0);
    let recs = readRecords(out);
    expect(recs.filter((r) => r.ok).map((r) => r.index).sort()).toEqual([0, 1, 2, 4, 5]);
    const failed = recs.find((r) => !r.ok)!;
    expect(failed.index).toBe(3);
    expect(JSON.stringify(failed.error)).toContain('RuntimeError');
    unlinkSync(marker);
    const report = t.path('run.html');
    const second = await cli(['map', MODULE, 'fail_if_marked', '--input', input, '-o', out, '--workers', '2', '--resume', '--report', report], { env });
    expect(second.exitCode, String(second.stderr)).toBe(0);
    expect(readFileSync(report, 'utf8')).toContain('fail_if_marked');
    recs = readRecords(out);
    const final = new Map(recs.map((r) => [r.index, r]));
    expect([...final.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...final.values()].every((r) => r.ok)).toBe(true);
    expect(final.get(3)!.value).toBe(30);
    expect(readFileSync(out, 'utf8')).toContain('"fn":"fail_if_marked"');
  });

  it('a function the module does not have: the error lists the functions it has', async () => {
    const input = t.write('p2.jsonl', '1\n');
    const r = await cli(['map', MODULE, 'simulate', '--input', input, '-o', t.path('r2.jsonl'), '--workers', '1'], { env: cleanEnv({ SLURMPOOL_PYTHON: python }) });
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toMatch(/no export named 'simulate' \(its function exports: .*square/);
  });
});
