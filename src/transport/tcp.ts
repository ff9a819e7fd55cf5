// TCP links: msgpack frames over a socket, opened only after both sides prove they hold the job secret.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { ProtocolError } from '../errors.js';
import { newNonce, proof, proofMatches, type AuthRole } from '../protocol/auth.js';
import { arrayHeader, decode, encode, writeArrayHeader } from '../protocol/codec.js';
import { decodeWithAttachments, encodeWithAttachments } from '../protocol/attachments.js';
import { FrameDecoder, frameHeader, MAX_FRAME, MAX_HANDSHAKE_FRAME } from '../protocol/frames.js';
import { PROTOCOL_VERSION, checkFromAgent, checkRelayDown, checkRelayUp, checkToAgent, type FromAgent, type Handshake, type RelayDown, type RelayUp, type ToAgent } from '../protocol/messages.js';
import type { Link } from './link.js';

/** A handshake not finished in this time is dropped (slow or silent peers). */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/**
 * Connections still in their handshake at once. A new connection is never refused for being one too
 * many: when this many are pending, the oldest pending connection of the source address that holds
 * the most is dropped instead. Each costs at most one 4 KiB frame buffer and lives at most
 * HANDSHAKE_TIMEOUT_MS, so unauthenticated peers hold at most about 16 MiB, whoever they are, and
 * an agent whose attempt was dropped dials again (agents retry with backoff until their deadline).
 */
export const MAX_PENDING_HANDSHAKES = 4096;
/** Refused connections: the first REFUSAL_BURST of each period get a line each, the rest one summary line at its end. */
const REFUSAL_LOG_MS = 10_000;
const REFUSAL_BURST = 20;

/** msgpack of a map of two entries, `t: 'results'`, and the key `results`: what precedes a results message's list. */
const RESULTS_PREFIX = Buffer.from([0x82, 0xa1, 0x74, 0xa7, ...Buffer.from('results'), 0xa7, ...Buffer.from('results')]);

/** Frames up to this size (without attachments) are written as one buffer. */
const SMALL_FRAME = 16 * 1024;

