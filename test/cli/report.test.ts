// The report and status commands, and --report on run, as a user runs them.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli, tmp } from './helpers.js';

describe('slurmpool report / status / --report', () => {
  it('run --report writes one self-contained HTML file; report and status read the results file', async () => {
    const t = tmp();
    try {
      const tasks = t.write('tasks.txt', `${Array.from({ length: 20 }, (_, i) => `echo ${i}`).join('\n')}\nexit 5\n`);
      const r = await cli(['run', tasks, '-o', t.path('res.jsonl'), '--report', t.path('run.html'), '--emulate', '2x1'], { cwd: t.dir });
      expect(r.exitCode, String(r.stderr)).toBe(1);
      expect(String(r.stderr)).toMatch(/report: .*run\.html \(\d+ KB\)/);
      const html = readFileSync(t.path('run.html'), 'utf8');
      expect(html.startsWith('<!doctype html>') || html.startsWith('<!DOCTYPE html>')).toBe(true);
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/i);

      const rep = await cli(['report', t.path('res.jsonl')], { cwd: t.dir });
      expect(rep.exitCode, String(rep.stderr)).toBe(0);
      expect(String(rep.stderr)).toMatch(/report: .*res\.html \(\d+ KB, 21 tasks, 1 failed, emulate mode\)/);
      expect(existsSync(t.path('res.html'))).toBe(true);

      const st = await cli(['status', t.path('res.jsonl')], { cwd: t.dir });
      expect(st.exitCode).toBe(0);
      expect(String(st.stdout)).toMatch(/^slurmpool status: slurmpool run .*tasks\.txt -o .*res\.jsonl --report .*run\.html --emulate 2x1\n/);
      expect(String(st.stdout)).toMatch(/emulate mode, 21 tasks done of 21 \(100\.0%\), 1 failed; .*, all recorded/);
      expect(String(st.stdout)).toMatch(/emu1/);
      const js = await cli(['status', t.path('res.jsonl'), '--json'], { cwd: t.dir });
      expect(JSON.parse(String(js.stdout).trim().split('\n')[0]!)).toMatchObject({ failed: 1 });
    } finally {
      t.done();
    }
  });

  it('report and status on a file that is not a results file exit 2 naming the file and line; an empty one says so', async () => {
    const t = tmp();
    try {
      const text = t.write('notes.txt', 'hello world\nthis is text\n');
      const rep = await cli(['report', text]);
      expect(rep.exitCode).toBe(2);
      expect(String(rep.stderr)).toContain(`${text} is not a results file: no line of it is a task record (${text} line 1: not JSON (`);
      expect(existsSync(t.path('notes.html'))).toBe(false);
      const st = await cli(['status', text]);
      expect(st.exitCode).toBe(2);
      expect(String(st.stderr)).toContain(`${text} is not a results file: no line of it is a task record (${text} line 1: not JSON (`);
      const notRecords = t.write('objs.jsonl', '{"a":1}\n{"b":2}\n');
      const r2 = await cli(['report', notRecords]);
      expect(r2.exitCode).toBe(2);
      expect(String(r2.stderr)).toContain(`${notRecords} line 1: not a task record`);
      const empty = t.write('empty.jsonl', '');
      const r3 = await cli(['report', empty]);
      expect(r3.exitCode).toBe(2);
      expect(String(r3.stderr)).toContain(`${empty} holds no task records (it is empty): nothing to report`);
    } finally {
      t.done();
    }
  });

  it('a missing results file is a clear error', async () => {
    const r = await cli(['report', '/nonexistent/res.jsonl']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/results file \/nonexistent\/res\.jsonl does not exist/);
  });
});
