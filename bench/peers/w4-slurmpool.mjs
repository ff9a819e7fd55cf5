// W4, slurmpool: open a 2-worker pool, run one trivial task, close, exit (no process.exit: it must exit by itself).
import { Pool } from '../../dist/index.js';

const pool = await Pool.open({ module: new URL('../tasks.mjs', import.meta.url), workers: 2 });
await pool.map('noop', [0]);
await pool.close();
