// Failed commands: --retries runs them again (attempts in the record and the report), --halt stops the
// run as GNU parallel does (exit status, cancelled records that --resume runs), across emulated nodes.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, exactlyOnce, records, summaryOf, tmp, type Rec } from './helpers.js';

const t = tmp('slurmpool-failures-');
afterAll(() => t.done());

/** The last record of each index in a results file (a resumed run appends). */
function latest(file: string): Map<number, Rec> {
  const m = new Map<number, Rec>();
  for (const r of records(file)) m.set(r.index, r);
  return m;
}

describe('--retries: failed commands run again', () => {
  it('a command failing the first time and succeeding the second (marker file): ok with attempts 2, in the record, the summary and the report (emulation)', async () => {
    const out = t.path('retry.jsonl');
    const tpl = `if [ -e ${t.dir}/m{} ]; then echo second {}; else touch ${t.dir}/m{}; echo first {} >&2; exit 3; fi`;
    const r = await cli(['run', '--emulate', '2x1', '--retries', '1', '-o', out, tpl, ':::', 'a', 'b', 'c'], { cwd: t.dir });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(exactlyOnce(recs, 3)).toBe(true);
    for (const [i, x] of recs.entries()) expect(x).toMatchObject({ ok: true, attempts: 2, exitCode: 0, stdout: `second ${'abc'[i]}\n` });
    expect(String(r.stderr)).toMatch(/3 succeeded, 3 retried/);
    expect(String(r.stderr)).not.toMatch(/failed/);
    const html = t.path('retry.html');
    const rep = await cli(['report', out, '-o', html]);
    expect(rep.exitCode, String(rep.stderr)).toBe(0);
    const table = /<table id="retries">.*?<\/table>/s.exec(readFileSync(html, 'utf8'))?.[0] ?? '';
    expect(table.match(/<td class="n">2<\/td>/g)).toHaveLength(3);
  });

  it('retries exhausted: the record says failed with every attempt counted, and its failure line says so', async () => {
    const out = t.path('exhausted.jsonl');
    const r = await cli(['run', '--local', '--retries', '2', '-o', out, `: {}; echo try >> ${t.dir}/tries; echo nope >&2; exit 4`, ':::', 'x'], { cwd: t.dir });
    expect(r.exitCode).toBe(1);
    expect(records(out)).toEqual([expect.objectContaining({ ok: false, exitCode: 4, attempts: 3 })]);
    expect(readFileSync(t.path('tries'), 'utf8')).toBe('try\ntry\ntry\n');
    expect(String(r.stderr)).toMatch(/task 1 failed: exit 4 on \S+ after 3 attempts: nope\n/);
  });

  it('a timed-out command is retried; without --retries a failed command runs once', async () => {
    const out = t.path('timeout.jsonl');
    const r = await cli(['run', '--local', '--retries', '1', '--timeout', '300ms', '-o', out, `: {}; if [ -e ${t.dir}/slow ]; then echo quick; else touch ${t.dir}/slow; sleep 30; fi`, ':::', '1'], { cwd: t.dir });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(records(out)).toEqual([expect.objectContaining({ ok: true, attempts: 2, stdout: 'quick\n', timedOut: false })]);
    const once = t.path('once.jsonl');
    const r2 = await cli(['run', '--local', '-o', once, `: {}; echo x >> ${t.dir}/once; exit 1`, ':::', '1'], { cwd: t.dir });
    expect(r2.exitCode).toBe(1);
    expect(records(once)).toEqual([expect.objectContaining({ ok: false, attempts: 1 })]);
    expect(readFileSync(t.path('once'), 'utf8')).toBe('x\n');
  });
});

