// Numeric lists end to end: one Float64Array per call's input, chunks as views of it, results moved
// between threads and written straight into the caller's array; and an array is read when the call is made.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';
import { decodeListLike, encodeList, packr } from '../dist/protocol/codec.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

const SPECIAL = [0, -0, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 5e-324, 1.7976931348623157e308, 0.1, -1.5];

/** n numbers with every special value at the start, the middle and the end. */
function numbers(n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i * 0.5 - 7);
  for (const at of [0, n >> 1, n - SPECIAL.length]) SPECIAL.forEach((v, k) => (out[at + k] = v));
  return out;
}

/** Indices where two lists differ by Object.is (NaN equals NaN, -0 differs from 0), at most 5. */
function differences(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number[] {
  const bad: number[] = [];
  if (a.length !== b.length) return [-1];
  for (let i = 0; i < a.length && bad.length < 5; i++) if (!Object.is(a[i], b[i])) bad.push(i);
  return bad;
}

describe('numeric lists', () => {
  it('encodes as msgpackr encodes a Float64Array, and decodes its bytes and msgpackr’s, aligned or not', () => {
    for (const n of [16, 31, 40, 9000]) {
      const list = numbers(n);
      const bytes = encodeList(list);
      // Inside a message it is binary (msgpack bin), as every encoded list is.
      expect(Buffer.isBuffer(bytes)).toBe(true);
      expect(packr.pack({ items: bytes })[9]).toBe(n * 8 + 1 + 4 < 0x100 ? 0xc4 : n * 8 + 5 < 0x10000 ? 0xc5 : 0xc6);
      // The same bytes as msgpackr's own typed-array extension: any peer (Python's codec too) reads them.
      expect(Buffer.from(bytes).equals(packr.pack(Float64Array.from(list)))).toBe(true);
      expect(Buffer.from(encodeList(Float64Array.from(list))).equals(Buffer.from(bytes))).toBe(true);
      const view = decodeListLike(bytes);
      expect(view).toBeInstanceOf(Float64Array);
      // Read where it lies: no copy.
      expect((view as Float64Array).buffer).toBe(bytes.buffer);
      expect(differences(view, list)).toEqual([]);
      // msgpackr's bytes at an odd offset: one copy, the same numbers.
      const odd = Buffer.alloc(bytes.byteLength + 3);
      odd.set(bytes, 3);
      expect(differences(decodeListLike(odd.subarray(3)), list)).toEqual([]);
    }
    // Short or mixed lists stay plain msgpack arrays.
    expect(decodeListLike(encodeList([1, 2, 3]))).toEqual([1, 2, 3]);
    const mixed = [...Array.from({ length: 20 }, (_, i) => i), 'x'];
    expect(decodeListLike(encodeList(mixed))).toEqual(mixed);
  });

  it('NaN, -0, infinities and the extremes come back exactly, in chunks large enough to be moved between threads', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const big = numbers(200_000);
    expect(differences(await pool.map<number>('identity', big), big)).toEqual([]);
    // Twice: the second call starts from learned chunk sizes (one chunk per worker and a few more).
    expect(differences(await pool.map<number>('identity', big), big)).toEqual([]);
    const small = numbers(40);
    expect(differences(await pool.map<number>('identity', small, { chunksize: 20 }), small)).toEqual([]);
    // Results that are numbers from items that are not, and the other way round.
    expect(await pool.starmap('add', Array.from({ length: 50 }, (_, i) => [i, 0.5]))).toEqual(Array.from({ length: 50 }, (_, i) => i + 0.5));
    const ids = await pool.map<string>('sharedKind', Array.from({ length: 30 }, (_, i) => i));
    expect(ids.every((r) => (r as unknown as { type: string }).type === 'Number')).toBe(true);
  });

  it('typed arrays are inputs like arrays of their numbers', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const f = Float64Array.from(numbers(30_000));
    expect(differences(await pool.map<number>('identity', f), f)).toEqual([]);
    const ints = Int32Array.from({ length: 1000 }, (_, i) => i - 500);
    expect(await pool.map('square', ints, { chunksize: 100 })).toEqual(Array.from(ints, (x) => x * x));
    expect(await pool.map('identity', new Uint8Array([1, 2, 3]))).toEqual([1, 2, 3]);
  });

  it('an array changed after the call is made changes nothing the call runs: map, imap, numbers and objects', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    // Numbers (one Float64Array for the call), in many chunks dispatched after the change.
    const nums = Array.from({ length: 64 }, () => 1);
    const pending = pool.map<number>('identity', nums, { chunksize: 2 });
    nums.fill(7);
    nums.length = 3;
    expect(await pending).toEqual(Array.from({ length: 64 }, () => 1));
    // Objects: the array is copied (the items themselves are the caller's).
    const objs = Array.from({ length: 20 }, () => ({ ms: 1, v: 'a' }));
    const later = pool.map<string>('sleepThen', objs, { chunksize: 1 });
    objs.fill({ ms: 1, v: 'changed' });
    objs.push({ ms: 1, v: 'added' });
    expect(await later).toEqual(Array.from({ length: 20 }, () => 'a'));
    // imap: read lazily by the caller, still the values at the call.
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const it = pool.imap<number>('identity', big, { chunksize: 1000 });
    big.fill(-1);
    const got: number[] = [];
    for await (const v of it) got.push(v);
    expect(differences(got, Array.from({ length: 100_000 }, (_, i) => i))).toEqual([]);
    // After the call returns, the caller's array is its own again (the results are another array).
    const src = Array.from({ length: 50 }, (_, i) => i);
    const out = await pool.map<number>('identity', src);
    src[0] = 99;
    expect(out[0]).toBe(0);
  });

  it('over TCP to an agent process: numeric chunks and results keep every value', async () => {
    await using pool = await Pool.open({ module: tasks, emulate: { nodes: 1, cpusPerNode: 2 }, log: false });
    const big = numbers(100_000);
    expect(differences(await pool.map<number>('identity', big), big)).toEqual([]);
    const small = numbers(17);
    expect(differences(await pool.map<number>('identity', small, { chunksize: 17 }), small)).toEqual([]);
    expect(await pool.apply('add', 2, 3)).toBe(5);
  });

  // A chunk's items move to the worker that gets it (transfer, not copy), so the node holds no copy of
  // a chunk waiting in a worker's batch: when that worker ends before starting it, the node hands it
  // back and the coordinator sends it again from its own items.
  it('chunks waiting in a worker that retires or dies are sent again whole (items moved, not copied)', async () => {
    const n = 120_000;
    const xs = Array.from({ length: n }, (_, i) => i);
    const doubled = xs.map((x) => x * 2);
    {
      // Workers retire every 3 tasks with batches of several 4 KiB chunks waiting in them.
      await using pool = await Pool.open({ module: tasks, workers: 2, maxTasksPerWorker: 3, log: false });
      for (let rep = 0; rep < 2; rep++) expect(differences(await pool.map<number>('identity', xs, { chunksize: 500 }), xs)).toEqual([]);
    }
    for (const emulate of [undefined, { nodes: 1, cpusPerNode: 2 }]) {
      const dir = mkdtempSync(join(tmpdir(), 'sp-handback-'));
      try {
        await using pool = await Pool.open({
          module: tasks,
          workers: 2,
          ...(emulate ? { emulate } : {}),
          retries: 1,
          log: false,
          env: { ...process.env, EXIT_ONCE_MARKER: join(dir, 'died'), EXIT_ONCE_AT: '90007' },
        });
        // The first call teaches the pool that chunks are short, so the second sends batches of them.
        expect(differences(await pool.map<number>('identity', xs, { chunksize: 500 }), xs)).toEqual([]);
        expect(differences(await pool.map<number>('doubleExitOnce', xs, { chunksize: 500 }), doubled)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
