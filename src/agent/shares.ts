// Shared values on one node: fetched from the coordinator or from another agent (whichever the
// coordinator names), assembled into one SharedArrayBuffer, and served on to other agents while
// they arrive (the relay tree of src/scheduler/share-tree.ts).
import type { FromAgent, RelayDown, RelayPeer, RelayUp, SharePiece, SharedKind } from '../protocol/messages.js';
import type { Link } from '../transport/link.js';
import type { SharedEntry } from './thread-messages.js';

/** Bytes per piece this agent relays (each one frame). */
export const RELAY_PIECE = 4 * 1024 * 1024;

/** How an agent reaches other agents of its job (absent for in-process agents: they never relay). */
export interface RelayTransport {
  /** Which agents this one can relay with (secretGroup of its secret): told to the coordinator when ready. */
  group: string;
  /** Open this agent's relay port; each child that proves the job secret is handed to onChild. */
  listen(onChild: (link: Link<RelayDown, RelayUp>) => void): Promise<{ host: string; port: number; close(): void }>;
  /** Dial another agent's relay port. */
  dial(peer: RelayPeer): Promise<Link<RelayUp, RelayDown>>;
}

interface Value {
  entry: SharedEntry;
  total: number;
  /** Bytes held, from 0: pieces arrive in order from one source at a time. */
  got: number;
  /** The link to the peer it is fetched from now, or 'coordinator'; null when complete or idle. */
  source: Link<RelayUp, RelayDown> | 'coordinator' | null;
  /** Children waiting for the next piece. */
  waiters: (() => void)[];
  /** Handed to the workers. */
  handed: boolean;
}

export interface NodeSharesHooks {
  send(m: FromAgent): void;
  /** The value is whole: hand it to the workers. */
  complete(entry: SharedEntry): void;
  /** Memory for a value (default: a new SharedArrayBuffer). bench/lib/sim-agents.mjs lets many simulated agents of one process share one. */
  alloc?(id: number, total: number): SharedArrayBuffer;
}

