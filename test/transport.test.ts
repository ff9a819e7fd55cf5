// The coordinator's port against honest agents and hostile peers, over real loopback TCP.
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorServer, connectToCoordinator, MAX_PENDING_HANDSHAKES } from '../dist/transport/tcp.js';
import { encode, decode } from '../dist/protocol/codec.js';
import { decodeWithAttachments, encodeWithAttachments } from '../dist/protocol/attachments.js';
import { FrameDecoder } from '../dist/protocol/frames.js';
import { newSecret, proof } from '../dist/protocol/auth.js';
import { PROTOCOL_VERSION, checkFromAgent, checkToAgent } from '../dist/protocol/messages.js';

const servers: CoordinatorServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function server(opts: { handshakeTimeoutMs?: number } = {}) {
  const logs: string[] = [];
  const agents: { node: string; link: { close(): void; onMessage(h: (m: unknown) => void): void; send(m: unknown): void } }[] = [];
  const secret = newSecret();
  const s = new CoordinatorServer({ host: '127.0.0.1', secret, log: (l) => logs.push(l), onAgent: (link, node) => agents.push({ node, link }), ...opts });
  await s.listen();
  servers.push(s);
  return { s, logs, agents, secret, port: s.port };
}

function frame(v: unknown): Buffer {
  const body = encode(v);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length);
  return Buffer.concat([h, body]);
}

function raw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port }, () => resolve(c));
    c.on('error', reject);
  });
}

