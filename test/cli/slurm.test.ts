// The example sbatch scripts under a real Slurm (the test cluster of scripts/slurm/test-cluster.sh:
// n1..n3, 2 CPUs each): submitted with sbatch, polled with scontrol every 200 ms. When the cluster
// is not up these tests fail under CI=true and are skipped otherwise (start it with
// `bash scripts/slurm/test-cluster.sh up`).
//
// Network rule: Slurm's clients read /etc/slurm/slurm.conf (written by test-cluster.sh, loopback only).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, exactlyOnce, FIXTURES, records, ROOT, tmp, until, type Rec } from './helpers.js';

const EXAMPLES = join(ROOT, 'scripts/slurm/examples');

function quiet(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** True when sinfo shows at least 3 nodes up. */
function clusterUp(): boolean {
  const out = quiet('sinfo', ['-h', '-N', '-o', '%N %t']);
  if (!out) return false;
  const up = out.split('\n').filter((l) => /\s(idle|mix|alloc|comp)\S*$/.test(l.trim()));
  return new Set(up.map((l) => l.split(' ')[0])).size >= 3;
}

const UP = clusterUp();
const CI = process.env.CI === 'true';
const t = tmp('slurmpool-slurm-');
afterAll(() => t.done());

const FINAL = /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)/;

/** Submit a script; resolves with its job id. */
function submit(script: string, args: string[], extraEnv: Record<string, string> = {}): string {
  const env = { ...process.env, SLURMPOOL_CLI: CLI, ...extraEnv };
  for (const k of Object.keys(env)) if (k.startsWith('SLURM_')) delete env[k];
  const out = execFileSync('sbatch', ['--parsable', '-o', join(t.dir, '%j.out'), '-D', t.dir, script, ...args], { encoding: 'utf8', env, timeout: 30_000 });
  return out.trim().split(';')[0]!;
}

function jobState(id: string): { state: string; exit: string } {
  const out = quiet('scontrol', ['show', 'job', '-o', id]) ?? '';
  return { state: /JobState=(\S+)/.exec(out)?.[1] ?? 'UNKNOWN', exit: /ExitCode=(\S+)/.exec(out)?.[1] ?? '' };
}

/** Poll scontrol every 200 ms until the job ends; its state, exit code and output. */
async function finish(id: string, ms = 150_000): Promise<{ state: string; exit: string; output: string }> {
  let s = jobState(id);
  await until(() => FINAL.test((s = jobState(id)).state), ms, `job ${id} to end (last state ${s.state})`);
  const file = join(t.dir, `${id}.out`);
  return { ...s, output: existsSync(file) ? readFileSync(file, 'utf8') : '' };
}

