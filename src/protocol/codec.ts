// One codec for every boundary (threads and network): msgpack via msgpackr, so values behave the same in every mode.
import type { Packr as PackrT } from 'msgpackr';
import { requireCached } from '../util/code-cache.js';

// The CommonJS build is one file: it loads faster than the ES module graph, which matters for start-up
// time (every worker thread loads it). Its optional native string extractor costs ~13 ms to load and
// helps only string-heavy frames, so it is left out unless the user asks for it.
const PACKR_OPTIONS = { useRecords: false, moreTypes: true, int64AsType: 'bigint' } as const;

function loadMsgpackr(): typeof import('msgpackr') {
  const key = 'MSGPACKR_NATIVE_ACCELERATION_DISABLED';
  const before = process.env[key];
  if (before === undefined) process.env[key] = 'true';
  try {
    // Through V8's code cache (util/code-cache.ts): the warm-up puts the first pack and unpack's code in it.
    return requireCached<typeof import('msgpackr')>('msgpackr', 'dist/node.cjs', import.meta.url, (m) => {
      const p = new m.Packr(PACKR_OPTIONS);
      p.unpack(p.pack([{ t: 'batch', id: 1, items: [1, 2.5, 'x', null, undefined, true], f: new Float64Array(2), n: 1n << 64n }]));
    });
  } finally {
    if (before === undefined) delete process.env[key];
  }
}

/**
 * Plain msgpack maps (no shared record structures, so any peer can decode any frame), with
 * msgpackr's extensions for typed arrays, Date, Set, RegExp, BigInt and undefined.
 */
let loaded: PackrT | null = null;
const real = (): PackrT => (loaded ??= new (loadMsgpackr().Packr)(PACKR_OPTIONS));
export const packr: Pick<PackrT, 'pack' | 'unpack'> = {
  pack: (value) => real().pack(value),
  unpack: (bytes) => real().unpack(bytes),
};

/**
 * msgpackr loads on first use (6–7 ms): a thread that then waits for others (the pool's main thread
 * while its workers start, a worker after saying it is ready) loads it now, so that the first
 * message does not wait for it.
 */
export function loadCodec(): void {
  real();
}

/**
 * Encode a value. The result is a view into msgpackr's current output buffer; msgpackr never writes
 * over bytes it has returned (it moves on, then starts a new buffer), so the view stays valid.
 */
export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

/** Items at least this large travel between threads in their own moved ArrayBuffer, never copied into a batch. */
export const LARGE_BYTES = 64 * 1024;

/** Encode; a large result gets a buffer of its own, so that it can be moved to another thread. */
export function encodeForThreads(value: unknown): Uint8Array {
  const b = packr.pack(value);
  return b.byteLength >= LARGE_BYTES ? ownCopy(b) : b;
}

/** True when a view covers the whole of an ordinary ArrayBuffer (so moving it loses nothing else). */
export function ownsBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.byteLength === b.buffer.byteLength;
}

/** A copy in a buffer of its own. */
export function ownCopy(b: Uint8Array): Uint8Array {
  // allocUnsafe above the pool size returns a buffer of its own, not zero-filled first.
  const own = b.byteLength >= 4096 ? Buffer.allocUnsafe(b.byteLength) : new Uint8Array(b.byteLength);
  own.set(b);
  return own;
}

/**
 * A list of Buffers encoded by hand as a msgpack array of bin values, straight into one buffer of
 * its own: one copy of the bytes (msgpackr would copy into its output buffer, then we would copy out).
 */
/** Write a msgpack array header for n elements at the start of out; returns its length. */
export function writeArrayHeader(out: Buffer, n: number): number {
  if (n < 16) {
    out[0] = 0x90 | n;
    return 1;
  }
  if (n < 0x10000) {
    out[0] = 0xdc;
    out.writeUInt16BE(n, 1);
    return 3;
  }
  out[0] = 0xdd;
  out.writeUInt32BE(n, 1);
  return 5;
}

function encodeBuffers(list: Buffer[]): Uint8Array {
  const n = list.length;
  let size = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  for (const b of list) size += (b.byteLength < 0x100 ? 2 : b.byteLength < 0x10000 ? 3 : 5) + b.byteLength;
  const out = Buffer.allocUnsafe(size);
  let p = writeArrayHeader(out, n);
  for (const b of list) {
    const len = b.byteLength;
    if (len < 0x100) {
      out[p++] = 0xc4;
      out[p++] = len;
    } else if (len < 0x10000) {
      out[p++] = 0xc5;
      out.writeUInt16BE(len, p);
      p += 2;
    } else {
      out[p++] = 0xc6;
      out.writeUInt32BE(len, p);
      p += 4;
    }
    out.set(b, p);
    p += len;
  }
  return out;
}

/** msgpackr returns binary values as views of its input: make the input a Buffer, so they are Buffers too. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(asBuffer(bytes));
}

/** Encode into a buffer that owns its memory, so that it can be moved to another thread. */
export function encodeTransferable(value: unknown): Uint8Array {
  // pack() returns a view into msgpackr's shared output buffer, which must not be moved: copy out.
  return ownCopy(packr.pack(value));
}

/** Lists at least this long whose elements are all numbers travel as one Float64Array. */
const NUMERIC_MIN = 16;

function allNumbers(list: unknown[]): boolean {
  if (list.length < NUMERIC_MIN) return false;
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'number') return false;
  return true;
}

/**
 * Encode a list of items or results. A list of numbers (common in numeric work) is packed as one
 * Float64Array: every JS number is a double, so nothing is lost, and it costs a copy instead of a
 * per-element encoding; decodeList turns it back into an array.
 */
export function encodeList(list: unknown[], forThreads = true): Uint8Array {
  if (list.length > 0 && list.every((x) => Buffer.isBuffer(x)) && (list as Buffer[]).some((b) => b.byteLength >= LARGE_BYTES)) {
    return encodeBuffers(list as Buffer[]);
  }
  const v = allNumbers(list) ? Float64Array.from(list as number[]) : list;
  return forThreads ? encodeForThreads(v) : encode(v);
}

/** The array that encodeList encoded. */
export function decodeList(bytes: Uint8Array): unknown[] {
  const v = decodeListLike(bytes);
  return v instanceof Float64Array ? Array.from(v) : v;
}

/** Like decodeList, but a numeric list stays a Float64Array (indexable like an array, no per-element copy). */
export function decodeListLike(bytes: Uint8Array): unknown[] | Float64Array {
  const v = packr.unpack(asBuffer(bytes)) as unknown;
  if (v instanceof Float64Array) return v;
  if (!Array.isArray(v)) throw new TypeError(`expected an encoded list, got ${typeof v}`);
  return v;
}

/** An encoded empty array, for results that carry no values (written by hand: msgpackr is not loaded yet). */
export const EMPTY_VALUES: Uint8Array = Uint8Array.of(0x90);