describe('--halt', () => {
  it('now,fail=1 (emulation): exits with the failed command\'s status, records the running tasks as cancelled, and --resume runs them', async () => {
    const out = t.path('halt-now.jsonl');
    const d = t.dir;
    // Task 1 fails once tasks 2 and 3 are running (they sleep until the marker exists; bounded loops).
    const tpl =
      `if [ -e ${d}/ok ]; then echo done {}; exit 0; fi; ` +
      `if [ {} = 1 ]; then for i in $(seq 200); do [ -e ${d}/s2 ] && [ -e ${d}/s3 ] && break; sleep 0.05; done; echo broke >&2; exit 7; fi; ` +
      `touch ${d}/s{}; sleep 60`;
    const r = await cli(['run', '--emulate', '3x1', '--halt', 'now,fail=1', '-o', out, tpl, ':::', '1', '2', '3', '4', '5', '6'], { cwd: d });
    expect(r.exitCode, String(r.stderr)).toBe(7);
    expect(existsSync(`${d}/s2`) && existsSync(`${d}/s3`)).toBe(true);
    const recs = latest(out);
    expect(recs.get(0)).toMatchObject({ ok: false, exitCode: 7, stderr: 'broke\n' });
    for (const i of [1, 2]) {
      expect(recs.get(i)).toMatchObject({ ok: false, error: { kind: 'cancelled' } });
      expect(recs.get(i)!.command).toMatch(new RegExp(`touch ${d}/s${i + 1}; sleep 60$`));
    }
    // Tasks not started are cancelled or not recorded; none ran.
    for (const i of [3, 4, 5]) expect(recs.get(i)?.ok ?? false).toBe(false);
    const err = String(r.stderr);
    expect(err).toMatch(/task 1 failed: exit 7 on emu\d: broke\n/);
    expect(err).toMatch(/--halt now,fail=1: 1 failed; stopping the running tasks/);
    expect(err).toMatch(/\d cancelled/);
    // --resume runs everything that did not succeed (the marker makes them quick).
    t.write('ok', '');
    const again = await cli(['run', '--emulate', '3x1', '--halt', 'now,fail=1', '-o', out, '--resume', tpl, ':::', '1', '2', '3', '4', '5', '6'], { cwd: d });
    expect(again.exitCode, String(again.stderr)).toBe(0);
    const done = latest(out);
    expect([...done.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const [i, x] of done) expect(x, `task ${i}`).toMatchObject({ ok: true, stdout: `done ${i + 1}\n` });
  });

  it('soon,fail=2: running tasks finish, no more start; the exit status is the number failed; --json says it', async () => {
    const out = t.path('halt-soon.jsonl');
    const args = ['0', '3', '0', '4', '5', ...Array.from({ length: 15 }, () => '0')];
    const r = await cli(['run', '--local', '--workers', '1', '--chunksize', '1', '--json', '--halt', 'soon,fail=2', '-o', out, 'echo e{} >&2; exit {}', ':::', ...args], { cwd: t.dir });
    const recs = latest(out);
    const ran = [...recs.values()].filter((x) => typeof x.exitCode === 'number');
    const failed = ran.filter((x) => x.exitCode !== 0);
    // GNU parallel's status for fail=N: the number of failed tasks (a task the worker had already started when the run halted finishes and counts).
    expect(r.exitCode, String(r.stderr)).toBe(failed.length);
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect([0, 1, 2, 3].map((i) => [recs.get(i)?.ok, recs.get(i)?.exitCode])).toEqual([[true, 0], [false, 3], [true, 0], [false, 4]]);
    // No more started after the halt: what the one worker had not begun is cancelled or not recorded.
    expect(ran.length).toBeLessThan(args.length);
    for (const x of recs.values()) if (typeof x.exitCode !== 'number') expect(x).toMatchObject({ ok: false, error: { kind: 'cancelled' } });
    const s = summaryOf(String(r.stdout));
    expect(s).toMatchObject({ failed: failed.length, stopped: { kind: 'halt' }, exitCode: failed.length });
    expect((s.failedAt as { list: number[] }).list.slice(0, 2)).toEqual([2, 4]);
    const events = String(r.stderr).split('\n').filter((l) => l.includes('"event":"failed"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.slice(0, 2).map((e) => [e.task, e.exitCode, e.stderr])).toEqual([[2, 3, 'e3'], [4, 4, 'e4']]);
  });

  it('soon,fail=P%: the exit status is the percentage failed', async () => {
    const r = await cli(['run', '--local', '--workers', '1', '--chunksize', '1', '--halt', 'soon,fail=50%', 'exit {}', ':::', '1', '2', '0', '0'], { cwd: t.dir });
    expect(r.exitCode, String(r.stderr)).toBe(50);
    expect(String(r.stderr)).toMatch(/--halt soon,fail=50%: 2 failed/);
  });

  it('now,success=1: the first success ends the run with 0, the running tasks cancelled', async () => {
    const out = t.path('halt-success.jsonl');
    const r = await cli(['run', '--emulate', '2x1', '--halt', 'now,success=1', '-o', out, `if [ {} = fast ]; then for i in $(seq 200); do [ -e ${t.dir}/slow-started ] && break; sleep 0.05; done; exit 0; fi; touch ${t.dir}/slow-started; sleep 60`, ':::', 'fast', 'slow'], { cwd: t.dir });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = latest(out);
    expect(recs.get(0)).toMatchObject({ ok: true });
    expect(recs.get(1)).toMatchObject({ ok: false, error: { kind: 'cancelled' } });
    expect(String(r.stderr)).toMatch(/1 succeeded, 1 cancelled/);
  });

  it('refuses a --halt it cannot read, naming the forms', async () => {
    const r = await cli(['run', '--halt', 'sometimes', 'true', ':::', '1']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/--halt must be WHEN,WHY=N or WHEN,WHY=P%.*got "sometimes"/);
  });
});
