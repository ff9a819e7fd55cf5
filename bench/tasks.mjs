// Fixture task module for the benchmarks: what every pool's workers import.
// slurmpool names these exports; the piscina peer re-exports them (bench/peers/piscina-task.mjs).

/** W1: returns its argument. */
export function identity(x) {
  return x;
}

/** Trial division: odd divisors up to √x. */
export function isPrime(x) {
  if (x < 2) return false;
  if (x % 2 === 0) return x === 2;
  for (let d = 3; d * d <= x; d += 2) {
    if (x % d === 0) return false;
  }
  return true;
}

/** W2: number of primes in [lo, hi). */
export function countPrimes([lo, hi]) {
  let n = 0;
  for (let x = lo; x < hi; x++) {
    if (isPrime(x)) n++;
  }
  return n;
}

/** W3: length of a Buffer, Uint8Array or ArrayBuffer. */
export function byteLength(buf) {
  return buf.byteLength;
}

/** W4: nothing. */
export function noop() {
  return null;
}

/** Reads every 4,096th byte of a (shared) buffer: the cost is in getting the data, not in the task. */
export function sampleSum(buf) {
  let s = 0;
  for (let i = 0; i < buf.length; i += 4096) s += buf[i];
  return s;
}

/** Sleeps `ms` without holding the thread (mixed-duration scheduling benchmarks). */
export function sleepMs(ms) {
  return new Promise((r) => setTimeout(() => r(ms), ms));
}