function frame(msg: unknown): Buffer {
  const body = encode(msg);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

function peerOf(s: Socket): string {
  const a = s.remoteAddress ?? '?';
  return `${a.includes(':') ? `[${a}]` : a}:${s.remotePort ?? '?'}`;
}

/** One authenticated connection, carrying typed messages both ways. */
export class TcpLink<Out, In> implements Link<Out, In> {
  private handler: ((m: In) => void) | undefined;
  private closeHandler: ((reason?: Error) => void) | undefined;
  private pending: In[] = [];
  closed = false;
  /** Called on every frame received (liveness). */
  onHeard: (() => void) | undefined;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    private readonly socket: Socket,
    private readonly decoder: FrameDecoder,
    readonly peer: string,
    private readonly check: (v: unknown) => string | null,
    private readonly log: (line: string) => void,
  ) {
    decoder.maxFrame = MAX_FRAME;
    // A peer whose host vanished (no FIN, no RST) is found by the kernel, at no cost to either loop.
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.close(e));
    socket.on('close', () => this.close());
  }

  /** This end's address on the connection: the interface peers of the same network reach this host by. */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  /** Frames that arrived together with the handshake's last one belong to the link. */
  feed(frames: Buffer[]): void {
    for (const f of frames) {
      let m: unknown;
      let bad: string | null;
      try {
        m = decodeWithAttachments(f);
        bad = this.check(m);
      } catch (e) {
        bad = `undecodable frame (${(e as Error).message})`;
      }
      if (bad) {
        this.log(`closed connection from ${this.peer}: ${bad}`);
        this.close(new ProtocolError(bad));
        return;
      }
      this.pending.push(m as In);
    }
  }

  private onData(d: Buffer): void {
    if (this.closed) return;
    this.bytesIn += d.length;
    this.onHeard?.();
    try {
      this.decoder.push(d, (body) => {
        let msg: unknown;
        try {
          msg = decodeWithAttachments(body);
        } catch (e) {
          throw new ProtocolError(`undecodable frame (${(e as Error).message})`);
        }
        const bad = this.check(msg);
        if (bad) throw new ProtocolError(bad);
        if (this.handler) this.handler(msg as In);
        else this.pending.push(msg as In);
      });
    } catch (e) {
      const reason = e instanceof ProtocolError ? e.message : `failed: ${(e as Error).message}`;
      this.log(`closed connection from ${this.peer}: ${reason}`);
      this.close(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** The socket is corked until the next tick: frames sent meanwhile leave in one system call. */
  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  private corkForTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.uncork);
  }

  send(msg: Out): void {
    if (this.closed) return;
    const parts = encodeWithAttachments(msg);
    let n = 0;
    for (const p of parts) n += p.byteLength;
    this.bytesOut += 4 + n;
    this.corkForTick();
    if (parts.length === 2 && n <= SMALL_FRAME) {
      // A small frame (no attachment) is copied into one buffer: one write, not three.
      const out = Buffer.allocUnsafe(4 + n);
      out.writeUInt32BE(n, 0);
      out.set(parts[0]!, 4);
      out.set(parts[1]!, 4 + parts[0]!.byteLength);
      this.socket.write(out);
      return;
    }
    // Header, body and large binary fields as writes in the corked batch: nothing is copied.
    this.socket.write(frameHeader(n));
    for (const p of parts) this.socket.write(p);
  }

  /**
   * A results message made of `results` and of results already encoded by workers (msgpack arrays),
   * spliced into one frame as `{ t: 'results', results: [...] }` would be encoded: the elements of
   * each encoded array follow those of `results` under one array header. The peer reads it as any
   * results frame.
   */
  sendResults(results: unknown[], encoded: Uint8Array[]): void {
    if (this.closed) return;
    const lists = results.length > 0 ? [encode(results), ...encoded] : encoded;
    let count = 0;
    let bytes = 0;
    const items: Uint8Array[] = [];
    for (const list of lists) {
      const [n, h] = arrayHeader(list);
      count += n;
      bytes += list.byteLength - h;
      items.push(list.subarray(h));
    }
    const head = Buffer.allocUnsafe(RESULTS_PREFIX.byteLength + 5);
    head.set(RESULTS_PREFIX, 0);
    const body = RESULTS_PREFIX.byteLength + writeArrayHeader(head.subarray(RESULTS_PREFIX.byteLength), count) + bytes;
    const n = 4 + body;
    this.bytesOut += 4 + n;
    const out = Buffer.allocUnsafe(4 + n);
    out.writeUInt32BE(n, 0);
    out.writeUInt32BE(body, 4);
    let at = 8 + body - bytes;
    head.copy(out, 8, 0, body - bytes);
    for (const it of items) {
      out.set(it, at);
      at += it.byteLength;
    }
    this.corkForTick();
    this.socket.write(out);
  }

  /** Resolves once the socket's user-space buffer is below 32 MiB, so bulk senders do not pile up gigabytes. */
  drained(): Promise<void> {
    if (this.closed || this.socket.writableLength < 32 * 1024 * 1024) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  onMessage(handler: (m: In) => void): void {
    this.handler = handler;
    const p = this.pending;
    this.pending = [];
    for (const m of p) handler(m);
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandler = handler;
    if (this.closed) queueMicrotask(() => handler());
  }

  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    // Give the peer a moment to read our last frame, then make sure the socket is gone.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.closeHandler?.(reason);
  }
}

