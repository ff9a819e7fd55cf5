// Frames over a real loopback TCP link: small frames written as one buffer, large ones with their
// attachments, sent in one tick (one corked batch) and across ticks, arrive whole and in order.
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorServer, connectToCoordinator } from '../dist/transport/tcp.js';
import { decodeListLike, encode, encodeList } from '../dist/protocol/codec.js';
import { Pool } from '../dist/index.js';
import { newSecret } from '../dist/protocol/auth.js';

const servers: CoordinatorServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A results message for chunk `id` whose values are `n` numbers id, id+1, … */
function results(id: number, n: number) {
  const values = encodeList(Array.from({ length: n }, (_, i) => id + i));
  return { t: 'results' as const, results: [{ id, worker: 0, values, failures: [], started: 1, ended: 2 }] };
}

describe('frames over TCP', () => {
  it('small and large frames, in one tick and across ticks, arrive whole and in order both ways', async () => {
    const secret = newSecret();
    let coord: { onMessage(h: (m: unknown) => void): void; send(m: unknown): void } | undefined;
    const s = new CoordinatorServer({ host: '127.0.0.1', secret, log: () => undefined, onAgent: (link) => (coord = link) });
    servers.push(s);
    await s.listen();
    const agent = await connectToCoordinator({ host: '127.0.0.1', port: s.port, secret, node: 'n1', log: () => undefined });
    await until(() => coord !== undefined);
    const got: { id: number; values: ArrayLike<unknown> }[] = [];
    coord!.onMessage((m) => {
      const r = (m as ReturnType<typeof results>).results[0]!;
      got.push({ id: r.id, values: decodeListLike(r.values) });
    });
    // Sizes on both sides of the one-buffer limit (16 KiB) and of the attachment threshold (64 KiB).
    const sizes = [1, 20, 2000, 2100, 9000, 3, 50_000, 17];
    const sent: [number, number][] = [];
    let id = 0;
    for (let round = 0; round < 3; round++) {
      // One tick: every frame goes in one corked batch.
      for (const n of sizes) {
        agent.send(results(++id * 1000, n));
        sent.push([id * 1000, n]);
      }
      await new Promise((r) => setImmediate(r));
    }
    await until(() => got.length === sent.length);
    expect(got.map((g) => g.id)).toEqual(sent.map(([i]) => i));
    for (let k = 0; k < sent.length; k++) {
      const [first, n] = sent[k]!;
      const v = got[k]!.values;
      expect([v.length, v[0], v[n - 1]]).toEqual([n, first, first + n - 1]);
    }
    // The other way: pings between chunk frames.
    const down: unknown[] = [];
    agent.onMessage((m) => down.push(m));
    for (let k = 0; k < 50; k++) coord!.send({ t: 'ping', at: k });
    await until(() => down.length === 50);
    expect(down.map((m) => (m as { at: number }).at)).toEqual(Array.from({ length: 50 }, (_, k) => k));
    agent.close();
  });

  it('results as workers encoded them are spliced into one results frame after the objects, whatever their array headers', async () => {
    const secret = newSecret();
    let coord: { onMessage(h: (m: unknown) => void): void } | undefined;
    const s = new CoordinatorServer({ host: '127.0.0.1', secret, log: () => undefined, onAgent: (link) => (coord = link) });
    servers.push(s);
    await s.listen();
    const agent = await connectToCoordinator({ host: '127.0.0.1', port: s.port, secret, node: 'n1', log: () => undefined });
    await until(() => coord !== undefined);
    const got: { t: string; results: { id: number; values: Uint8Array }[] }[] = [];
    coord!.onMessage((m) => got.push(m as (typeof got)[number]));
    const one = (id: number) => results(id, 20).results[0]!;
    // A fixarray (under 16 elements), an array16 (16 or more), and objects before them.
    const small = encode([one(10), one(11)]);
    const many = encode(Array.from({ length: 300 }, (_, i) => one(100 + i)));
    agent.sendResults([one(1)], [small, many]);
    agent.sendResults([], [small]);
    await until(() => got.length === 2);
    expect(got[0]!.t).toBe('results');
    expect(got[0]!.results.map((r) => r.id)).toEqual([1, 10, 11, ...Array.from({ length: 300 }, (_, i) => 100 + i)]);
    expect(Array.from(decodeListLike(got[0]!.results[302]!.values) as Float64Array).slice(0, 2)).toEqual([299 + 100, 300 + 100]);
    expect(got[1]!.results.map((r) => r.id)).toEqual([10, 11]);
    agent.close();
  });

  it('an agent over TCP forwards its workers’ results unread: values, failures and records arrive as they were made', async () => {
    const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);
    await using pool = await Pool.open({ module: tasks, emulate: { nodes: 1, cpusPerNode: 2 }, log: false });
    expect(await pool.apply('add', 2, 3)).toBe(5);
    const mixed = [1, 'a', null, [1, 2], { k: new Date(0) }, undefined, 10n ** 20n];
    expect(await pool.map('identity', mixed, { chunksize: 2 })).toEqual(mixed);
    await expect(pool.map('failOn', [1, 2, 3, 4], { chunksize: 1 })).rejects.toThrow(/bad item 3/);
    const recs = [];
    for await (const r of pool.imapRecords('failOn', [2, 3, 4], { chunksize: 1 })) recs.push(r);
    recs.sort((x, y) => x.index - y.index);
    expect(recs.map((r) => [r.index, r.ok, r.ok ? r.value : r.error!.name])).toEqual([[0, true, 2], [1, false, 'RangeError'], [2, true, 4]]);
    const big = Array.from({ length: 5000 }, (_, i) => i * 3);
    expect(await pool.map('identity', big, { chunksize: 7 })).toEqual(big);
  });
});
