// The HTML file itself: self-contained (nothing to fetch), data and text escaped, compact with many tasks.
import { describe, expect, it } from 'vitest';
import { buildReportSync, renderReport } from '../../dist/report/index.js';
import { CLIENT_JS } from '../../dist/report/client.js';

const T = 1_700_000_000_000;
const rec = (index: number, node: string, worker: number, start: number, dur: number, extra: Record<string, unknown> = {}) => ({ index, ok: true, node, worker, started: T + start, ended: T + start + dur, attempts: 1, ...extra });

describe('the report file', () => {
  it('needs nothing but itself: inline style and script, a CSP that forbids fetching, no src or href to anywhere', () => {
    const html = renderReport(buildReportSync([rec(0, 'a', 0, 0, 10), rec(1, 'a', 1, 0, 12, { ok: false, error: { name: 'E', message: 'm' } })]));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`);
    const refs = [...html.matchAll(/\b(?:src|href|action|srcset)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(r).toMatch(/^(#|data:)/);
    expect(html).not.toMatch(/@import|url\(/);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("a task's error text cannot break out of the page: escaped in the tables, \\u003c in the data", () => {
    const evil = '</script><script>alert(1)</script><img src=x onerror=alert(2)>';
    const html = renderReport(buildReportSync([rec(0, 'n<1>', 0, 0, 10, { ok: false, error: { name: 'Error', message: evil, stack: evil } })], { command: `echo "${evil}"` }));
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(1)');
    expect(html).toContain('\\u003c/script>\\u003cscript>alert(1)');
    expect(html.match(/<script/g)!.length).toBe(2);
  });

  it('the page script parses', () => {
    expect(() => new Function(CLIENT_JS)).not.toThrow();
  });

  it('100,000 tasks on 32 workers: binned, under 1.5 MB', () => {
    const recs = [];
    for (let i = 0; i < 100_000; i++) recs.push(rec(i, `n${i % 4}`, (i >> 2) % 8, Math.floor(i / 32) * 20, 18, i % 997 === 0 ? { ok: false, error: { name: 'E', message: `bad ${i}` } } : {}));
    const m = buildReportSync(recs);
    expect(m.timeline.mode).toBe('bins');
    const html = renderReport(m);
    expect(html.length).toBeLessThan(1.5e6);
    expect(html).toContain('data-mode="bins"');
    expect(html).toContain(`data-bars="${m.counts.failed}"`);
  });

  it('the failed-task table shows the end of a failed command\'s stderr (escaped), or where it went', () => {
    const stderr = `${Array.from({ length: 12 }, (_, i) => `warning ${i}`).join('\n')}\nsim: cannot open <in.dat>: No such file\n`;
    const m = buildReportSync([
      rec(0, 'a', 0, 0, 10, { ok: false, command: './sim 0', exitCode: 2, stderr, error: { name: 'CommandError', message: 'command exited with status 2: ./sim 0' } }),
      rec(1, 'a', 1, 0, 10, { ok: false, command: './sim 1', exitCode: 3, stderr: '', stderrFile: '/logs/0/1.err', error: { name: 'CommandError', message: 'command exited with status 3' } }),
      rec(2, 'a', 0, 20, 10, { stderr: 'fine, ignored' }),
    ]);
    expect(m.failed.map((r) => r.stderrTail)).toEqual([`…\n${['warning 5', 'warning 6', 'warning 7', 'warning 8', 'warning 9', 'warning 10', 'warning 11', 'sim: cannot open <in.dat>: No such file'].join('\n')}`, '(stderr in /logs/0/1.err)']);
    const html = renderReport(m);
    expect(html).toContain('<pre class="stderr" title="the end of its stderr">…\nwarning 5\n');
    expect(html).toContain('sim: cannot open &lt;in.dat&gt;: No such file</pre>');
    expect(html).toContain('(stderr in /logs/0/1.err)');
    expect(html).not.toContain('fine, ignored');
  });
});