/** Read handshake frames one at a time from a socket, with a small frame limit and a deadline. */
class HandshakeReader {
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME);
  /** Frames not yet read: decoded one at a time, since those after the handshake are link frames. */
  private queue: Buffer[] = [];
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;
  private readonly onData = (d: Buffer) => {
    try {
      this.decoder.push(d, (body) => this.queue.push(body));
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.deliver();
  };
  private readonly onEnd = () => this.fail(new ProtocolError('connection closed during the handshake'));
  private readonly onError = (e: Error) => this.fail(e);

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.waiting?.reject(e);
    this.waiting = null;
  }

  private deliver(): void {
    if (this.waiting && this.queue.length) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(this.queue.shift());
    }
  }

  private raw(): Promise<Buffer> {
    if (this.queue.length) return Promise.resolve(this.queue.shift()!);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve: resolve as (v: unknown) => void, reject };
    });
  }

  async next(): Promise<unknown> {
    const body = await this.raw();
    try {
      return decode(body);
    } catch (e) {
      throw new ProtocolError(`undecodable handshake frame (${(e as Error).message})`);
    }
  }

  /** Stop reading for the handshake; returns the decoder (with any partial frame) and unread messages. */
  detach(): { decoder: FrameDecoder; extra: Buffer[] } {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return { decoder: this.decoder, extra: this.queue };
  }
}

