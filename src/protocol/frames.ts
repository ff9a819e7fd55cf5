// Length-prefixed frames: a 4-byte big-endian length, then that many bytes of msgpack.
import { ProtocolError } from '../errors.js';

/**
 * Largest frame accepted after authentication: 1 GiB (a chunk of large items travels as one frame; a
 * chunk larger than this is refused by the coordinator as a failed item, never sent; shared values go
 * in 4 MiB pieces).
 */
export const MAX_FRAME = 1024 * 1024 * 1024;
/** Largest frame accepted before a peer has proved it holds the job's secret. */
export const MAX_HANDSHAKE_FRAME = 4096;

/** The 4-byte header for a body of this length. */
export function frameHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(length, 0);
  return h;
}

/** Cuts a byte stream into frames; throws ProtocolError on a frame over the limit. */
export class FrameDecoder {
  private bufs: Buffer[] = [];
  private have = 0;
  private need = -1;
  constructor(public maxFrame: number) {}

  /** Bytes buffered toward an unfinished frame. */
  get buffered(): number {
    return this.have;
  }

  /** True while a frame has started but not finished (for stall detection). */
  get partial(): boolean {
    return this.have > 0;
  }

  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.bufs.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.have < 4) return;
        const head = this.take(4);
        this.need = head.readUInt32BE(0);
        if (this.need === 0) throw new ProtocolError('empty frame (length 0): no message is empty');
        if (this.need > this.maxFrame) {
          throw new ProtocolError(`frame of ${this.need} bytes is over the limit of ${this.maxFrame}`);
        }
      }
      if (this.have < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      onFrame(body);
    }
  }

  private take(n: number): Buffer {
    const first = this.bufs[0]!;
    if (first.length === n) {
      this.bufs.shift();
      this.have -= n;
      return first;
    }
    if (first.length > n) {
      this.bufs[0] = first.subarray(n);
      this.have -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const b = this.bufs[0]!;
      const k = Math.min(b.length, n - off);
      b.copy(out, off, 0, k);
      off += k;
      if (k === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(k);
    }
    this.have -= n;
    return out;
  }
}
