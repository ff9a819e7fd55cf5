// slurmpool run, as a user runs it: task files, records, exit statuses, CPU pinning, output capture.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, records, summaryOf, tmp, type Rec } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

/** The most records of one node whose [started, ended) overlap at any moment. */
function maxOverlap(recs: Rec[]): number {
  const ev: [number, number][] = [];
  for (const r of recs) {
    ev.push([r.started as number, 1]);
    ev.push([r.ended as number, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

describe('slurmpool run', () => {
  it('runs every command once, skipping blank lines and comments, and writes a record per task', async () => {
    const tasks = t.write('basic.txt', '# header\necho one\n\necho two >&2\n  # indented comment\nprintf "%s" "$SLURMPOOL_TASK_ID"\n');
    const out = t.path('basic.jsonl');
    const r = await cli(['run', tasks, '--output', out, '--workers', '2']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(recs.map((x) => x.index)).toEqual([0, 1, 2]);
    expect(recs.map((x) => x.line)).toEqual([2, 4, 6]);
    expect(recs[0]).toMatchObject({ ok: true, command: 'echo one', exitCode: 0, signal: null, stdout: 'one\n', stderr: '' });
    expect(recs[1]).toMatchObject({ ok: true, stderr: 'two\n' });
    expect(recs[2]).toMatchObject({ stdout: '2' });
    for (const x of recs) {
      expect(typeof x.node).toBe('string');
      expect(x.ended as number).toBeGreaterThanOrEqual(x.started as number);
    }
    expect(String(r.stderr)).toMatch(/3 tasks: 3 succeeded/);
    expect(statSync(out).mode & 0o777).toBe(0o666 & ~process.umask());
  });

  it('without --output prints each command output, and with --json the records, on stdout', async () => {
    const tasks = t.write('print.txt', 'echo alpha\necho beta\n');
    const plain = await cli(['run', tasks, '--quiet']);
    expect(plain.exitCode).toBe(0);
    expect(String(plain.stdout).split('\n').filter(Boolean).sort()).toEqual(['alpha', 'beta']);
    expect(String(plain.stderr)).toBe('');
    const json = await cli(['run', tasks, '--json']);
    expect(json.exitCode).toBe(0);
    expect(records(String(json.stdout), true).map((x) => x.stdout).sort()).toEqual(['alpha\n', 'beta\n']);
    expect(summaryOf(String(json.stderr))).toMatchObject({ total: 2, succeeded: 2, failed: 0, exitCode: 0 });
  });

  it('reads commands from standard input with -', async () => {
    const r = await cli(['run', '-', '--json'], { input: 'echo a\necho b\necho c\n' });
    expect(r.exitCode).toBe(0);
    expect(records(String(r.stdout), true)).toHaveLength(3);
  });

  it('exits 1 when commands fail: a line per failure as it happens, the summary lists their lines with the error and the way to rerun them', async () => {
    const tasks = t.write('fail.txt', 'true\nexit 3\ntrue\nsh -c "kill -KILL \\$\\$"\ntrue\nexit 1\n');
    const out = t.path('fail.jsonl');
    const r = await cli(['run', tasks, '-o', out]);
    expect(r.exitCode).toBe(1);
    const err = String(r.stderr);
    // One line per failure (line as in the file, exit status or signal, node), before the summary.
    const summaryAt = err.indexOf('6 tasks:');
    for (const l of [/line 2 failed: exit 3 on \S+\n/, /line 4 failed: killed by SIGKILL on \S+/, /line 6 failed: exit 1 on \S+\n/]) {
      const m = l.exec(err);
      expect(m, err).not.toBeNull();
      expect(m!.index).toBeLessThan(summaryAt);
    }
    expect(err).toMatch(/failed lines: 2,4,6\n/);
    expect(err).toMatch(/ {4}line 2: command exited with status 3: exit 3\n/);
    expect(err).toContain(`--resume`);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(recs[1]).toMatchObject({ ok: false, exitCode: 3, signal: null });
    expect(recs[3]).toMatchObject({ ok: false, exitCode: 137, signal: 'SIGKILL' });
    expect((recs[5]!.error as { message: string }).message).toMatch(/exited with status 1/);
    const json = await cli(['run', tasks, '--json', '-o', t.path('fail2.jsonl')]);
    const s = summaryOf(String(json.stdout));
    expect(s).toMatchObject({ failed: 3, failedAt: { unit: 'line', list: [2, 4, 6] }, exitCode: 1 });
    expect((s.failures as { at: string }[]).map((f) => f.at)).toEqual(['line 2', 'line 4', 'line 6']);
    // --json: each failure is an event line on stderr, as it happens.
    const events = String(json.stderr).split('\n').filter((l) => l.includes('"event":"failed"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => [e.line, e.exitCode, e.signal])).toEqual(expect.arrayContaining([[2, 3, null], [4, 137, 'SIGKILL'], [6, 1, null]]));
    expect(events).toHaveLength(3);
    for (const e of events) expect(typeof e.node).toBe('string');
  });

  it('stops a command at its --timeout: SIGTERM to its process group, SIGKILL after a grace', async () => {
    const tasks = t.write('timeout.txt', 'sleep 30\ntrap "" TERM; sleep 30\necho fine\n');
    const out = t.path('timeout.jsonl');
    const t0 = Date.now();
    const r = await cli(['run', tasks, '-o', out, '--timeout', '500ms', '--workers', '3']);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.exitCode).toBe(1);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(recs[0]).toMatchObject({ ok: false, timedOut: true, signal: 'SIGTERM' });
    expect(recs[1]).toMatchObject({ ok: false, timedOut: true, signal: 'SIGKILL', exitCode: null });
    expect(recs[2]).toMatchObject({ ok: true, stdout: 'fine\n' });
  });

  it('keeps small output in the record and puts large output in --log-dir files, in subfolders by index', async () => {
    const tasks = t.write('big.txt', 'echo small\nhead -c 20000 /dev/zero | tr "\\0" x\n');
    const out = t.path('big.jsonl');
    const logs = t.path('logs');
    const r = await cli(['run', tasks, '-o', out, '--log-dir', logs]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(recs[0]).toMatchObject({ stdout: 'small\n' });
    expect(recs[1]!.stdout).toBe('');
    expect(recs[1]!.stdoutFile).toBe(`${logs}/0/1.out`);
    expect(readFileSync(`${logs}/0/1.out`, 'utf8')).toHaveLength(20000);
  });

  it('gives each command --cpus-per-task cores: ⌊cpus/N⌋ at once, OMP_NUM_THREADS=N, pinned (500 commands)', async () => {
    const line = 'printf "%s %s %s " "$OMP_NUM_THREADS" "$SLURMPOOL_TASK_CPUS" "$SLURMPOOL_TASK_ID"; grep Cpus_allowed_list /proc/self/status\n';
    const tasks = t.write('pin.txt', line.repeat(500));
    const out = t.path('pin.jsonl');
    const r = await cli(['run', tasks, '--cpus-per-task', '2', '-o', out, '--quiet']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(recs).toHaveLength(500);
    const cpus = Math.max(2, (await import('node:os')).availableParallelism());
    const slots = Math.max(1, Math.floor(cpus / 2));
    const byNode = new Map<string, Rec[]>();
    for (const x of recs) {
      const [omp, pinned, id, , allowed] = String(x.stdout).trim().split(/\s+/);
      expect(omp).toBe('2');
      expect(Number(id)).toBe(x.index);
      expect(pinned).toBe(x.cpus);
      // The command's own affinity is the slot's cores: two of them where the machine has two.
      expect(allowed).toBe(pinned);
      expect(new Set(String(allowed).split(/[,-]/)).size).toBeLessThanOrEqual(2);
      const list = byNode.get(String(x.node)) ?? [];
      list.push(x);
      byNode.set(String(x.node), list);
    }
    for (const list of byNode.values()) {
      expect(new Set(list.map((x) => x.worker)).size).toBeLessThanOrEqual(slots);
      expect(maxOverlap(list)).toBeLessThanOrEqual(slots);
    }
  });

  it('pins per emulated node and worker in emulation', async () => {
    const tasks = t.write('pin-emu.txt', 'echo "$SLURMPOOL_NODE $OMP_NUM_THREADS $SLURMPOOL_TASK_CPUS"\n'.repeat(12));
    const out = t.path('pin-emu.jsonl');
    const r = await cli(['run', tasks, '--emulate', '2x2', '--cpus-per-task', '2', '-o', out, '--quiet']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(recs).toHaveLength(12);
    for (const x of recs) {
      const [node, omp, pinned] = String(x.stdout).trim().split(' ');
      expect(node).toBe(x.node);
      expect(omp).toBe('2');
      expect(pinned).toBe(x.cpus);
      expect(x.worker).toBe(0);
    }
    expect(new Set(recs.map((x) => x.node))).toEqual(new Set(['emu1', 'emu2']));
  });

  it('refuses bad input with exit 2, a clear message and no results file', async () => {
    const out = t.path('never.jsonl');
    const missing = await cli(['run', t.path('nope.txt'), '-o', out]);
    expect(missing.exitCode).toBe(2);
    expect(String(missing.stderr)).toMatch(/task file .*nope\.txt does not exist/);
    const empty = await cli(['run', t.write('empty.txt', ''), '-o', out]);
    expect(empty.exitCode).toBe(2);
    expect(String(empty.stderr)).toMatch(/empty\.txt is empty/);
    const comments = await cli(['run', t.write('comments.txt', '# a\n\n# b\n'), '-o', out]);
    expect(comments.exitCode).toBe(2);
    expect(String(comments.stderr)).toMatch(/has no commands: its 3 lines are blank or # comments/);
    const badOpt = await cli(['run', t.write('ok.txt', 'true\n'), '--chunksize', 'lots', '-o', out]);
    expect(badOpt.exitCode).toBe(2);
    expect(String(badOpt.stderr)).toContain('--chunksize must be a positive whole number, got "lots"');
    const unknown = await cli(['run', t.path('ok.txt'), '--bogus']);
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr)).toMatch(/Unknown argument: bogus/);
    const resumeNoOut = await cli(['run', t.path('ok.txt'), '--resume']);
    expect(resumeNoOut.exitCode).toBe(2);
    expect(String(resumeNoOut.stderr)).toContain('--resume needs --output');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses to append to a results file that holds records, unless --resume or --overwrite', async () => {
    const tasks = t.write('twice.txt', 'true\n');
    const out = t.path('twice.jsonl');
    expect((await cli(['run', tasks, '-o', out])).exitCode).toBe(0);
    const again = await cli(['run', tasks, '-o', out]);
    expect(again.exitCode).toBe(2);
    expect(String(again.stderr)).toMatch(/already holds 1 record.*\n.*--resume.*--overwrite/);
    expect((await cli(['run', tasks, '-o', out, '--overwrite'])).exitCode).toBe(0);
    expect(records(out)).toHaveLength(1);
    const notDir = await cli(['run', tasks, '-o', t.path('no/such/dir/r.jsonl')]);
    expect(notDir.exitCode).toBe(2);
    expect(String(notDir.stderr)).toMatch(/cannot write results to .*: its folder .* does not exist/);
  });

  it('takes options from SLURMPOOL_* variables, the command line winning', async () => {
    const tasks = t.write('envopt.txt', 'echo $OMP_NUM_THREADS\n');
    const fromEnv = await cli(['run', tasks, '--json'], { env: { ...process.env, SLURMPOOL_CPUS_PER_TASK: '2', SLURMPOOL_QUIET: '1' } });
    expect(records(String(fromEnv.stdout), true)[0]!.stdout).toBe('2\n');
    const cmdWins = await cli(['run', tasks, '--json', '-c', '1'], { env: { ...process.env, SLURMPOOL_CPUS_PER_TASK: '2' } });
    expect(records(String(cmdWins.stdout), true)[0]!.stdout).toBe('1\n');
    const bad = await cli(['run', tasks], { env: { ...process.env, SLURMPOOL_RETRIES: 'x' } });
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toContain('SLURMPOOL_RETRIES must be a whole number ≥ 0, got "x"');
  });

  it('prints help with examples for every command', async () => {
    for (const c of ['run', 'map', 'env', 'emulate', 'demo']) {
      const r = await cli([c, '--help']);
      expect(r.exitCode).toBe(0);
      expect(String(r.stdout)).toContain('Examples:');
    }
    const top = await cli(['--help']);
    expect(String(top.stdout)).not.toMatch(/^ +slurmpool agent/m);
    expect(String(top.stdout)).toContain('slurmpool agent is the per-node process');
  });
});
