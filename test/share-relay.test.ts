// Shared values relayed between agents over real authenticated TCP (NodeShares + RELAY_LINK), and
// end to end: the coordinator sends a value a few times whatever the node count.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';
import { NodeShares } from '../dist/agent/shares.js';
import { CoordinatorServer, RELAY_LINK, dial } from '../dist/transport/tcp.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);
const secret = 'b'.repeat(64);

/** One node's shared values with a real relay port on loopback; what it tells the coordinator is kept. */
function node(name: string, opts: { secret?: string } = {}) {
  const said: Record<string, unknown>[] = [];
  const whole: number[] = [];
  const servers: CoordinatorServer<never, never>[] = [];
  const s = opts.secret ?? secret;
  const shares = new NodeShares(
    { send: (m) => said.push(m as Record<string, unknown>), complete: (e) => whole.push(e.id) },
    {
      group: 'test',
      async listen(onChild) {
        const server = new CoordinatorServer({ host: '127.0.0.1', secret: s, log: () => undefined, kind: RELAY_LINK, onAgent: (l) => onChild(l) });
        await server.listen();
        servers.push(server as never);
        return { host: '127.0.0.1', port: server.port, close: () => void server.close() };
      },
      dial: (peer) => dial({ host: peer.host, port: peer.port, secret: s, node: name, log: () => undefined }, RELAY_LINK, `relay port of node ${peer.node}`),
    },
  );
  const port = async () => {
    for (let i = 0; i < 200; i++) {
      const r = said.find((m) => m.t === 'relay');
      if (r) return { node: name, host: r.host as string, port: r.port as number };
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new Error(`${name} opened no relay port`);
  };
  const until = async (f: () => boolean, what: string) => {
    for (let i = 0; i < 500 && !f(); i++) await new Promise((res) => setTimeout(res, 10));
    if (!f()) throw new Error(`${name}: ${what} never happened; said ${JSON.stringify(said.map((m) => m.t))}`);
  };
  return { shares, said, whole, port, until };
}

const PIECE = 1024 * 1024;
function feed(n: ReturnType<typeof node>, data: Buffer, id: number, from: number, to: number) {
  for (let off = from; off < to; off += PIECE) {
    n.shares.piece({ id, kind: 'bytes', ctor: 'Buffer', total: data.length, offset: off, bytes: data.subarray(off, Math.min(to, off + PIECE)) });
  }
}

describe('shared values relayed between agents', () => {
  it('a child gets each piece from a parent still receiving; the parent stops mid-way; the child resumes from its byte elsewhere', async () => {
    const data = randomBytes(8 * PIECE);
    const meta = { id: 1, kind: 'bytes' as const, ctor: 'Buffer', total: data.length };
    const p = node('p');
    const c = node('c');
    const q = node('q');
    p.shares.fetch(meta); // p: from the coordinator (the test plays it)
    expect(p.said[0]).toEqual({ t: 'want', id: 1, from: 0 });
    feed(p, data, 1, 0, 3 * PIECE);
    c.shares.fetch({ ...meta, peer: await p.port() });
    await c.until(() => c.shares.completed().length === 0 && (c.shares as unknown as { values: Map<number, { got: number }> }).values.get(1)?.got === 3 * PIECE, 'the first 3 pieces relayed');
    feed(p, data, 1, 3 * PIECE, 5 * PIECE); // relayed as they come
    await c.until(() => (c.shares as unknown as { values: Map<number, { got: number }> }).values.get(1)?.got === 5 * PIECE, 'pieces 4-5 relayed');
    p.shares.stop(); // the parent goes (its agent stopped)
    await c.until(() => c.said.some((m) => m.t === 'fetchFailed'), 'fetchFailed');
    const failed = c.said.find((m) => m.t === 'fetchFailed')!;
    expect(failed).toMatchObject({ id: 1, got: 5 * PIECE });
    expect(failed.reason).toMatch(/^from node p \(127\.0\.0\.1:\d+\): /);
    // q holds the whole value; the coordinator names it as c's new source.
    q.shares.fetch(meta);
    feed(q, data, 1, 0, data.length);
    expect(q.whole).toEqual([1]);
    c.shares.fetch({ ...meta, peer: await q.port() });
    await c.until(() => c.whole.length === 1, 'complete');
    expect(c.said.filter((m) => m.t === 'shareState')).toEqual([{ t: 'shareState', id: 1, state: 'ready', bytes: data.length }]);
    const got = Buffer.from(c.shares.completed()[0]!.sab);
    expect(got.equals(data)).toBe(true);
    for (const n of [c, q]) n.shares.stop();
  });

  it('a relay port refuses a peer with the wrong secret and anyone asking for more than a share', async () => {
    const p = node('p');
    p.shares.fetch({ id: 1, kind: 'bytes', ctor: 'Buffer', total: 4 });
    p.shares.piece({ id: 1, kind: 'bytes', ctor: 'Buffer', total: 4, offset: 0, bytes: Buffer.from([1, 2, 3, 4]) });
    const peer = await p.port();
    const intruder = node('x', { secret: 'c'.repeat(64) });
    intruder.shares.fetch({ id: 1, kind: 'bytes', ctor: 'Buffer', total: 4, peer });
    await intruder.until(() => intruder.said.some((m) => m.t === 'fetchFailed'), 'refusal');
    expect(String(intruder.said.find((m) => m.t === 'fetchFailed')!.reason)).toMatch(/did not accept|refused|failed to prove|closed/);
    expect(intruder.whole).toEqual([]);
    // a coordinator-role dialler is refused by a relay port, and a relay child by nothing else
    await expect(dial({ host: peer.host, port: peer.port, secret, node: 'y', log: () => undefined, timeoutMs: 3000 }, { server: 'relay-parent', client: 'agent', toServer: () => null, toClient: () => null }, 'relay')).rejects.toThrow(/takes relay-child connections/);
    // a value the parent does not hold: 'gone', then fetchFailed naming why
    const c = node('c');
    c.shares.fetch({ id: 9, kind: 'bytes', ctor: 'Buffer', total: 4, peer });
    await c.until(() => c.said.some((m) => m.t === 'fetchFailed'), 'gone');
    expect(String(c.said.find((m) => m.t === 'fetchFailed')!.reason)).toMatch(/no longer has it \(not held on this node\)/);
    for (const n of [p, intruder, c]) n.shares.stop();
  });

  it('6 emulated nodes: the coordinator sends a 32 MiB value at most twice, the rest relay it, every task reads the right bytes', async () => {
    const size = 32 * 1024 * 1024;
    const data = randomBytes(size);
    let want = 0;
    for (let i = 0; i < size; i++) want += data[i]!;
    await using pool = await Pool.open({ module: tasks, emulate: '6x1', log: false });
    const ref = await pool.share(data);
    const out = await pool.map<{ length: number; sum: number; shared: boolean; node: string }>('sumShared', Array(12).fill(ref), { chunksize: 1 });
    for (const r of out) expect(r).toMatchObject({ length: size, sum: want, shared: true });
    const st = pool.sharedState();
    expect(st).toHaveLength(6);
    const sent = st.reduce((s, n) => s + n.bytesSent, 0);
    expect(sent).toBeLessThanOrEqual(2 * size);
    expect(st.filter((n) => n.from[1] === 'coordinator')).toHaveLength(2);
    const relayed = st.filter((n) => n.from[1] !== 'coordinator');
    expect(relayed).toHaveLength(4);
    for (const n of relayed) expect(st.map((x) => x.node)).toContain(n.from[1]);
    for (const n of st) expect(n.ready).toEqual([1]);
    await pool.unshare(ref);
    for (const n of pool.sharedState()) expect(n.released).toEqual([1]);
  });

  it('SLURMPOOL_RELAY=0 (nodes that cannot reach each other): no relay port, every node gets the value from the coordinator', async () => {
    const before = process.env.SLURMPOOL_RELAY;
    process.env.SLURMPOOL_RELAY = '0';
    try {
      await using pool = await Pool.open({ module: tasks, emulate: '3x1', log: false });
      const ref = await pool.share(Buffer.alloc(3 * 1024 * 1024, 7));
      const out = await pool.map<{ length: number; sum: number }>('sumShared', [ref, ref, ref], { chunksize: 1 });
      for (const r of out) expect(r).toMatchObject({ length: 3 * 1024 * 1024, sum: 7 * 3 * 1024 * 1024 });
      const st = pool.sharedState();
      expect(st.map((n) => n.from[1])).toEqual(['coordinator', 'coordinator', 'coordinator']);
      expect(st.map((n) => n.bytesSent)).toEqual([3 * 1024 * 1024, 3 * 1024 * 1024, 3 * 1024 * 1024]);
    } finally {
      if (before === undefined) delete process.env.SLURMPOOL_RELAY;
      else process.env.SLURMPOOL_RELAY = before;
    }
  });
});
