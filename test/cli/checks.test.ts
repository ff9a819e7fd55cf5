// Settings refused before any work: node counts the run cannot meet, a --log-dir that cannot be made.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cleanEnv, tmp, tmpfsForFile } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

/** The environment of the batch step of a 3-node job (n[1-3], 2 CPUs each). */
const job3 = (extra: Record<string, string> = {}) =>
  cleanEnv({ SLURM_JOB_ID: '77', SLURM_JOB_NODELIST: 'n[1-3]', SLURM_JOB_NUM_NODES: '3', SLURM_JOB_CPUS_PER_NODE: '2(x3)', SLURM_TASKS_PER_NODE: '1(x3)', SLURMD_NODENAME: 'n1', ...extra });

describe('node counts the run cannot meet are refused before anything starts', () => {
  it('--min-nodes 5 (or SLURMPOOL_MIN_NODES=5) in a 3-node job', async () => {
    const tasks = t.write('t.txt', 'echo a\n');
    const out = t.path('never.jsonl');
    const r = await cli(['run', tasks, '--min-nodes', '5', '-o', out], { env: job3() });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain("--min-nodes 5 is more than the 3 nodes of Slurm job 77's allocation (n[1-3]): it could never be met");
    const e = await cli(['run', tasks], { env: job3({ SLURMPOOL_MIN_NODES: '5' }) });
    expect(e.exitCode).toBe(2);
    expect(String(e.stderr)).toContain('SLURMPOOL_MIN_NODES 5 is more than the 3 nodes');
    const emu = await cli(['map', join(import.meta.dirname, '../fixtures/cli/tasks.mjs'), 'square', '--range', '0:2', '--emulate', '2x1', '--min-nodes', '3']);
    expect(emu.exitCode).toBe(2);
    expect(String(emu.stderr)).toContain('--min-nodes 3 is more than the 2 nodes of the emulated allocation 2x1');
  });

  it('SLURMPOOL_NODES=5 in a 3-node job: not a setting, and more than the allocation', async () => {
    const r = await cli(['run', t.write('u.txt', 'echo a\n')], { env: job3({ SLURMPOOL_NODES: '5' }) });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain(
      "SLURMPOOL_NODES=\"5\" is not a slurmpool setting: slurmpool runs on every node it is given (here 3: Slurm job 77's allocation (n[1-3])), and 5 is more than the 3 nodes of Slurm job 77's allocation (n[1-3])",
    );
    expect(String(r.stderr)).toContain('use --min-nodes / SLURMPOOL_MIN_NODES');
  });
});

const ro = tmpfsForFile('slurmpool-ro-', 'ro,size=64k');

describe.skipIf(!ro.dir)(`--log-dir on a read-only file system ${ro.why}`, () => {
  it('names EROFS and the folder that could not be made, not ENOENT', async () => {
    const tasks = t.write('l.txt', 'echo a\n');
    const r = await cli(['run', tasks, '--log-dir', join(ro.dir!, 'logs', 'run1')]);
    expect(r.exitCode).toBe(2);
    const err = String(r.stderr);
    expect(err).toContain(`cannot create --log-dir ${join(ro.dir!, 'logs', 'run1')}: cannot create ${join(ro.dir!, 'logs')} in ${ro.dir}: EROFS (read-only file system)`);
    expect(err).not.toContain('ENOENT');
    const top = await cli(['run', tasks, '--log-dir', ro.dir!]);
    expect(top.exitCode).toBe(2);
    expect(String(top.stderr)).toContain('EROFS');
  });
});
