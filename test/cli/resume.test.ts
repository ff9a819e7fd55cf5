// Walltime and resume: a run stopped halfway (SIGTERM, SIGUSR1, SIGKILL, its time limit) and resumed ends with exactly one record per task.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cli, cleanEnv, exactlyOnce, FIXTURES, recordCount, records, tmp, until } from './helpers.js';

const t = tmp();
afterAll(() => t.done());


const N = 40;
const SLOW = Array.from({ length: N }, (_, i) => `sleep 0.15; echo task ${i}`).join('\n') + '\n';

describe('stop and resume', () => {
  for (const [name, extra] of [
    ['local', []],
    ['emulation', ['--emulate', '2x1']],
  ] as const) {
    it(`SIGTERM halfway (${name}): exit 3 with how to resume; --resume runs the rest; one record per task`, async () => {
      const tasks = t.write(`slow-${name}.txt`, SLOW);
      const out = t.path(`slow-${name}.jsonl`);
      const run = cli(['run', tasks, '-o', out, '--workers', '2', '--grace', '5s', ...extra]);
      await until(() => recordCount(out) >= 8, 30_000, 'the first records');
      run.kill('SIGTERM');
      const first = await run;
      expect(first.exitCode, String(first.stderr)).toBe(3);
      const err = String(first.stderr);
      expect(err).toMatch(/SIGTERM received: not starting more tasks/);
      expect(err).toMatch(/to continue: slurmpool run .* --resume/);
      const before = records(out);
      expect(before.length).toBeGreaterThanOrEqual(8);
      expect(before.length).toBeLessThan(N);
      expect(new Set(before.map((r) => r.index)).size).toBe(before.length);
      const second = await cli(['run', tasks, '-o', out, '--workers', '2', '--resume', ...extra]);
      expect(second.exitCode, String(second.stderr)).toBe(0);
      expect(String(second.stderr)).toMatch(new RegExp(`${before.length} task\\(s\\) done before are skipped`));
      const all = records(out);
      expect(exactlyOnce(all, N)).toBe(true);
      for (const r of all) expect(r.stdout).toBe(`task ${r.index}\n`);
    });
  }

  it('Ctrl-C on a terminal under --emulate (SIGINT to the whole foreground group): agents are not hit, nodes not lost, no task starts after it', async () => {
    const tasks = t.write('ctrlc.txt', SLOW);
    const out = t.path('ctrlc.jsonl');
    // detached: its own process group, as a terminal's foreground job is.
    const run = cli(['run', tasks, '-o', out, '--emulate', '2x1', '--grace', '5s'], { detached: true });
    await until(() => recordCount(out) >= 6, 30_000, 'the first records');
    const at = Date.now();
    process.kill(-run.pid!, 'SIGINT');
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(3);
    const err = String(r.stderr);
    expect(err).toMatch(/SIGINT received: not starting more tasks/);
    expect(err).not.toMatch(/agent lost/);
    const recs = records(out).filter((x) => x.ok);
    for (const x of recs) expect(Number(x.started)).toBeLessThan(at + 100);
  });

  it('SIGUSR1 (the --signal warning) stops dispatching the same way', async () => {
    const tasks = t.write('usr1.txt', SLOW);
    const out = t.path('usr1.jsonl');
    const run = cli(['run', tasks, '-o', out, '--workers', '2']);
    await until(() => recordCount(out) >= 4, 30_000, 'the first records');
    run.kill('SIGUSR1');
    const r = await run;
    expect(r.exitCode).toBe(3);
    expect(String(r.stderr)).toMatch(/SIGUSR1 received/);
  });

  it('after SIGKILL and a torn last line, --resume names the line, runs that task again, keeps one record per task', async () => {
    const tasks = t.write('kill.txt', SLOW);
    const out = t.path('kill.jsonl');
    const run = cli(['run', tasks, '-o', out, '--workers', '2']);
    await until(() => recordCount(out) >= 6, 30_000, 'the first records');
    run.kill('SIGKILL');
    await run;
    const kept = records(out);
    // A write cut short by the kill: half a record at the end, as a crash mid-write leaves it.
    const victim = [...Array(N).keys()].find((i) => !kept.some((r) => r.index === i))!;
    appendFileSync(out, `{"index":${victim},"ok":true,"command":"sleep 0.15; ec`);
    // The line after the header and the records.
    const torn = kept.length + 2;
    const r = await cli(['run', tasks, '-o', out, '--resume', '--workers', '2']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toContain(`kill.jsonl line ${torn} is incomplete (torn write`);
    expect(String(r.stderr)).toContain('that task will run again');
    expect(exactlyOnce(records(out), N)).toBe(true);
  });

  it('--resume runs failed tasks again and replaces their records', async () => {
    const flag = t.path('flag');
    const tasks = t.write('flaky.txt', `true\ntest -e ${flag}\ntrue\n`);
    const out = t.path('flaky.jsonl');
    const first = await cli(['run', tasks, '-o', out]);
    expect(first.exitCode).toBe(1);
    expect(records(out).find((r) => r.index === 1)!.ok).toBe(false);
    writeFileSync(flag, '');
    const second = await cli(['run', tasks, '-o', out, '--resume']);
    expect(second.exitCode).toBe(0);
    expect(String(second.stderr)).toMatch(/2 task\(s\) done before are skipped, 1 that failed run again/);
    const recs = records(out);
    expect(exactlyOnce(recs, 3)).toBe(true);
    expect(recs.every((r) => r.ok)).toBe(true);
    const third = await cli(['run', tasks, '-o', out, '--resume']);
    expect(third.exitCode).toBe(0);
    expect(String(third.stderr)).toMatch(/nothing to run/);
  });

  it('refuses to resume when the task file changed under recorded tasks', async () => {
    const tasks = t.write('changed.txt', 'echo a\necho b\n');
    const out = t.path('changed.jsonl');
    expect((await cli(['run', tasks, '-o', out])).exitCode).toBe(0);
    writeFileSync(tasks, 'echo a\necho B\n');
    const r = await cli(['run', tasks, '-o', out, '--resume']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/cannot resume: changed\.jsonl line \d: task 1 ran `echo b`, but task file .* line 2 is now `echo B`/);
    expect(records(out)).toHaveLength(2);
  });

  it('map: SIGTERM halfway and --resume give one record per item', async () => {
    const out = t.path('map.jsonl');
    const run = cli(['map', join(FIXTURES, 'tasks.mjs'), 'slow', '--range', '0:60', '--workers', '2', '--chunksize', '1', '-o', out]);
    await until(() => recordCount(out) >= 10, 30_000, 'the first records');
    run.kill('SIGTERM');
    expect((await run).exitCode).toBe(3);
    const r = await cli(['map', join(FIXTURES, 'tasks.mjs'), 'slow', '--range', '0:60', '--workers', '2', '-o', out, '--resume']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(exactlyOnce(recs, 60)).toBe(true);
    for (const x of recs) expect(x.value).toBe(x.index);
  });

  it('a batch job past its time limit under `slurmpool emulate` stops resumably; resubmitted, it finishes', async () => {
    // 60 × 0.3 s on 2 workers: longer than the job's 8 s limit.
    const tasks = t.write('wall.txt', Array.from({ length: 60 }, (_, i) => `sleep 0.3; echo ${i}`).join('\n') + '\n');
    const out = t.path('wall.jsonl');
    const env = cleanEnv({ SLURMPOOL_CLI: CLI, TASKS: tasks, OUT: out });
    const job = join(FIXTURES, 'walltime.sbatch');
    const first = await cli(['emulate', '--kill-wait', '3', '--', job], { env });
    const err = String(first.stderr);
    // It stops itself before the limit (SLURM_JOB_END_TIME), leaving the grace period to its running tasks.
    expect(first.exitCode, err).toBe(3);
    expect(err).toMatch(/stopped early \(time\)/);
    const partial = records(out).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(60);
    const second = await cli(['emulate', '--time', '2:00', '--', job], { env });
    expect(second.exitCode, String(second.stderr)).toBe(0);
    expect(exactlyOnce(records(out), 60)).toBe(true);
  });
});
