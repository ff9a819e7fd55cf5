// piscina peer: node bench/peers/piscina.mjs W1c1|W1auto|W2 <workers>|W3  -> one JSON line.
import { Piscina } from 'piscina';
import { params, timed, runChild, primeRanges, checkIdentity, checkPrimes } from '../lib/child.mjs';

const filename = new URL('./piscina-task.mjs', import.meta.url).href;

function open(workers) {
  return new Piscina({ filename, minThreads: workers, maxThreads: workers });
}

/** Loads the task module in every thread before timing. */
async function warm(pool, workers) {
  await Promise.all(Array.from({ length: workers * 4 }, (_, i) => pool.run(i, { name: 'identity' })));
}

await runChild(async ([workload, w]) => {
  const workers = Number(w ?? params.workers);
  const pool = open(workers);
  try {
    await warm(pool, workers);
    switch (workload) {
      case 'W1c1': {
        const n = params.w1.n;
        const items = Array.from({ length: n }, (_, i) => i);
        const run = () => Promise.all(items.map((x) => pool.run(x, { name: 'identity' })));
        await run(); // steady state: one untimed run first, as for every implementation
        const { seconds, value } = await timed(run);
        checkIdentity(value, n);
        return { seconds, n };
      }
      case 'W1auto': {
        // Chunked by hand into 4 × workers tasks, as multiprocessing's default chunksize would.
        const n = params.w1.n;
        const items = Array.from({ length: n }, (_, i) => i);
        const run = async () => {
          const chunks = 4 * workers;
          const size = Math.ceil(n / chunks);
          const parts = [];
          for (let i = 0; i < n; i += size) parts.push(pool.run(items.slice(i, i + size), { name: 'identityChunk' }));
          return (await Promise.all(parts)).flat();
        };
        await run(); // steady state: one untimed run first, as for every implementation
        const { seconds, value } = await timed(run);
        checkIdentity(value, n);
        return { seconds, n, chunks: 4 * workers };
      }
      case 'W2': {
        const { lo, hi, expected_primes } = params.w2.js;
        const ranges = primeRanges(lo, hi, params.w2.tasks);
        const { seconds, value } = await timed(() => Promise.all(ranges.map((r) => pool.run(r, { name: 'countPrimes' }))));
        return { seconds, workers, primes: checkPrimes(value, expected_primes) };
      }
      case 'W3': {
        const { tasks, bytes } = params.w3;
        const buf = Buffer.alloc(bytes, 1);
        const { seconds, value } = await timed(() =>
          Promise.all(Array.from({ length: tasks }, () => pool.run(buf, { name: 'byteLength' }))),
        );
        if (value.some((len) => len !== bytes)) throw new Error('a task saw the wrong length');
        return { seconds, tasks, bytes };
      }
      default:
        throw new Error(`unknown workload ${workload}`);
    }
  } finally {
    await pool.destroy();
  }
});
