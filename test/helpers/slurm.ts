// Helpers for tests that use the real test cluster (scripts/slurm/test-cluster.sh).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const SLURM_CONF = process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf';
const env = { ...process.env, SLURM_CONF };

function run(cmd: string, args: string[], timeout = 15_000): string {
  return execFileSync(cmd, args, { env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether the test cluster answers and has idle nodes; the reason when not. */
export function clusterStatus(): { up: boolean; why: string } {
  if (!existsSync(SLURM_CONF)) return { up: false, why: `${SLURM_CONF} does not exist (run: bash scripts/slurm/test-cluster.sh up)` };
  try {
    const out = run('sinfo', ['-h', '-o', '%D %t']);
    const idle = out.split('\n').filter((l) => /idle|mix|alloc/.test(l)).reduce((n, l) => n + Number(l.split(' ')[0]), 0);
    if (idle < 3) return { up: false, why: `fewer than 3 usable nodes: ${out.trim()}` };
    return { up: true, why: '' };
  } catch (e) {
    return { up: false, why: `sinfo failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** When CI=true a missing cluster fails the test; elsewhere the test is skipped with the reason. */
export function clusterOrSkip(): { skip: boolean; why: string } {
  const s = clusterStatus();
  if (s.up) return { skip: false, why: '' };
  if (process.env.CI === 'true') throw new Error(`the Slurm test cluster is required in CI but is not up: ${s.why}`);
  return { skip: true, why: s.why };
}

/** Submit a batch script; returns the job id. */
export function sbatch(args: string[]): string {
  const out = run('sbatch', ['--parsable', ...args]);
  return out.trim().split(';')[0]!;
}

export interface JobEnd {
  state: string;
  exitCode: string;
}

/** Poll scontrol every 200 ms until the job ends; bounded by timeoutMs (then the job is cancelled). */
export async function waitJob(id: string, timeoutMs = 60_000): Promise<JobEnd> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let out = '';
    try {
      out = run('scontrol', ['show', 'job', id, '-o']);
    } catch {
      // the job may have left slurmctld's memory; MinJobAge keeps it for a while
    }
    const state = /JobState=(\S+)/.exec(out)?.[1] ?? '';
    const exitCode = /ExitCode=(\S+)/.exec(out)?.[1] ?? '';
    if (state && !['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED'].includes(state)) return { state, exitCode };
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    run('scancel', [id]);
  } catch {
    // already gone
  }
  throw new Error(`job ${id} did not end within ${timeoutMs} ms`);
}

export function readOut(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : `(no output file ${path})`;
}

export function scontrol(args: string[]): string {
  return run('scontrol', args);
}