/** Resolves when the server has closed this socket; collects what it sent. */
function closed(c: Socket): Promise<Buffer> {
  const got: Buffer[] = [];
  c.on('data', (d) => got.push(d));
  return new Promise((resolve) => c.on('close', () => resolve(Buffer.concat(got))));
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('coordinator port', () => {
  it('an agent with the secret joins; the coordinator proves itself too', async () => {
    const { agents, secret, port } = await server();
    const link = await connectToCoordinator({ host: '127.0.0.1', port, secret, node: 'nA', log: () => undefined });
    await until(() => agents.length === 1);
    expect(agents[0]!.node).toBe('nA');
    const got: unknown[] = [];
    link.onMessage((m) => got.push(m));
    agents[0]!.link.send({ t: 'ping', at: 1 });
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ t: 'ping', at: 1 });
    link.close();
  });

  it('an agent facing a false coordinator (other secret) refuses it before running anything', async () => {
    const { port } = await server();
    await expect(connectToCoordinator({ host: '127.0.0.1', port, secret: newSecret(), node: 'nB', log: () => undefined })).rejects.toThrow(/failed to prove the job secret; refusing it/);
  });

  it('random bytes, wrong proof, wrong version, oversized and truncated frames: each closed with one log line naming peer and reason', async () => {
    const { logs, agents, port } = await server();
    const cases: [string, (c: Socket) => void, RegExp][] = [
      ['garbage', (c) => c.write(Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])), /undecodable handshake frame|first frame is not a hello/],
      ['wrong version', (c) => c.write(frame({ t: 'hello', v: 99, role: 'agent', node: 'x', nonce: Buffer.alloc(32) })), new RegExp(`expected protocol ${PROTOCOL_VERSION}, got 99`)],
      ['oversized', (c) => c.write(Buffer.from([0x7f, 0xff, 0xff, 0xff])), /frame of 2147483647 bytes is over the limit of 4096/],
      ['truncated', (c) => { c.write(Buffer.from([0, 0, 0, 100, 1, 2, 3])); c.end(); }, /connection closed during the handshake/],
      ['not hello', (c) => c.write(frame({ t: 'results', results: [] })), /first frame is not a hello/],
      ['deeply nested', (c) => {
        const body = Buffer.concat([Buffer.alloc(4000, 0x91), Buffer.from([0xc0])]); // [[[[…nil…]]]] 4000 deep
        const h = Buffer.alloc(4);
        h.writeUInt32BE(body.length);
        c.write(Buffer.concat([h, body]));
      }, /undecodable handshake frame|first frame is not a hello/],
      ['huge array header', (c) => c.write(Buffer.from([0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff])), /undecodable handshake frame/],
      ['huge map header', (c) => c.write(Buffer.from([0, 0, 0, 5, 0xdf, 0xff, 0xff, 0xff, 0xff])), /undecodable handshake frame/],
      ['huge string header', (c) => c.write(Buffer.from([0, 0, 0, 5, 0xdb, 0xff, 0xff, 0xff, 0xff])), /undecodable handshake frame/],
    ];
    for (const [name, act, re] of cases) {
      const before = logs.length;
      const c = await raw(port);
      const done = closed(c);
      act(c);
      await done;
      await until(() => logs.length === before + 1);
      expect(logs[before], name).toMatch(/^rejected connection from 127\.0\.0\.1:\d+: /);
      expect(logs[before], name).toMatch(re);
    }
    // wrong proof: follow the protocol with the wrong secret
    const c = await raw(port);
    const done = closed(c);
    const dec = new FrameDecoder(4096);
    const nonce = Buffer.alloc(32, 7);
    c.on('data', (d) =>
      dec.push(d, (b) => {
        const ch = decode(b) as { t: string; nonce: Uint8Array };
        if (ch.t === 'challenge') c.write(frame({ t: 'proof', proof: proof(newSecret(), 'agent', nonce, ch.nonce) }));
      }),
    );
    c.write(frame({ t: 'hello', v: PROTOCOL_VERSION, role: 'agent', node: 'evil', nonce }));
    await done;
    expect(logs.at(-1)).toMatch(/wrong proof of the job secret \(node "evil"\)/);
    expect(agents).toHaveLength(0);
  });

  it('a replayed handshake (a real agent\'s proof, sent again) is refused: the nonce is fresh each time', async () => {
    const { logs, agents, secret, port } = await server();
    // Record an honest handshake's frames as a passive observer would.
    const c1 = await raw(port);
    const dec = new FrameDecoder(4096);
    const nonce = Buffer.alloc(32, 1);
    let proofFrame: Buffer | null = null;
    c1.on('data', (d) =>
      dec.push(d, (b) => {
        const ch = decode(b) as { t: string; nonce: Uint8Array };
        if (ch.t === 'challenge') {
          proofFrame = frame({ t: 'proof', proof: proof(secret, 'agent', nonce, ch.nonce) });
          c1.write(proofFrame);
        }
      }),
    );
    c1.write(frame({ t: 'hello', v: PROTOCOL_VERSION, role: 'agent', node: 'honest', nonce }));
    await until(() => agents.length === 1);
    // Replay hello and proof without knowing the secret.
    const c2 = await raw(port);
    const done = closed(c2);
    c2.write(frame({ t: 'hello', v: PROTOCOL_VERSION, role: 'agent', node: 'honest', nonce }));
    await new Promise((r) => setTimeout(r, 50));
    c2.write(proofFrame!);
    await done;
    expect(logs.at(-1)).toMatch(/wrong proof of the job secret/);
    expect(agents).toHaveLength(1);
    c1.destroy();
  });

  it('slow or silent peers are dropped at the handshake deadline; idle connections never keep an agent out; refusals are logged as a summary', async () => {
    const { logs, s, secret, agents, port } = await server({ handshakeTimeoutMs: 300 });
    const slow = await raw(port);
    const slowDone = closed(slow);
    slow.write(Buffer.from([0, 0, 0, 200, 1, 2, 3])); // announces 200 bytes, sends 3, stalls
    const idle: Socket[] = [];
    for (let i = 0; i < 200; i++) idle.push(await raw(port));
    // An honest agent gets in while 200 strangers hold unauthenticated connections (the old cap was 64).
    const early = await connectToCoordinator({ host: '127.0.0.1', port, secret, node: 'early', log: () => undefined });
    await until(() => agents.length === 1);
    await slowDone;
    await until(() => idle.every((c) => c.destroyed || c.readableEnded) && s.rejected >= 201, 10_000);
    expect(logs.some((l) => l.includes('handshake not finished within 300 ms'))).toBe(true);
    // At most 20 lines one by one; the rest in one summary line with the count (said when the port closes at the latest).
    await s.close();
    const one = logs.filter((l) => l.startsWith('rejected connection from'));
    expect(one.length).toBe(20);
    const summary = logs.filter((l) => l.startsWith('rejected ') && l.includes('not logged one by one'));
    const counted = summary.reduce((n, l) => n + Number(/^rejected (\d+) more/.exec(l)![1]), 0);
    expect(one.length + counted).toBe(s.rejected);
    for (const c of idle) c.destroy();
    early.close();
  });

  it('past MAX_PENDING_HANDSHAKES the oldest connection of the source holding the most is dropped; new ones are never refused', async () => {
    const { s, port } = await server({ handshakeTimeoutMs: 30_000 });
    const idle: Socket[] = [];
    const t0 = Date.now();
    for (let i = 0; i < MAX_PENDING_HANDSHAKES + 5 && Date.now() - t0 < 30_000; i++) idle.push(await raw(port));
    await until(() => s.rejected >= 5, 10_000);
    // The first five (the oldest) were dropped to make room; the newest are still open.
    await until(() => idle.slice(0, 5).every((c) => c.destroyed || c.readableEnded), 5000);
    expect(idle.slice(-5).every((c) => !c.destroyed && !c.readableEnded)).toBe(true);
    for (const c of idle) c.destroy();
  });

  it('an agent dialling before the coordinator listens keeps trying with backoff and gets in', async () => {
    const { joinWithRetries } = await import('../dist/agent/main.js');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const secret = newSecret();
    const agents: string[] = [];
    const joining = joinWithRetries({ host: '127.0.0.1', port, secret, node: 'eager', log: () => undefined }, 20_000);
    await new Promise((r) => setTimeout(r, 400));
    const s = new CoordinatorServer({ host: '127.0.0.1', port, secret, log: () => undefined, onAgent: (_l, node) => agents.push(node) });
    await s.listen();
    servers.push(s);
    const link = await joining;
    await until(() => agents.length === 1);
    expect(agents).toEqual(['eager']);
    link.close();
  });

  it('a wrong secret is final: the agent does not retry', async () => {
    const { joinWithRetries } = await import('../dist/agent/main.js');
    const { port } = await server();
    const err = await joinWithRetries({ host: '127.0.0.1', port, secret: newSecret(), node: 'wrong', log: () => undefined }, 20_000).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/failed to prove the job secret/);
    expect((err as Error).message).not.toMatch(/after \d+ attempts/);
  });

  it('after the handshake, an unknown message or undecodable frame closes that link with one log line', async () => {
    const { logs, agents, secret, port } = await server();
    const link = await connectToCoordinator({ host: '127.0.0.1', port, secret, node: 'nC', log: () => undefined });
    await until(() => agents.length === 1);
    let closedWith: Error | undefined;
    let closedFlag = false;
    const a = agents[0]!.link as unknown as { onClose(h: (e?: Error) => void): void };
    a.onClose((e) => {
      closedWith = e;
      closedFlag = true;
    });
    link.send({ t: 'launchMissiles' } as never);
    await until(() => closedFlag);
    expect(String(closedWith)).toMatch(/unknown message type "launchMissiles"/);
    expect(logs.at(-1)).toMatch(/closed connection from nC \(127\.0\.0\.1:\d+\): unknown message type/);
  });
});

