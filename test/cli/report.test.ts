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
      expect(String(rep.stderr)).toMatch(/report: .*res\.html \(\d+ KB, 21 tasks, 1 failed\)/);
      expect(existsSync(t.path('res.html'))).toBe(true);

      const st = await cli(['status', t.path('res.jsonl')], { cwd: t.dir });
      expect(st.exitCode).toBe(0);
      expect(String(st.stdout)).toMatch(/21 tasks done of 21 \(100\.0%\), 1 failed/);
      expect(String(st.stdout)).toMatch(/emu1/);
      const js = await cli(['status', t.path('res.jsonl'), '--json'], { cwd: t.dir });
      expect(JSON.parse(String(js.stdout).trim().split('\n')[0]!)).toMatchObject({ failed: 1 });
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
