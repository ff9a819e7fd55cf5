// slurmpool emulate (a batch script run as Slurm would), slurmpool env, slurmpool demo.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cleanEnv, FIXTURES, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

function vars(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

describe('slurmpool emulate', () => {
  it('runs a batch script with its #SBATCH lines as the allocation', async () => {
    const t0 = Date.now();
    const r = await cli(['emulate', '--', join(FIXTURES, 'env-check.sbatch'), 'x', 'y z']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const v = vars(String(r.stdout));
    expect(v).toMatchObject({
      ARGS: 'x y z',
      NODES: '3',
      NODELIST: 'emu[1-3]',
      CPUS_PER_NODE: '2(x3)',
      CPUS_PER_TASK: '2',
      JOB_NAME: 'envcheck',
      EMULATE: '3x2',
      STEP_ID: 'unset',
    });
    const end = Number(v.END_TIME) * 1000;
    expect(end).toBeGreaterThan(t0 + 9 * 60_000);
    expect(end).toBeLessThan(t0 + 11 * 60_000);
  });

  it('lets command-line options win over #SBATCH lines', async () => {
    const r = await cli(['emulate', '--nodes', '2', '--cpus-per-node', '1', '--', join(FIXTURES, 'env-check.sbatch')]);
    expect(r.exitCode).toBe(0);
    expect(vars(String(r.stdout))).toMatchObject({ NODES: '2', NODELIST: 'emu[1-2]', CPUS_PER_NODE: '1(x2)', CPUS_PER_TASK: '1', EMULATE: '2x1' });
  });

  it('delivers SIGTERM at the time limit, as Slurm does', async () => {
    const t0 = Date.now();
    const r = await cli(['emulate', '--kill-wait', '2', '--', join(FIXTURES, 'sleepy.sbatch')]);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(String(r.stdout)).toContain('started');
    expect(String(r.stdout)).toContain('got SIGTERM');
    expect(String(r.stdout)).not.toContain('not stopped');
    expect(String(r.stderr)).toMatch(/CANCELLED AT .* DUE TO TIME LIMIT/);
    expect(r.exitCode).toBe(143);
  });

  it('refuses a script without a #! line, as sbatch does', async () => {
    const r = await cli(['emulate', '--', t.write('plain.sh', 'echo hi\n')]);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/does not look like a batch script/);
  });
});

describe('slurmpool env', () => {
  it('explains the mode and reads the allocation from SLURM_* variables', async () => {
    const env = cleanEnv({
      SLURM_JOB_ID: '77',
      SLURM_JOB_NODELIST: 'n[1-3]',
      SLURM_JOB_NUM_NODES: '3',
      SLURM_JOB_CPUS_PER_NODE: '2(x3)',
      SLURM_TASKS_PER_NODE: '1(x3)',
      SLURMD_NODENAME: 'n1',
    });
    const r = await cli(['env', '--json', '--time-left', '1h'], { env });
    expect(r.exitCode).toBe(0);
    const rep = JSON.parse(String(r.stdout));
    expect(rep.mode).toBe('slurm');
    expect(rep.why).toContain('SLURM_JOB_NUM_NODES=3');
    expect(rep.allocation).toMatchObject({ jobId: '77', nodes: ['n1', 'n2', 'n3'], cpusPerNode: [2, 2, 2], nodeName: 'n1', endSource: '--time-left' });
    expect(rep.allocation.timeLeftSeconds).toBeGreaterThan(3500);
    expect(rep.allocation.sources.cpusPerNode).toBe('SLURM_JOB_CPUS_PER_NODE');
    const end = Math.floor(Date.now() / 1000) + 600;
    const human = await cli(['env'], { env: { ...env, SLURM_JOB_END_TIME: String(end) } });
    const after = Date.now() / 1000;
    expect(String(human.stdout)).toMatch(/allocation: job 77, 3 nodes \(n\[1-3\]\)/);
    // However long the CLI took to start, what it shows lies between the end and the end less that time.
    const m = /time left: (\d+)m(\d\d)s .*SLURM_JOB_END_TIME/.exec(String(human.stdout));
    expect(m, String(human.stdout)).not.toBeNull();
    const shown = Number(m![1]) * 60 + Number(m![2]);
    expect(shown).toBeLessThanOrEqual(600);
    expect(shown).toBeGreaterThanOrEqual(Math.floor(end - after) - 1);
  });

  it('says local outside an allocation, emulate with --emulate, and names a malformed variable', async () => {
    const local = JSON.parse(String((await cli(['env', '--json'])).stdout));
    expect(local).toMatchObject({ mode: 'local', allocation: null });
    expect(local.why).toMatch(/no SLURM_JOB_ID/);
    const emu = JSON.parse(String((await cli(['env', '--json', '--emulate', '4x2'])).stdout));
    expect(emu).toMatchObject({ mode: 'emulate', why: '--emulate 4x2' });
    const bad = await cli(['env'], { env: cleanEnv({ SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'n[1-2]', SLURM_JOB_CPUS_PER_NODE: '2(x3)' }) });
    expect(bad.exitCode).toBe(1);
    expect(String(bad.stdout)).toMatch(/allocation: cannot be read: SLURM_JOB_CPUS_PER_NODE="2\(x3\)"/);
  });
});

describe('slurmpool demo', () => {
  it('counts primes on the pool and on one worker', async () => {
    const r = await cli(['demo', '--json', '--limit', '200000', '--emulate', '2x1']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const d = JSON.parse(String(r.stdout));
    expect(d).toMatchObject({ limit: 200000, primes: 17984, mode: 'emulate', nodes: 2, workers: 2 });
    expect(d.speedup).toBeGreaterThan(0);
  });
});
