// A node lost mid-run, through the CLI: the run goes on (the node gets a new agent), the results file says
// when the node was lost, the task that ran again says so, and the report marks the node.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, exactlyOnce, records, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

describe('a node lost mid-run', () => {
  it('is written into the results file and marked in the report; its task re-runs, recorded once as re-dispatched', async () => {
    const marker = t.path('killed');
    // Command 5 kills its own agent (its first ancestor that is a node process) the first time it runs.
    const killAgent = `p=$$; while [ "$(cat /proc/$p/comm)" != node ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done; kill -9 $p`;
    const lines = Array.from({ length: 12 }, (_, i) => (i === 5 ? `if [ ! -e ${marker} ]; then touch ${marker}; ${killAgent}; fi; echo ${i}` : `sleep 0.2; echo ${i}`));
    const tasks = t.write('tasks.txt', `${lines.join('\n')}\n`);
    const out = t.path('out.jsonl');
    const html = t.path('out.html');
    const r = await cli(['run', tasks, '-o', out, '--emulate', '2x1', '--report', html]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(existsSync(marker)).toBe(true);
    const all = records(out);
    expect(exactlyOnce(all, 12)).toBe(true);
    const five = all.find((x) => x.index === 5)!;
    expect(five).toMatchObject({ ok: true, redispatched: true });
    const events = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"nodeLost"'))
      .map((l) => JSON.parse(l) as { slurmpool: { node: string; at: number; reason: string } });
    expect(events.length).toBe(1);
    expect(events[0]!.slurmpool.node).toMatch(/^emu[12]$/);
    expect(readFileSync(html, 'utf8')).toMatch(new RegExp(`<tr data-node="${events[0]!.slurmpool.node}" class="lost"><td>${events[0]!.slurmpool.node} <span class="bad" title="[^"]*">lost at `));
    expect(String(r.stderr)).toMatch(/starting it again \(restart 1 of 3\)/);
  });
});
