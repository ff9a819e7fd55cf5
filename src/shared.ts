// Shared read-only data: sent once per node, one SharedArrayBuffer there, read by every worker without copies.

/** The key that marks a handle inside task arguments. */
export const SHARED_KEY = '$slurmpoolShared';

/**
 * What `pool.share(value)` returns: a small handle to pass inside task arguments. In the task it is
 * replaced by the data: a typed array (or Buffer) over the node's SharedArrayBuffer for binary
 * data, or the decoded value (decoded once per worker) for anything else.
 */
export interface SharedRef {
  readonly [SHARED_KEY]: number;
  /** Size of the shared data in bytes as it travels. */
  readonly bytes: number;
}

export function isSharedRef(v: unknown): v is SharedRef {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[SHARED_KEY] === 'number';
}

/** Typed-array constructors a binary shared value may be viewed as. */
export const VIEW_CTORS: Record<string, new (buf: ArrayBufferLike, offset?: number, length?: number) => ArrayBufferView> = {
  Buffer: Uint8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

/** The element size of a view constructor, to rebuild the view over shared bytes. */
export function viewOf(ctor: string, sab: SharedArrayBuffer): ArrayBufferView {
  if (ctor === 'Buffer') return Buffer.from(sab);
  const C = VIEW_CTORS[ctor] ?? Uint8Array;
  return new C(sab);
}
