// Task module for the piscina peer: the same fixtures, plus a hand-chunked identity (W1 automatic).
import { identity } from '../tasks.mjs';

export { identity, countPrimes, byteLength, noop } from '../tasks.mjs';

/** W1 automatic: identity over one hand-made chunk. */
export function identityChunk(xs) {
  return xs.map(identity);
}
