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

/** Buffers made for one encoded numeric list (numbersAt's alignment pad aside, nothing else is in them). */
const owned = new WeakSet<ArrayBuffer>();

/**
 * Whether encoded bytes should travel between threads in their own moved buffer rather than be copied
 * into a message: large ones (copied into a buffer of their own first when they share one), and any
 * but tiny ones that already own their buffer (a numeric list: moving it costs nothing).
 */
export function movable(b: Uint8Array): boolean {
  return b.byteLength >= LARGE_BYTES || (b.byteLength >= 2048 && ownsBuffer(b));
}

/**
 * A list about to cross to another thread, split for moving: the elements whose binary field `key` is
 * movable have it emptied (EMPTY_VALUES) in a shallow copy of the list (the list itself when none is),
 * and each moved field comes back beside it as [position, bytes], bytes being what `own` gives (a view
 * alone in its buffer, to be moved), or the field stays in place where `own` gives null.
 */
export function splitMovable<K extends string, T extends Record<K, Uint8Array>>(list: T[], key: K, own: (b: Uint8Array) => Uint8Array | null): [T[], [number, Uint8Array][]] {
  let out = list;
  const moved: [number, Uint8Array][] = [];
  for (let i = 0; i < list.length; i++) {
    const b = list[i]![key];
    if (!movable(b)) continue;
    const mine = own(b);
    if (mine === null) continue;
    if (out === list) out = list.slice();
    out[i] = { ...list[i]!, [key]: EMPTY_VALUES };
    moved.push([i, mine]);
  }
  return [out, moved];
}

/** True when a view is all there is in an ordinary ArrayBuffer (so moving it loses nothing else). */
export function ownsBuffer(b: Uint8Array): boolean {
  return b.buffer instanceof ArrayBuffer && ((b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) || owned.has(b.buffer) || isFloatBuffer(b));
}

/** A copy in a buffer of its own (an encoded numeric list keeps its numbers 8-byte aligned, so it is read without another copy). */
export function ownCopy(b: Uint8Array): Uint8Array {
  const h = numbersAt(b);
  if (h > 0) {
    const own = floatBuffer((b.byteLength - h) / 8);
    own.bytes.set(b);
    return own.bytes;
  }
  // allocUnsafe above the pool size returns a buffer of its own, not zero-filled first.
  const own = b.byteLength >= 4096 ? Buffer.allocUnsafe(b.byteLength) : new Uint8Array(b.byteLength);
  own.set(b);
  return own;
}

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

/** The element count of an encoded msgpack array and the length of its header (writeArrayHeader's reverse). */
export function arrayHeader(b: Uint8Array): [count: number, header: number] {
  const t = b[0]!;
  if (t >= 0x90 && t <= 0x9f) return [t & 0x0f, 1];
  if (t === 0xdc) return [(b[1]! << 8) | b[2]!, 3];
  if (t === 0xdd) return [((b[1]! << 24) >>> 0) + ((b[2]! << 16) | (b[3]! << 8) | b[4]!), 5];
  throw new TypeError(`expected an encoded array, got a value starting 0x${t.toString(16)}`);
}

/**
 * A list of Buffers encoded by hand as a msgpack array of bin values, straight into one buffer of
 * its own: one copy of the bytes (msgpackr would copy into its output buffer, then we would copy out).
 */
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
export const NUMERIC_MIN = 16;

/**
 * A fresh buffer for an encoded list of n numbers, written as msgpackr writes a Float64Array (ext
 * 8/16/32 of type 0x74, first data byte 8, then the numbers), placed so that the numbers start on an
 * 8-byte boundary: the reader takes them as a Float64Array view, with no copy. `bytes` is the
 * encoding; `floats` is where the numbers go. Nothing else lives in the buffer, so it may be moved
 * to another thread.
 */
function floatBuffer(n: number): { bytes: Buffer; floats: Float64Array } {
  const data = 8 * n + 1;
  const h = data < 0x100 ? 4 : data < 0x10000 ? 5 : 7;
  // Not zero-filled: every byte is written below or by the caller.
  const ab = spareBuffer(8 + 8 * n) ?? (Buffer.allocUnsafeSlow(8 + 8 * n).buffer as ArrayBuffer);
  // A Buffer, as every encoded list is: msgpack writes it inside a message as binary (a plain Uint8Array would be a typed-array extension).
  const bytes = Buffer.from(ab, 8 - h, h + 8 * n);
  if (h === 4) {
    bytes[0] = 0xc7;
    bytes[1] = data;
  } else if (h === 5) {
    bytes[0] = 0xc8;
    bytes[1] = data >>> 8;
    bytes[2] = data & 0xff;
  } else {
    bytes[0] = 0xc9;
    bytes[1] = data >>> 24;
    bytes[2] = (data >>> 16) & 0xff;
    bytes[3] = (data >>> 8) & 0xff;
    bytes[4] = data & 0xff;
  }
  bytes[h - 2] = 0x74;
  bytes[h - 1] = 8;
  owned.add(ab);
  return { bytes, floats: new Float64Array(ab, 8, n) };
}

