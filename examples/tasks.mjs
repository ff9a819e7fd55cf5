// Example task module: tasks are named exports, imported by every worker on every node.
export function isPrime(x) {
  if (x < 2) return false;
  if (x % 2 === 0) return x === 2;
  for (let d = 3; d * d <= x; d += 2) if (x % d === 0) return false;
  return true;
}

/** Count primes in [lo, hi) by trial division; returns the count and where it ran. */
export function countPrimes([lo, hi]) {
  let n = 0;
  for (let x = lo; x < hi; x++) if (isPrime(x)) n++;
  return { count: n, node: process.env.SLURMPOOL_NODE ?? null };
}
