// Section P, slurmpool with a Python task module (peers/py_tasks.py):
//   node py-slurmpool.mjs P1c1|P1auto N PYTHON CODEC | P2 WORKERS PYTHON CODEC | P4 PYTHON CODEC  -> one JSON line.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { params, timed, runChild, primeRanges, checkIdentity, checkPrimes, warmAllWorkers } from '../lib/child.mjs';

const dist = new URL('../../dist/index.js', import.meta.url);
const module = fileURLToPath(new URL('./py_tasks.py', import.meta.url));

await runChild(async (argv) => {
  if (!existsSync(fileURLToPath(dist))) throw new Error('dist/index.js not built (npm run build)');
  const { Pool } = await import(dist.href);
  const workload = argv[0];
  const [python, codec] = workload === 'P4' ? argv.slice(1) : argv.slice(2);
  const env = { ...process.env, SLURMPOOL_PY_CODEC: codec };
  if (workload === 'P4') {
    // Whole process: open 2 workers, one trivial task, close, exit (the figure is the wall time).
    const pool = await Pool.open({ module, workers: 2, python, env, log: false });
    await pool.map('noop', [0]);
    await pool.close();
    return {};
  }
  const workers = workload === 'P2' ? Number(argv[1]) : params.workers;
  const pool = await Pool.open({ module, workers, python, env, log: false });
  try {
    await warmAllWorkers(pool);
    if (workload === 'P1c1' || workload === 'P1auto') {
      const n = Number(argv[1]);
      const items = Array.from({ length: n }, (_, i) => i);
      const opts = workload === 'P1c1' ? { chunksize: 1 } : undefined;
      await pool.map('identity', items, opts); // steady state: one untimed run first, as for multiprocessing
      const { seconds, value } = await timed(() => pool.map('identity', items, opts));
      checkIdentity(value, n);
      return { seconds, n };
    }
    if (workload === 'P2') {
      const { lo, hi, expected_primes } = params.w2.python;
      const { seconds, value } = await timed(() => pool.map('count_primes', primeRanges(lo, hi, params.w2.tasks), { chunksize: 1 }));
      return { seconds, workers, primes: checkPrimes(value, expected_primes) };
    }
    throw new Error(`unknown workload ${workload}`);
  } finally {
    await pool.close();
  }
});
