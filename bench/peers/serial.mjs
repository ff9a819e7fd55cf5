// W2 without a pool: the same countPrimes loop over the same 64 subranges, in this thread.
import { countPrimes } from '../tasks.mjs';
import { params, timed, runChild, primeRanges, checkPrimes } from '../lib/child.mjs';

await runChild(async () => {
  const { lo, hi, expected_primes } = params.w2.js;
  const ranges = primeRanges(lo, hi, params.w2.tasks);
  const { seconds, value } = await timed(() => ranges.map(countPrimes));
  return { seconds, primes: checkPrimes(value, expected_primes) };
});