/**
 * Where the numbers start when `b` is exactly one encoded Float64Array (msgpackr's typed-array ext,
 * as floatBuffer or msgpackr writes it); 0 when it is anything else.
 */
function numbersAt(b: Uint8Array): number {
  const d = typedArrayData(b, 8);
  return d !== null && d[1] === b.byteLength - d[0] && d[1] % 8 === 0 ? d[0] : 0;
}

/**
 * Where the data of msgpackr's typed-array extension (ext 8/16/32 of type 0x74) for the array `code`
 * starts in `b` (after the code byte), and how many bytes the ext says it holds; null when `b` does
 * not start with one.
 */
export function typedArrayData(b: Uint8Array, code: number): [at: number, bytes: number] | null {
  const t = b[0];
  const h = t === 0xc7 ? 4 : t === 0xc8 ? 5 : t === 0xc9 ? 7 : 0;
  if (h === 0 || b.byteLength < h || b[h - 2] !== 0x74 || b[h - 1] !== code) return null;
  // The ext's length counts the code byte.
  const len = h === 4 ? b[1]! : h === 5 ? (b[1]! << 8) | b[2]! : ((b[1]! << 24) >>> 0) + ((b[2]! << 16) | (b[3]! << 8) | b[4]!);
  return [h, len - 1];
}

/**
 * An array whose V8 storage is unboxed doubles from the start, of n holes: `new Array(n)` would be
 * copied on its first double. For lists of results that are most likely numbers.
 */
export function doubleArray(n: number): unknown[] {
  const a: unknown[] = [0.5];
  a.length = n;
  return a;
}

/**
 * True when `b` is laid out as floatBuffer lays it out, alone in its ArrayBuffer (the buffer then
 * holds nothing else: a link's frame cannot put a list there, its header comes first).
 */
function isFloatBuffer(b: Uint8Array): boolean {
  const h = b.byteOffset < 8 ? numbersAt(b) : 0;
  return h > 0 && b.byteOffset + h === 8 && b.byteOffset + b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer;
}

/**
 * Buffers of numeric lists done with, by size, for the next lists of that size: fresh memory costs a
 * page fault per 4 KiB on first touch, which was most of the cost of a numeric map's copies. At most
 * SPARE_MAX_BYTES are kept (a process that mapped numbers once holds that much at most afterwards).
 */
const spares = new Map<number, ArrayBuffer[]>();
let spareBytes = 0;
const SPARE_MAX_BYTES = 16 * 1024 * 1024;
const SPARE_PER_SIZE = 32;

function spareBuffer(size: number): ArrayBuffer | undefined {
  const list = spares.get(size);
  const ab = list?.pop();
  if (ab) spareBytes -= size;
  return ab;
}

/**
 * Hand back the buffer of a numeric list that nothing will read again (its numbers were copied out):
 * only a Float64Array laid out by floatBuffer and alone in its buffer is kept, for the next list of
 * its size; anything else is left to the garbage collector.
 */
export function recycle(f: Float64Array): void {
  const ab = f.buffer;
  const size = ab.byteLength;
  if (f.byteOffset !== 8 || size !== 8 + f.byteLength || !(ab instanceof ArrayBuffer) || spareBytes + size > SPARE_MAX_BYTES) return;
  let list = spares.get(size);
  if (!list) spares.set(size, (list = []));
  if (list.length >= SPARE_PER_SIZE || list.includes(ab)) return;
  list.push(ab);
  spareBytes += size;
}

/** A Float64Array for n numbers laid out as an encoded list's (so that it can be encoded in place, or recycled). */
export function floatList(n: number): Float64Array {
  return floatBuffer(n).floats;
}

/**
 * Encode a chunk's results into the buffer its items came in, when those were n numbers in a buffer of
 * their own and the results are n numbers too (the items are spent once the chunk ran): no new buffer
 * on the worker, and the same one moves back. Anything else is encoded as encodeList does.
 */