export class NodeShares {
  private readonly values = new Map<number, Value>();
  private readonly children = new Set<Link<RelayDown, RelayUp>>();
  private port: Promise<void> | null = null;
  private closePort: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly hooks: NodeSharesHooks,
    private readonly relay: RelayTransport | undefined,
  ) {}

  /** Values held whole, for workers started later. */
  completed(): SharedEntry[] {
    return [...this.values.values()].filter((v) => v.got === v.total).map((v) => v.entry);
  }

  /** The coordinator says where to get value `id` from. */
  fetch(m: { id: number; kind: SharedKind; ctor: string; total: number; peer?: RelayPeer }): void {
    const v = this.valueFor(m.id, m.kind, m.ctor, m.total);
    this.openPort();
    if (v.got === v.total) {
      this.finish(m.id, v);
      return;
    }
    this.dropSource(v);
    if (!m.peer) {
      v.source = 'coordinator';
      this.hooks.send({ t: 'want', id: m.id, from: v.got });
      return;
    }
    void this.fetchFrom(m.id, v, m.peer);
  }

  private async fetchFrom(id: number, v: Value, peer: RelayPeer): Promise<void> {
    const fail = (reason: string) => {
      if (this.values.get(id) !== v || v.got === v.total || this.stopped) return;
      v.source = null;
      this.hooks.send({ t: 'fetchFailed', id, got: v.got, reason: `from node ${peer.node} (${peer.host}:${peer.port}): ${reason}` });
    };
    let link: Link<RelayUp, RelayDown>;
    try {
      if (!this.relay) throw new Error('this agent cannot reach other agents');
      link = await this.relay.dial(peer);
    } catch (e) {
      fail((e as Error).message);
      return;
    }
    if (this.values.get(id) !== v || v.source !== null || v.got === v.total) {
      link.close(); // released, finished or given another source meanwhile
      return;
    }
    v.source = link;
    link.onMessage((m) => {
      if (v.source !== link) return;
      if (m.t === 'gone') {
        v.source = null; // so that closing it is not reported as a broken link
        link.close();
        fail(`the peer no longer has it (${m.reason})`);
      } else if (m.id === id) this.piece(m, link);
    });
    link.onClose((reason) => {
      if (v.source === link) fail(reason ? reason.message : 'connection closed');
    });
    link.send({ t: 'want', id, from: v.got });
  }

  /** One piece of a value, from the coordinator or from the peer link it is fetched from. */
  piece(p: SharePiece, from: Link<RelayUp, RelayDown> | 'coordinator' = 'coordinator'): void {
    const v = this.values.get(p.id);
    // Pieces come only after a fetch named their source; one from a source since replaced is stale.
    if (!v || v.source !== from) return;
    if (p.offset !== v.got || p.offset + p.bytes.length > v.total) {
      this.hooks.send({ t: 'log', level: 'error', text: `shared value ${p.id}: piece at ${p.offset} (+${p.bytes.length}) does not follow the ${v.got} of ${v.total} bytes held; dropped` });
      return;
    }
    // Buffer#copy is a memcpy; TypedArray#set into shared memory takes a slow path (3× slower here).
    Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength).copy(Buffer.from(v.entry.sab, p.offset, p.bytes.length));
    v.got += p.bytes.length;
    this.wake(v);
    if (v.got === v.total) this.finish(p.id, v);
  }

  /** The value is whole: the workers get it once; the coordinator hears it each time it asks. */
  private finish(id: number, v: Value): void {
    this.dropSource(v);
    if (!v.handed) {
      v.handed = true;
      this.hooks.complete(v.entry);
    }
    this.hooks.send({ t: 'shareState', id, state: 'ready', bytes: v.total });
  }

  /** Release a value on this node (workers are told separately). */
  unshare(id: number): void {
    const v = this.values.get(id);
    this.values.delete(id);
    if (v) {
      this.dropSource(v);
      this.wake(v);
    }
  }

  /** Close the relay port, the children's links and any fetch. */
  stop(): void {
    this.stopped = true;
    for (const v of this.values.values()) {
      this.dropSource(v);
      this.wake(v);
    }
    for (const c of this.children) c.close();
    this.closePort?.();
  }

  private valueFor(id: number, kind: SharedKind, ctor: string, total: number): Value {
    let v = this.values.get(id);
    if (!v) {
      v = { entry: { id, kind, ctor, sab: this.hooks.alloc ? this.hooks.alloc(id, total) : new SharedArrayBuffer(total) }, total, got: 0, source: null, waiters: [], handed: false };
      this.values.set(id, v);
    }
    return v;
  }

  private dropSource(v: Value): void {
    const s = v.source;
    v.source = null;
    if (s && s !== 'coordinator') s.close();
  }

  private wake(v: Value): void {
    const w = v.waiters;
    v.waiters = [];
    for (const f of w) f();
  }

  /** Open the relay port once, on the first value this node is to hold, and tell the coordinator. */
  private openPort(): void {
    if (!this.relay || this.port || this.stopped) return;
    const relay = this.relay;
    this.port = (async () => {
      try {
        const { host, port, close } = await relay.listen((link) => this.serveChild(link));
        if (this.stopped) {
          close();
          return;
        }
        this.closePort = close;
        this.hooks.send({ t: 'relay', host, port });
      } catch (e) {
        // Not fatal: this node then only receives; the coordinator gives it no children.
        this.hooks.send({ t: 'log', level: 'warn', text: `could not open a relay port for shared data: ${(e as Error).message}` });
      }
    })();
  }

  private serveChild(link: Link<RelayDown, RelayUp>): void {
    this.children.add(link);
    link.onClose(() => {
      this.children.delete(link);
      for (const v of this.values.values()) this.wake(v); // a loop waiting for its next piece sees the link closed
    });
    let serving = false;
    link.onMessage((m) => {
      if (serving) return; // one value per link
      serving = true;
      void this.serve(link, m.id, m.from);
    });
  }

  /** Send value `id` from byte `from` to a child, each piece as soon as this node holds it. */
  private async serve(link: Link<RelayDown, RelayUp>, id: number, from: number): Promise<void> {
    const v = this.values.get(id);
    const gone = (reason: string) => {
      link.send({ t: 'gone', id, reason });
      link.close();
    };
    if (!v) return gone('not held on this node');
    if (from > v.total) return gone(`asked from byte ${from} of ${v.total}`);
    let off = from;
    while (off < v.total) {
      if (link.closed || this.stopped) return;
      if (this.values.get(id) !== v) return gone('released');
      if (off >= v.got) {
        await new Promise<void>((r) => v.waiters.push(r));
        continue;
      }
      const n = Math.min(v.got - off, RELAY_PIECE);
      const { kind, ctor } = v.entry;
      link.send({ t: 'share', id, kind, ctor, total: v.total, offset: off, bytes: Buffer.from(v.entry.sab, off, n) });
      off += n;
      if (link.drained) await link.drained();
    }
    // The child closes the link once it holds the whole value.
  }
}
