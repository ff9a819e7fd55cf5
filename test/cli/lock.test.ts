// One run per results file: a second run is refused at once; a lock left by a dead run is taken over.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { RunLock } from '../../src/results/lock.js';
import { cli, cleanEnv, exactlyOnce, recordCount, records, tmp, until } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

const N = 60;


/** A pid that no process has now: a child that has exited. */
function deadPid(): number {
  const out = execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(out.trim());
}

describe('one run per results file', () => {
  it('a second run on the same --output is refused at once, naming the first; the file ends with one record per task', async () => {
    // Task 0 ends at once; the others wait (bounded) for a flag set once the second run has ended, so
    // that the first run is still going when the second starts, however slow the machine.
    const flag = t.path('two.flag');
    const wait = `for i in $(seq 1200); do [ -e ${flag} ] && break; sleep 0.05; done`;
    const tasks = t.write('two.txt', ['echo task 0', ...Array.from({ length: N - 1 }, (_, i) => `${wait}; echo task ${i + 1}`)].join('\n') + '\n');
    const out = t.path('two.jsonl');
    const first = cli(['run', tasks, '-o', out, '--resume', '--workers', '2']);
    await until(() => recordCount(out) >= 1, 60_000, 'the first run\'s first record');
    const second = await cli(['run', tasks, '-o', out, '--resume', '--workers', '2']);
    writeFileSync(flag, '');
    const a = await first;
    expect(a.exitCode, String(a.stderr)).toBe(0);
    expect(second.exitCode, String(second.stderr)).toBe(2);
    const err = String(second.stderr);
    expect(err).toContain(`two.jsonl is in use by another slurmpool run (host ${hostname()}, pid ${first.pid}, since `);
    expect(err).toContain('two.jsonl.lock');
    expect(exactlyOnce(records(out), N)).toBe(true);
    expect(existsSync(`${out}.lock`)).toBe(false);
  });

  it('a lock left by a process that is gone (same host) is taken over with a line saying so', async () => {
    const tasks = t.write('dead.txt', 'echo a\necho b\n');
    const out = t.path('dead.jsonl');
    const pid = deadPid();
    writeFileSync(`${out}.lock`, JSON.stringify({ host: hostname(), pid, started: Date.now() - 1000 }));
    const r = await cli(['run', tasks, '-o', out]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toContain(`taking over the lock of ${out} (${out}.lock): process ${pid} no longer exists on ${hostname()}`);
    expect(exactlyOnce(records(out), 2)).toBe(true);
    expect(existsSync(`${out}.lock`)).toBe(false);
  });

  it('another host\'s lock is respected while fresh and taken over once not refreshed for 120 s', async () => {
    const tasks = t.write('remote.txt', 'echo a\n');
    const out = t.path('remote.jsonl');
    const lock = `${out}.lock`;
    writeFileSync(lock, JSON.stringify({ host: 'elsewhere-n7', pid: 1, started: Date.UTC(2026, 0, 2, 3, 4, 5), jobId: '991' }));
    const refused = await cli(['run', tasks, '-o', out]);
    expect(refused.exitCode).toBe(2);
    expect(String(refused.stderr)).toContain('in use by another slurmpool run (host elsewhere-n7, pid 1, since 2026-01-02T03:04:05.000Z (Slurm job 991))');
    expect(existsSync(out)).toBe(false);
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(lock, old, old);
    const r = await cli(['run', tasks, '-o', out]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toMatch(/taking over the lock of .*remote\.jsonl .*: it has not been refreshed for \d+ s .*held by host elsewhere-n7/);
  });

  it('a requeued Slurm job takes over the lock of its earlier start on another node', async () => {
    const tasks = t.write('requeue.txt', 'echo a\n');
    const out = t.path('requeue.jsonl');
    writeFileSync(`${out}.lock`, JSON.stringify({ host: 'elsewhere-n2', pid: 77, started: Date.now() - 5000, jobId: '4242' }));
    const r = await cli(['run', tasks, '-o', out, '--local'], { env: cleanEnv({ SLURM_JOB_ID: '4242', SLURM_RESTART_COUNT: '1' }) });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toContain('it was taken by an earlier start of this Slurm job (restart 0; this is restart 1)');
  });

  it('an unreadable lock file that is fresh is respected (a run may be writing it)', async () => {
    const tasks = t.write('half.txt', 'echo a\n');
    const out = t.path('half.jsonl');
    writeFileSync(`${out}.lock`, '{"host":"n');
    const r = await cli(['run', tasks, '-o', out]);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain('in use by another slurmpool run that is still writing its lock file');
  });

  it('a run whose lock was taken away is told on its next refresh, and does not remove the new holder\'s lock', () => {
    const out = t.path('lost.jsonl');
    const lock = RunLock.acquire(out, { refreshMs: 3_600_000 });
    const lost: string[] = [];
    lock.onLost = (why) => lost.push(why);
    lock.refresh();
    expect(lost).toEqual([]);
    const other = JSON.stringify({ host: 'elsewhere', pid: 5, started: 1 });
    writeFileSync(lock.path, other);
    lock.refresh();
    expect(lost).toEqual([`the lock file ${out}.lock is no longer this run's (its content is another run's)`]);
    lock.release();
    expect(readFileSync(`${out}.lock`, 'utf8')).toBe(other);
  });
});
