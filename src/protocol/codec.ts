// One codec for every boundary (threads and network): msgpack via msgpackr, so values behave the same in every mode.
import { createRequire } from 'node:module';
import type { Packr as PackrT } from 'msgpackr';

// The CommonJS build is one file: it loads faster than the ES module graph, which matters for start-up time.
const { Packr } = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');

/**
 * Plain msgpack maps (no shared record structures, so any peer can decode any frame), with
 * msgpackr's extensions for typed arrays, Date, Set, RegExp, BigInt and undefined.
 */
export const packr: PackrT = new Packr({ useRecords: false, moreTypes: true, int64AsType: 'bigint' });

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** Encode into a buffer that owns its memory, so that it can be moved to another thread. */
export function encodeTransferable(value: unknown): Uint8Array {
  const b = packr.pack(value);
  // pack() returns a view into msgpackr's reusable buffer: copy out what we keep.
  const own = new Uint8Array(b.byteLength);
  own.set(b);
  return own;
}

/** An encoded empty array, for results that carry no values. */
export const EMPTY_VALUES: Uint8Array = encodeTransferable([]);
