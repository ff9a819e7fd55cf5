// The task module of `slurmpool demo`: imported by every worker, by name, like any user's module.

/** True if x is prime (trial division by odd numbers up to √x). */
export function isPrime(x: number): boolean {
  if (x < 2) return false;
  if (x % 2 === 0) return x === 2;
  for (let d = 3; d * d <= x; d += 2) if (x % d === 0) return false;
  return true;
}

/** How many primes lie in [lo, hi). */
export function countPrimes([lo, hi]: [number, number]): number {
  let n = 0;
  for (let x = lo; x < hi; x++) if (isPrime(x)) n++;
  return n;
}
