// slurmpool: node bench/peers/slurmpool.mjs W1c1|W1auto|W1apply|W2 <workers>|W3copy  -> one JSON line.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { params, timed, runChild, primeRanges, checkIdentity, checkPrimes, warmAllWorkers } from '../lib/child.mjs';

const dist = new URL('../../dist/index.js', import.meta.url);
const module = new URL('../tasks.mjs', import.meta.url);

await runChild(async ([workload, w]) => {
  if (!existsSync(fileURLToPath(dist))) throw new Error('dist/index.js not built (npm run build)');
  const { Pool } = await import(dist.href);
  if (typeof Pool?.open !== 'function') throw new Error('dist/index.js exports no Pool.open');
  const workers = Number(w ?? params.workers);
  // BENCH_EMULATE=NxC runs the same workload over N emulated agents (TCP) instead of local threads.
  const pool = await Pool.open(process.env.BENCH_EMULATE ? { module, emulate: process.env.BENCH_EMULATE, log: false } : { module, workers });
  try {
    // Loads the task module in every worker before timing.
    await warmAllWorkers(pool);
    switch (workload) {
      case 'W1c1':
      case 'W1auto': {
        const n = params.w1.n;
        const items = Array.from({ length: n }, (_, i) => i);
        const opts = workload === 'W1c1' ? { chunksize: 1 } : undefined;
        // Steady state, as every peer here is measured: one untimed run of the same call first.
        await (opts ? pool.map('identity', items, opts) : pool.map('identity', items));
        const { seconds, value } = await timed(() => (opts ? pool.map('identity', items, opts) : pool.map('identity', items)));
        checkIdentity(value, n);
        return { seconds, n };
      }
      case 'W1apply': {
        // The same items as concurrent apply() calls, one task each (as piscina's W1c1 runs them: run() per item).
        const n = params.w1.n;
        const run = () => Promise.all(Array.from({ length: n }, (_, i) => pool.apply('identity', i)));
        await run();
        const { seconds, value } = await timed(run);
        checkIdentity(value, n);
        return { seconds, n };
      }
      case 'W2': {
        const { lo, hi, expected_primes } = params.w2.js;
        const ranges = primeRanges(lo, hi, params.w2.tasks);
        const { seconds, value } = await timed(() => pool.map('countPrimes', ranges, { chunksize: 1 }));
        return { seconds, workers, primes: checkPrimes(value, expected_primes) };
      }
      case 'W3copy': {
        const { tasks, bytes } = params.w3;
        const shared = Buffer.alloc(bytes, 1);
        const bufs = Array.from({ length: tasks }, () => shared);
        const { seconds, value } = await timed(() => pool.map('byteLength', bufs, { chunksize: 1 }));
        if (!Array.isArray(value) || value.length !== tasks || value.some((len) => len !== bytes)) {
          throw new Error('a task saw the wrong length');
        }
        return { seconds, tasks, bytes };
      }
      default:
        throw new Error(`unknown workload ${workload}`);
    }
  } finally {
    await pool.close();
  }
});