export function encodeListOver(values: unknown[], spent: Uint8Array): Uint8Array {
  const n = values.length;
  if (n >= NUMERIC_MIN && isFloatBuffer(spent) && spent.byteLength === 8 - spent.byteOffset + 8 * n && typeof values[0] === 'number') {
    // The header stays as it is (the same count); only the numbers change.
    const f = new Float64Array(spent.buffer, 8, n);
    let i = 0;
    for (; i < n; i++) {
      const v = values[i];
      if (typeof v !== 'number') break;
      f[i] = v;
    }
    // A Buffer, so that msgpack writes it as binary wherever it goes (one moved between threads arrives as a plain Uint8Array).
    if (i === n) return asBuffer(spent);
  }
  return encodeList(values, false);
}

/** These numbers encoded as one Float64Array (one copy, into a buffer of their own; an Int32Array is widened in the copy). */
export function encodeFloats(f: Float64Array | Int32Array): Uint8Array {
  const out = floatBuffer(f.length);
  out.floats.set(f);
  return out.bytes;
}

/**
 * A list whose elements are all numbers, encoded as one Float64Array in the same pass that checks it;
 * null for any other list. A short one stays a msgpack array (whose integers any reader takes as
 * integers) unless it holds a -0, which msgpack's integers cannot carry.
 */
function encodeNumbers(list: unknown[]): Uint8Array | null {
  const n = list.length;
  if (n === 0 || typeof list[0] !== 'number' || typeof list[n - 1] !== 'number') return null;
  if (n < NUMERIC_MIN) {
    let negativeZero = false;
    for (let i = 0; i < n; i++) {
      const v = list[i];
      if (typeof v !== 'number') return null;
      if (v === 0 && 1 / v < 0) negativeZero = true;
    }
    if (!negativeZero) return null;
  }
  const out = floatBuffer(n);
  const f = out.floats;
  for (let i = 0; i < n; i++) {
    const v = list[i];
    if (typeof v !== 'number') return null;
    f[i] = v;
  }
  return out.bytes;
}

/**
 * Encode a list of items or results. A list of numbers (common in numeric work) is packed as one
 * Float64Array: every JS number is a double, so nothing is lost (NaN and -0 included), and it costs a
 * copy instead of a per-element encoding, into a buffer of its own that can be moved to another
 * thread; decodeList turns it back into an array. A Float64Array (a numeric input's chunk) is copied
 * as it is.
 */
export function encodeList(list: unknown[] | Float64Array, forThreads = true): Uint8Array {
  if (list instanceof Float64Array) {
    if (list.length >= NUMERIC_MIN) return encodeFloats(list);
    list = Array.from(list);
  }
  const numbers = encodeNumbers(list);
  if (numbers) return numbers;
  if (list.length > 0 && list.every((x) => Buffer.isBuffer(x)) && (list as Buffer[]).some((b) => b.byteLength >= LARGE_BYTES)) {
    return encodeBuffers(list as Buffer[]);
  }
  return forThreads ? encodeForThreads(list) : encode(list);
}

/** The array that encodeList encoded. */
export function decodeList(bytes: Uint8Array): unknown[] {
  const v = decodeListLike(bytes);
  return v instanceof Float64Array ? Array.from(v) : v;
}

/**
 * Like decodeList, but a numeric list stays a Float64Array (indexable like an array, no per-element
 * copy): a view of `bytes` when its numbers are 8-byte aligned (as encodeList places them), else one copy.
 */
export function decodeListLike(bytes: Uint8Array): unknown[] | Float64Array {
  const h = numbersAt(bytes);
  if (h > 0) {
    const n = (bytes.byteLength - h) / 8;
    const at = bytes.byteOffset + h;
    if (at % 8 === 0) return new Float64Array(bytes.buffer, at, n);
    const f = new Float64Array(n);
    new Uint8Array(f.buffer).set(bytes.subarray(h));
    return f;
  }
  const v = packr.unpack(asBuffer(bytes)) as unknown;
  if (v instanceof Float64Array) return v;
  if (!Array.isArray(v)) throw new TypeError(`expected an encoded list, got ${typeof v}`);
  return v;
}

/** An encoded empty array, for results that carry no values (written by hand: msgpackr is not loaded yet). */
export const EMPTY_VALUES: Uint8Array = Uint8Array.of(0x90);
