// Large binary fields of a message travel after its msgpack body, as raw bytes: written without a
// copy, read as views of the frame. (msgpackr copies a large buffer into a fresh output buffer of its
// own, at ~60 MB/s for 16 MiB here; a socket write of the same bytes costs nothing.)
import { decode, encode, LARGE_BYTES } from './codec.js';

type Slot = [holder: Record<string, unknown>, key: string];

/** The binary fields of a message that may be large: share pieces, chunk items, result values. */
function slots(m: Record<string, unknown>): Slot[] {
  switch (m.t) {
    case 'share':
      return [[m, 'bytes']];
    case 'chunks':
      return (m.chunks as Record<string, unknown>[]).map((c) => [c, 'items'] as Slot);
    case 'results':
      return (m.results as Record<string, unknown>[]).map((r) => [r, 'values'] as Slot);
    default:
      return [];
  }
}

/**
 * Encode a message as [u32 body length][msgpack body][attachments…]; returns the pieces to write in
 * order (the attachments are the caller's own bytes, not copied).
 */
export function encodeWithAttachments(msg: unknown): Uint8Array[] {
  const m = msg as Record<string, unknown>;
  const found = slots(m);
  let atts: Uint8Array[] | null = null;
  let marks: number[] | null = null;
  let head: Record<string, unknown> = m;
  found.forEach(([holder, key], i) => {
    const v = holder[key];
    if (!(v instanceof Uint8Array) || v.byteLength < LARGE_BYTES) return;
    if (!atts) {
      atts = [];
      marks = [];
      // Copy the containers on the way, so the caller's message is left as it was.
      head = m.t === 'share' ? { ...m } : m.t === 'chunks' ? { ...m, chunks: [...(m.chunks as unknown[])] } : { ...m, results: [...(m.results as unknown[])] };
    }
    const list = (head.t === 'share' ? null : (head[head.t === 'chunks' ? 'chunks' : 'results'] as Record<string, unknown>[]))!;
    if (head.t === 'share') head[key] = null;
    else list[i] = { ...holder, [key]: null };
    atts.push(v);
    marks!.push(i, v.byteLength);
  });
  if (atts) head.$att = marks;
  const body = encode(head);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(body.byteLength, 0);
  return atts ? [len, body, ...(atts as Uint8Array[])] : [len, body];
}

/** Decode a frame written by encodeWithAttachments; attachments come back as views of the frame. */
export function decodeWithAttachments(frame: Buffer): unknown {
  if (frame.length < 4) throw new RangeError('frame shorter than its body length');
  const bodyLen = frame.readUInt32BE(0);
  if (4 + bodyLen > frame.length) throw new RangeError(`body of ${bodyLen} bytes does not fit a frame of ${frame.length}`);
  const m = decode(frame.subarray(4, 4 + bodyLen)) as Record<string, unknown>;
  const marks = m !== null && typeof m === 'object' ? m.$att : undefined;
  if (marks === undefined) return m;
  delete m.$att;
  if (!Array.isArray(marks) || marks.length % 2) throw new TypeError('malformed attachment list');
  const found = slots(m);
  let off = 4 + bodyLen;
  for (let k = 0; k < marks.length; k += 2) {
    const i = marks[k] as number;
    const n = marks[k + 1] as number;
    const slot = found[i];
    if (!slot || !Number.isInteger(n) || n < 0 || off + n > frame.length) throw new RangeError('attachment outside its frame');
    slot[0][slot[1]] = frame.subarray(off, off + n);
    off += n;
  }
  if (off !== frame.length) throw new RangeError(`${frame.length - off} bytes after the last attachment`);
  return m;
}
