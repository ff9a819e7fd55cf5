// Shared read-only data: once per node, one SharedArrayBuffer there, read by every worker.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += b[i]!;
  return s;
}

describe('pool.share', () => {
  it('a 64 MB buffer read by every task on 3 emulated nodes x 2 workers: right bytes, one copy received per node, two sent by the coordinator', async () => {
    const size = 64 * 1024 * 1024;
    const data = randomBytes(size);
    const want = checksum(data);
    await using pool = await Pool.open({ module: tasks, emulate: '3x2', log: false });
    const ref = await pool.share(data);
    expect(ref.bytes).toBe(size);
    const out = await pool.map<{ length: number; sum: number; shared: boolean; type: string; node: string }>('sumShared', Array(12).fill(ref), { chunksize: 1 });
    for (const r of out) expect(r).toMatchObject({ length: size, sum: want, shared: true, type: 'Buffer' });
    expect(new Set(out.map((r) => r.node)).size).toBe(3);
    const st = pool.sharedState();
    expect(st).toHaveLength(3);
    // The coordinator streams to two nodes; the third fetches from one of them (relay tree).
    expect(st.map((n) => n.bytesSent).sort()).toEqual([0, size, size]);
    for (const n of st) {
      expect(n.ready).toEqual([1]);
      expect(n.from[1] === 'coordinator' ? n.bytesSent : 0).toBe(n.from[1] === 'coordinator' ? size : 0);
      // everything the coordinator sent to the node over TCP: at most one copy of the data plus framing and chunks
      expect(n.linkBytesOut!).toBeLessThan(size * 1.01 + 256 * 1024);
    }
  });

  it('any msgpack-able value, passed inside starmap arguments; typed arrays keep their type; local mode shares memory', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const table = await pool.share({ a: 1, b: [2, 3], c: 'x' });
    expect(await pool.starmap('lookup', [['a', table], ['b', table], ['c', table]])).toEqual([1, [2, 3], 'x']);
    const f = await pool.share(new Float64Array([1.5, 2.5]));
    expect(await pool.map('sharedKind', [f, f])).toEqual([
      { type: 'Float64Array', shared: true, first: 1.5 },
      { type: 'Float64Array', shared: true, first: 1.5 },
    ]);
  });

  it('unshare releases the value on every node (the agents report it); a handle used after is a clear error', async () => {
    await using pool = await Pool.open({ module: tasks, emulate: '2x1', log: false });
    const ref = await pool.share(Buffer.from('hello'));
    expect((await pool.map<{ length: number }>('sumShared', [ref, ref], { chunksize: 1 })).map((r) => r.length)).toEqual([5, 5]);
    await pool.unshare(ref);
    for (const n of pool.sharedState()) expect(n.released).toEqual([1]);
    await expect(pool.map('sumShared', [ref])).rejects.toThrow(/shared value #1 is not on this node \(was it unshared with pool.unshare\?\)/);
  });

  it('an agent that joins after the share gets it: workers replaced after a crash still see it', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 1, retries: 1, log: false });
    const ref = await pool.share(new Uint8Array([9, 8, 7]));
    await pool.map('exitOn', [2]).catch(() => undefined); // kills and replaces the worker
    expect(await pool.map('sharedKind', [ref])).toEqual([{ type: 'Uint8Array', shared: true, first: 9 }]);
  });
});