describe.skipIf(!UP && !CI)('example sbatch scripts on the Slurm test cluster', () => {
  it('the test cluster is up', () => {
    expect(UP, 'sinfo does not show 3 nodes up: run `bash scripts/slurm/test-cluster.sh up`').toBe(true);
  });

  it('run-commands.sbatch: 500 commands with --cpus-per-task 2 see OMP_NUM_THREADS=2 and their own 2 cores', async () => {
    const line = 'printf "%s %s " "$OMP_NUM_THREADS" "$SLURMPOOL_TASK_CPUS"; grep Cpus_allowed_list /proc/self/status\n';
    const tasks = t.write('pin.txt', line.repeat(500));
    const out = t.path('pin.jsonl');
    const job = await finish(submit(join(EXAMPLES, 'run-commands.sbatch'), [tasks, out]));
    expect(job.state, job.output).toBe('COMPLETED');
    const recs = records(out);
    expect(exactlyOnce(recs, 500)).toBe(true);
    const byNode = new Map<string, Rec[]>();
    for (const r of recs) {
      const [omp, pinned, , allowed] = String(r.stdout).trim().split(/\s+/);
      expect(omp).toBe('2');
      expect(allowed).toBe(pinned);
      byNode.set(String(r.node), [...(byNode.get(String(r.node)) ?? []), r]);
    }
    expect(byNode.size).toBe(3);
    // 2 CPUs per node, 2 per command: one command at a time on each node.
    for (const list of byNode.values()) expect(new Set(list.map((r) => r.worker))).toEqual(new Set([0]));
  }, 180_000);

  it('map-module.sbatch: a module map with --input over every node', async () => {
    const input = t.write('items.jsonl', Array.from({ length: 100 }, (_, i) => String(i)).join('\n') + '\n');
    const out = t.path('map.jsonl');
    const job = await finish(submit(join(EXAMPLES, 'map-module.sbatch'), [join(FIXTURES, 'tasks.mjs'), 'square', input, out]));
    expect(job.state, job.output).toBe('COMPLETED');
    const recs = records(out);
    expect(exactlyOnce(recs, 100)).toBe(true);
    for (const r of recs) expect(r.value).toBe(r.index * r.index);
    expect(new Set(recs.map((r) => r.node)).size).toBeGreaterThan(1);
  }, 180_000);

  it('resume.sbatch: stopped halfway by the USR1 warning, resubmitted, one record per task', async () => {
    const tasks = t.write('slow.txt', Array.from({ length: 60 }, (_, i) => `sleep 0.3; echo ${i}`).join('\n') + '\n');
    const out = t.path('slow.jsonl');
    const id = submit(join(EXAMPLES, 'resume.sbatch'), [tasks, out]);
    await until(() => existsSync(out) && readFileSync(out, 'utf8').split('\n').length > 10, 90_000, 'the first records');
    execFileSync('scancel', ['--batch', '--signal=USR1', id]);
    const first = await finish(id);
    expect(first.exit, first.output).toBe('3:0');
    expect(first.output).toMatch(/SIGUSR1 received/);
    const partial = records(out).length;
    expect(partial).toBeLessThan(60);
    const second = await finish(submit(join(EXAMPLES, 'resume.sbatch'), [tasks, out]));
    expect(second.state, second.output).toBe('COMPLETED');
    expect(second.output).toMatch(new RegExp(`${partial} task\\(s\\) done before are skipped`));
    expect(exactlyOnce(records(out), 60)).toBe(true);
  }, 240_000);

  it('a template across the nodes: --retries runs each failed command again (attempts 2), --halt now,fail=1 exits with its status and records the running tasks as cancelled', async () => {
    const d = t.path('tpl');
    execFileSync('mkdir', ['-p', d]);
    const script = t.write(
      'template.sbatch',
      [
        '#!/bin/bash',
        '#SBATCH --nodes=3',
        '#SBATCH --ntasks-per-node=1',
        '#SBATCH --cpus-per-task=2',
        '#SBATCH --time=00:05:00',
        'set -u',
        `cd ${d}`,
        'SP=(node "$SLURMPOOL_CLI")',
        `"\${SP[@]}" run -o retry.jsonl --retries 1 'if [ -e m{} ]; then echo ok {} "$SLURMPOOL_NODE"; else touch m{}; echo first {} >&2; exit 3; fi' ::: $(seq 1 12)`,
        'echo "retry-exit=$?"',
        // Task 1 fails once tasks 2 and 3 run elsewhere (bounded wait); they would sleep a minute.
        `"\${SP[@]}" run -o halt.jsonl --halt now,fail=1 'if [ {} = 1 ]; then for i in $(seq 400); do [ -e s2 ] && [ -e s3 ] && break; sleep 0.05; done; echo broke >&2; exit 7; fi; touch s{}; sleep 60' ::: 1 2 3 4 5 6`,
        'echo "halt-exit=$?"',
        '',
      ].join('\n'),
    );
    const job = await finish(submit(script, []));
    expect(job.state, job.output).toBe('COMPLETED');
    expect(job.output).toMatch(/retry-exit=0\n/);
    const retried = records(join(d, 'retry.jsonl'));
    expect(exactlyOnce(retried, 12)).toBe(true);
    for (const r of retried) expect(r, JSON.stringify(r)).toMatchObject({ ok: true, attempts: 2, stdout: `ok ${r.index + 1} ${String(r.node)}\n` });
    expect(new Set(retried.map((r) => r.node)).size).toBeGreaterThan(1);
    expect(job.output).toMatch(/halt-exit=7\n/);
    expect(job.output).toMatch(/task 1 failed: exit 7 on n\d: broke\n/);
    const halted = new Map(records(join(d, 'halt.jsonl')).map((r) => [r.index, r]));
    expect(halted.get(0)).toMatchObject({ ok: false, exitCode: 7 });
    for (const i of [1, 2]) expect(halted.get(i)).toMatchObject({ ok: false, error: { kind: 'cancelled' } });
    expect([...halted.values()].some((r) => r.ok)).toBe(false);
  }, 200_000);
});