describe('fuzz', () => {
  it('tens of thousands of mutated frames: the decoder and message checks never crash or hang', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const linkFrame = (m: unknown) => {
      const parts = encodeWithAttachments(m);
      const body = Buffer.concat(parts);
      const h = Buffer.alloc(4);
      h.writeUInt32BE(body.length);
      return Buffer.concat([h, body]);
    };
    const samples = [
      linkFrame({ t: 'share', id: 1, kind: 'bytes', ctor: 'Buffer', total: 70_000, offset: 0, bytes: Buffer.alloc(70_000, 1) }),
      linkFrame({ t: 'chunks', chunks: [{ id: 2, job: 1, fn: 'f', kind: 'call', start: 0, items: Buffer.alloc(66_000, 2), count: 1, stopOnError: true, timeoutMs: 0 }] }),
      frame({ t: 'results', results: [{ id: 1, worker: 0, values: encode([1, 2]), failures: [], started: 1, ended: 2 }] }),
      frame({ t: 'ready', node: 'n1', workers: 2, cpus: 2, pid: 1, credits: 4 }),
      frame({ t: 'chunks', chunks: [{ id: 1, fn: 'f', kind: 'call', start: 0, items: encode([1]), count: 1, stopOnError: true, timeoutMs: 0, transfer: false }] }),
      frame({ t: 'hello', v: 1, role: 'agent', node: 'n', nonce: Buffer.alloc(32) }),
    ];
    const t0 = Date.now();
    let frames = 0;
    let rejected = 0;
    for (let i = 0; i < 30_000 && Date.now() - t0 < 20_000; i++) {
      const base = Buffer.from(samples[i % samples.length]!);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < flips; k++) base[Math.floor(rnd() * base.length)] = Math.floor(rnd() * 256);
      const dec = new FrameDecoder(1 << 20);
      try {
        dec.push(base, (body) => {
          frames++;
          for (const dec of [decode, decodeWithAttachments]) {
            let v: unknown;
            try {
              v = dec(body);
            } catch {
              rejected++;
              continue;
            }
            checkFromAgent(v);
            checkToAgent(v);
          }
        });
      } catch {
        rejected++;
      }
    }
    expect(frames + rejected).toBeGreaterThan(10_000);
  });
});

describe('a false coordinator', () => {
  it('that does not know the secret cannot make an agent run anything', async () => {
    // A stranger listens where the agent expects its coordinator, and answers with a made-up proof.
    const evil = createServer((c) => {
      c.on('data', () => c.write(frame({ t: 'challenge', v: PROTOCOL_VERSION, nonce: Buffer.alloc(32, 3), proof: Buffer.alloc(32, 9) })));
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    const port = (evil.address() as { port: number }).port;
    await expect(connectToCoordinator({ host: '127.0.0.1', port, secret: newSecret(), node: 'n', log: () => undefined })).rejects.toThrow(/failed to prove the job secret/);
    evil.close();
  });
});
