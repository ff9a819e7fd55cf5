// Frames over a real loopback TCP link: small frames written as one buffer, large ones with their
// attachments, sent in one tick (one corked batch) and across ticks, arrive whole and in order.
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorServer, connectToCoordinator } from '../dist/transport/tcp.js';
import { decodeListLike, encodeList } from '../dist/protocol/codec.js';
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
});
