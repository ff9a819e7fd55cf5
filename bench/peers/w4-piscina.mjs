// W4, piscina: open a 2-worker pool, run one trivial task, close, exit.
import { Piscina } from 'piscina';

const pool = new Piscina({ filename: new URL('./piscina-task.mjs', import.meta.url).href, minThreads: 2, maxThreads: 2 });
await pool.run(0, { name: 'noop' });
await pool.destroy();