function isMsg<T extends Handshake['t']>(v: unknown, t: T): v is Extract<Handshake, { t: T }> {
  return typeof v === 'object' && v !== null && (v as { t?: unknown }).t === t;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new ProtocolError(`${what} not finished within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A kind of connection: the role the listening side proves, the one the dialling side proves, and
 * the checks of what each receives. Down: listener → dialler messages; Up: dialler → listener.
 */
export interface LinkKind<Down, Up> {
  server: AuthRole;
  client: AuthRole;
  /** Checks each message the listening side receives. */
  toServer: (v: unknown) => string | null;
  /** Checks each message the dialling side receives. */
  toClient: (v: unknown) => string | null;
  /** Phantom fields for the message types (never set). */
  readonly down?: Down;
  readonly up?: Up;
}

/** The coordinator's port: agents dial in. */
export const AGENT_LINK: LinkKind<ToAgent, FromAgent> = { server: 'coordinator', client: 'agent', toServer: checkFromAgent, toClient: checkToAgent };
/** An agent's relay port: other agents of the same job dial in to fetch shared values. */
export const RELAY_LINK: LinkKind<RelayDown, RelayUp> = { server: 'relay-parent', client: 'relay-child', toServer: checkRelayUp, toClient: checkRelayDown };

export interface CoordinatorServerOptions<Out = ToAgent, In = FromAgent> {
  host: string;
  port?: number;
  secret: string;
  log: (line: string) => void;
  /** Default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
  /** An agent passed the handshake. */
  onAgent: (link: TcpLink<Out, In>, node: string) => void;
  /** Default AGENT_LINK (the coordinator's port); agents serving shared data to each other use RELAY_LINK. */
  kind?: LinkKind<Out, In>;
}

/** A listening port (the coordinator's, or an agent's relay port). Only peers that prove the job secret get a link. */
export class CoordinatorServer<Out = ToAgent, In = FromAgent> {
  private server: Server | null = null;
  /** Sockets still in their handshake, oldest first, and how many each source address holds. */
  private readonly pending = new Set<Socket>();
  private readonly pendingBySource = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  port = 0;
  get host(): string {
    return this.opts.host;
  }
  /** Connections refused (wrong proof, malformed, timed out, dropped for room). */
  rejected = 0;
  /** Refusals not yet logged, by reason; logged as one summary line per REFUSAL_LOG_MS. */
  private readonly unlogged = new Map<string, number>();
  private periodStart = 0;
  private loggedInPeriod = 0;
  private refusalTimer: NodeJS.Timeout | undefined;

  private readonly kind: LinkKind<Out, In>;

  constructor(private readonly opts: CoordinatorServerOptions<Out, In>) {
    this.kind = opts.kind ?? (AGENT_LINK as unknown as LinkKind<Out, In>);
  }

  async listen(): Promise<void> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    server.maxConnections = 100_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A deep backlog: every srun task dials at the same moment (the kernel caps it at somaxconn).
      server.listen({ host: this.opts.host, port: this.opts.port ?? 0, exclusive: true, backlog: 65_535 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  private accept(s: Socket): void {
    const peer = peerOf(s);
    const source = s.remoteAddress ?? '?';
    this.sockets.add(s);
    if (!this.refd) s.unref();
    s.on('close', () => this.sockets.delete(s));
    if (this.pending.size >= MAX_PENDING_HANDSHAKES) this.evict();
    this.pending.add(s);
    this.pendingBySource.set(source, (this.pendingBySource.get(source) ?? 0) + 1);
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      this.pending.delete(s);
      const n = (this.pendingBySource.get(source) ?? 1) - 1;
      if (n > 0) this.pendingBySource.set(source, n);
      else this.pendingBySource.delete(source);
    };
    s.once('close', done);
    withDeadline(this.handshake(s, peer), this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS, 'handshake')
      .then(done, (e: Error) => {
        done();
        this.reject(s, peer, e.message);
      });
  }

  /** Room for one more: drop the oldest pending connection of the source that holds the most. */
  private evict(): void {
    let worst = '';
    let most = 0;
    for (const [src, n] of this.pendingBySource) if (n > most) [worst, most] = [src, n];
    for (const s of this.pending) {
      if ((s.remoteAddress ?? '?') === worst) {
        this.reject(s, peerOf(s), `dropped unauthenticated connection to make room (${MAX_PENDING_HANDSHAKES} pending, ${most} from ${worst})`);
        this.pending.delete(s);
        return;
      }
    }
  }

  /** Sockets already refused (an evicted one's handshake then fails too: counted once). */
  private readonly refused = new WeakSet<Socket>();

  private reject(s: Socket, peer: string, reason: string): void {
    if (this.refused.has(s)) return;
    this.refused.add(s);
    this.rejected++;
    s.destroy();
    const now = Date.now();
    if (now - this.periodStart >= REFUSAL_LOG_MS) {
      this.flushRefusals();
      this.periodStart = now;
      this.loggedInPeriod = 0;
    }
    if (this.loggedInPeriod < REFUSAL_BURST) {
      this.loggedInPeriod++;
      this.opts.log(`rejected connection from ${peer}: ${reason}`);
      return;
    }
    // A flood: counted by reason, and said in one line at the end of the period.
    const key = reason.replace(/ \(node "[^"]*"\)/, '').replace(/\d+/g, 'N');
    this.unlogged.set(key, (this.unlogged.get(key) ?? 0) + 1);
    if (!this.refusalTimer) {
      this.refusalTimer = setTimeout(() => this.flushRefusals(), Math.max(0, REFUSAL_LOG_MS - (now - this.periodStart)));
      this.refusalTimer.unref();
    }
  }

  private flushRefusals(): void {
    clearTimeout(this.refusalTimer);
    this.refusalTimer = undefined;
    if (this.unlogged.size === 0) return;
    let total = 0;
    for (const n of this.unlogged.values()) total += n;
    const why = [...this.unlogged].map(([r, n]) => `${n} × ${r}`).join('; ');
    this.unlogged.clear();
    this.opts.log(`rejected ${total} more connection(s) in ${REFUSAL_LOG_MS / 1000} s, not logged one by one: ${why}`);
  }

  private async handshake(s: Socket, peer: string): Promise<void> {
    const r = new HandshakeReader(s);
    const hello = await r.next();
    if (!isMsg(hello, 'hello')) throw new ProtocolError('first frame is not a hello');
    if (hello.role !== this.kind.client) {
      s.write(frame({ t: 'reject', reason: `this port takes ${this.kind.client} connections, not ${String(hello.role).slice(0, 20)}` } satisfies Handshake));
      throw new ProtocolError(`a ${String(hello.role).slice(0, 20)} dialled a port for ${this.kind.client} connections`);
    }
    if (hello.v !== PROTOCOL_VERSION) {
      s.write(frame({ t: 'reject', reason: `expected protocol ${PROTOCOL_VERSION}, got ${String(hello.v)}` } satisfies Handshake));
      throw new ProtocolError(`expected protocol ${PROTOCOL_VERSION}, got ${String(hello.v)}`);
    }
    if (!(hello.nonce instanceof Uint8Array) || hello.nonce.length < 16 || typeof hello.node !== 'string' || hello.node.length > 256) {
      throw new ProtocolError('malformed hello');
    }
    const nonce = newNonce();
    s.write(frame({ t: 'challenge', v: PROTOCOL_VERSION, nonce, proof: proof(this.opts.secret, this.kind.server, hello.nonce, nonce) } satisfies Handshake));
    const p = await r.next();
    if (!isMsg(p, 'proof')) throw new ProtocolError('second frame is not a proof');
    if (!proofMatches(p.proof, proof(this.opts.secret, this.kind.client, hello.nonce, nonce))) {
      throw new ProtocolError(`wrong proof of the job secret (node ${JSON.stringify(hello.node)})`);
    }
    s.write(frame({ t: 'welcome' } satisfies Handshake));
    const { decoder, extra } = r.detach();
    if (extra.length) throw new ProtocolError('agent sent messages before the handshake finished');
    const link = new TcpLink<Out, In>(s, decoder, `${hello.node} (${peer})`, this.kind.toServer, this.opts.log);
    this.opts.onAgent(link, hello.node);
  }

  private refd = true;

  /** Keep the process alive for the port and every agent's socket (work in flight). */
  ref(): void {
    this.refd = true;
    this.server?.ref();
    for (const s of this.sockets) s.ref();
  }

  /** Let the process exit while the pool is idle: the port and every agent's socket unreferenced. */
  unref(): void {
    this.refd = false;
    this.server?.unref();
    for (const s of this.sockets) s.unref();
  }

  async close(): Promise<void> {
    this.flushRefusals();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Agent side: connect, prove the secret, check the coordinator's proof, return the link. */
export function connectToCoordinator(opts: DialOptions): Promise<TcpLink<FromAgent, ToAgent>> {
  return dial(opts, AGENT_LINK, 'coordinator');
}

export interface DialOptions {
  host: string;
  port: number;
  secret: string;
  node: string;
  log: (line: string) => void;
  timeoutMs?: number;
}

/**
 * The dialling side of an authenticated link: connect, prove the secret for kind.client, check the
 * listener's proof for kind.server; kind.toClient checks what the listener sends afterwards.
 */
export async function dial<Down, Up>(opts: DialOptions, kind: LinkKind<Down, Up>, what: string): Promise<TcpLink<Up, Down>> {
  const s = connect({ host: opts.host, port: opts.port, noDelay: true });
  const where = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const role = kind.client === 'agent' ? 'agent' : 'peer';
  try {
    return await withDeadline(
      (async () => {
        await new Promise<void>((resolve, reject) => {
          s.once('connect', resolve);
          s.once('error', reject);
        });
        const r = new HandshakeReader(s);
        const nonce = newNonce();
        s.write(frame({ t: 'hello', v: PROTOCOL_VERSION, role: kind.client, node: opts.node, nonce } satisfies Handshake));
        const ch = await r.next();
        if (isMsg(ch, 'reject')) throw new ProtocolError(`${what} at ${where} refused this ${role}: ${ch.reason}`);
        if (!isMsg(ch, 'challenge')) throw new ProtocolError(`${what} at ${where} sent no challenge`);
        if (ch.v !== PROTOCOL_VERSION) throw new ProtocolError(`${what} at ${where} speaks protocol ${String(ch.v)}, expected ${PROTOCOL_VERSION}`);
        if (!(ch.nonce instanceof Uint8Array) || !proofMatches(ch.proof, proof(opts.secret, kind.server, nonce, ch.nonce))) {
          throw new ProtocolError(`${what} at ${where} failed to prove the job secret; refusing it`);
        }
        s.write(frame({ t: 'proof', proof: proof(opts.secret, kind.client, nonce, ch.nonce) } satisfies Handshake));
        const w = await r.next();
        if (!isMsg(w, 'welcome')) throw new ProtocolError(`${what} at ${where} did not accept this ${role}'s proof`);
        const { decoder, extra } = r.detach();
        const link = new TcpLink<Up, Down>(s, decoder, `${what} ${where}`, kind.toClient, opts.log);
        link.feed(extra);
        return link;
      })(),
      opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS * 2,
      `connecting to the ${what} at ${where}`,
    );
  } catch (e) {
    s.destroy();
    throw e;
  }
}
