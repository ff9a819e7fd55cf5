// The live view: progress per node from a results file that is still being written.
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StatusTracker, renderStatus, statusFromResults } from '../../dist/report/index.js';

const T = 1_700_000_000_000;
const line = (index: number, node: string, worker: number, ended: number, ok = true) =>
  `${JSON.stringify({ index, ok, ...(ok ? { value: index } : { error: { name: 'E', message: 'no' } }), node, worker, started: T + ended - 100, ended: T + ended, attempts: 1 })}\n`;

describe('slurmpool status from a results file', () => {
  it('counts per node, rates (overall and over the last minute), last activity, ETA from the metadata total', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'slurmpool-status-')), 'results.jsonl');
    let text = `${JSON.stringify({ slurmpool: { version: 1, command: 'slurmpool map t.mjs f in.jsonl', jobId: '99', nodes: [{ node: 'n1', workers: 2 }, { node: 'n2', workers: 2 }, { node: 'n3', workers: 2 }], started: T, tasks: 100 } })}\n`;
    // n1: 20 tasks over 100 s, 10 of them in the last 60 s; n2: 5 tasks, one failed, all long ago; n3 nothing yet.
    for (let i = 0; i < 20; i++) text += line(i, 'n1', i % 2, 100_000 + i * 5_000);
    for (let i = 0; i < 5; i++) text += line(20 + i, 'n2', 0, 10_000 + i * 1_000, i !== 3);
    writeFileSync(path, text);
    const now = T + 200_000;
    const s = await statusFromResults(path, { now: () => now });
    expect(s.nodes.map((n) => [n.node, n.workers, n.done, n.ok, n.failed])).toEqual([
      ['n1', 2, 20, 20, 0],
      ['n2', 2, 5, 4, 1],
      ['n3', 2, 0, 0, 0],
    ]);
    const n1 = s.nodes[0]!;
    expect(n1.lastEnded).toBe(T + 195_000);
    expect(n1.recentRate).toBeCloseTo(12 / 60, 10); // ended at 145..195 s: 141 s is outside the window
    expect(s.nodes[1]!.recentRate).toBe(0);
    expect(s).toMatchObject({ done: 25, ok: 24, failed: 1, total: 100, started: T, lastActivity: T + 195_000 });
    expect(s.etaMs).toBeCloseTo((75 / (12 / 60)) * 1000, 6);
    const out = renderStatus(s);
    expect(out).toMatch(/^slurmpool status: slurmpool map t\.mjs f in\.jsonl\n/);
    expect(out).toMatch(/job 99, 25 tasks done of 100 \(25\.0%\), 1 failed; 0\.20 tasks\/s now/);
    expect(out).toMatch(/last task ended 5\.00 s ago/);
    expect(out).toMatch(/\n {2}node +workers +done +failed +retried +tasks\/s now +tasks\/s avg +last activity\n/);
    expect(out).toMatch(/\n {2}n1 +2 +20 +0 +0 +0\.20 +0\.21 +5\.00 s ago\n/);
    expect(out).toMatch(/\n {2}n3 +2 +0 +0 +0 +0 +0 +nothing yet\n/);
  });

  it('polls read only what was appended; a line being written is held until its newline; a replaced file is read again', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'slurmpool-status-')), 'results.jsonl');
    writeFileSync(path, line(0, 'a', 0, 1000));
    const t = new StatusTracker(path, { now: () => T + 2000 });
    expect((await t.poll()).done).toBe(1);
    const half = line(1, 'a', 1, 1500);
    appendFileSync(path, half.slice(0, 20));
    let s = await t.poll();
    expect(s.done).toBe(1);
    expect(s.partialBytes).toBe(20);
    expect(s.warnings).toEqual([]);
    appendFileSync(path, half.slice(20) + 'not json\n');
    s = await t.poll();
    expect(s.done).toBe(2);
    expect(s.nodes[0]!.workers).toBe(2);
    expect(s.warnings).toEqual(['results.jsonl:3: not JSON (Unexpected token \'o\', "not json" is not valid JSON); skipped']);
    writeFileSync(path, line(7, 'b', 0, 1000));
    s = await t.poll();
    expect(s.nodes.map((n) => [n.node, n.done])).toEqual([['b', 1]]);
  });

  it('at the start, "tasks/s now" divides by the time since the run started, not by the whole minute', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'slurmpool-status-')), 'results.jsonl');
    let text = `${JSON.stringify({ slurmpool: { version: 1, run: 'run', command: 'slurmpool run t.txt -o r.jsonl', mode: 'slurm', jobId: '7', started: T, tasks: 40 } })}\n`;
    for (let i = 0; i < 10; i++) text += line(i, 'n1', 0, 500 + i * 400);
    writeFileSync(path, text);
    const s = await statusFromResults(path, { now: () => T + 5_000 });
    expect(s.recentRate).toBeCloseTo(10 / 5, 10);
    expect(s.nodes[0]!.recentRate).toBeCloseTo(10 / 5, 10);
    expect(s.etaMs).toBeCloseTo((30 / 2) * 1000, 6);
    const out = renderStatus(s);
    expect(out).toMatch(/job 7, slurm mode, 10 tasks done of 40 \(25\.0%\), 0 failed; 2\.00 tasks\/s now, .* about 15\.0 s left/);
  });

  it('a resumed run\'s header keeps the first start; a finished run says all are recorded, not an ETA', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'slurmpool-status-')), 'results.jsonl');
    const head = (started: number, jobId: string) => `${JSON.stringify({ slurmpool: { version: 1, mode: 'local', jobId, started, tasks: 2 } })}\n`;
    writeFileSync(path, head(T, '1') + line(0, 'a', 0, 1000) + head(T + 60_000, '2') + line(1, 'a', 0, 61_000));
    const s = await statusFromResults(path, { now: () => T + 62_000 });
    expect(s.started).toBe(T);
    expect(s.meta.jobId).toBe('2');
    expect(renderStatus(s)).toMatch(/job 2, local mode, 2 tasks done of 2 \(100\.0%\), 0 failed; .*, all recorded\n/);
  });
});
