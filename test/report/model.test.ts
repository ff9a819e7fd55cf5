// The report model: lanes, outcomes, chunks, utilization and idle core-hours arithmetic, binning, the results-file reader.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReportBuilder, buildReport, buildReportSync, readResults, reportFromFile } from '../../dist/report/index.js';
import { spread } from '../../dist/report/model.js';

const T = 1_700_000_000_000;
/** A record at T + start ms, lasting dur ms. */
const rec = (index: number, node: string, worker: number, start: number, dur: number, extra: Record<string, unknown> = {}) => ({
  index,
  ok: true,
  value: index,
  node,
  worker,
  started: T + start,
  ended: T + start + dur,
  attempts: 1,
  ...extra,
});
const tmp = () => mkdtempSync(join(tmpdir(), 'slurmpool-report-'));

describe('lanes and outcomes', () => {
  it('one lane per worker, grouped by node in name order (n2 before n10); idle workers of the metadata get a lane', () => {
    const m = buildReportSync([rec(0, 'n10', 1, 0, 10), rec(1, 'n2', 0, 0, 10), rec(2, 'n10', 0, 5, 10)], { nodes: [{ node: 'n2', workers: 2, cpus: 4 }] });
    expect(m.nodes.map((n) => n.node)).toEqual(['n2', 'n10']);
    expect(m.lanes.map((l) => l.label)).toEqual(['n2/0', 'n2/1', 'n10/0', 'n10/1']);
    expect(m.nodes[0]).toMatchObject({ workers: 2, cpus: 4, firstLane: 0, laneCount: 2, tasks: 1 });
    // no metadata for n10: workers from the records, a CPU per worker
    expect(m.nodes[1]).toMatchObject({ workers: 2, cpus: 2, firstLane: 2, laneCount: 2, tasks: 2 });
    expect(m.header).toMatchObject({ nodes: 2, workers: 4, cpus: 6 });
  });

  it('failed, retried (attempts > 1) and re-dispatched (flag, or a kept error of kind lost); both spellings of the times; shell exit codes', () => {
    const recs = [
      rec(0, 'a', 0, 0, 10),
      { ...rec(1, 'a', 0, 10, 10), ok: false, error: { name: 'RangeError', message: 'bad item 1', stack: 'RangeError: bad item 1\n    at f', kind: 'error' } },
      rec(2, 'a', 0, 20, 10, { attempts: 2 }),
      rec(3, 'a', 1, 0, 10, { redispatched: true }),
      rec(4, 'a', 1, 10, 10, { error: { name: 'NodeLostError', message: 'lost', kind: 'lost' } }),
      { index: 5, ok: true, node: 'a', worker: 1, start: T + 20, end: T + 35, attempts: 1 },
      { index: 6, node: 'a', worker: 1, command: 'exit 3', exitCode: 3, signal: null, stderr: 'line one\nno such file', start: T + 40, end: T + 41 },
      { index: 7, ok: false, error: { name: 'NodeLostError', message: 'chunk was lost', kind: 'lost' }, node: 'b', worker: -1, started: 0, ended: 0, attempts: 3 },
    ];
    const m = buildReportSync(recs);
    expect(m.counts).toMatchObject({ tasks: 8, ok: 5, failed: 3, retried: 1, redispatched: 2, untimed: 1, records: 8 });
    const tl = m.timeline;
    if (tl.mode !== 'bars') throw new Error('expected bars');
    const outcomeOf = (i: number) => tl.bars.outcome[tl.bars.index.indexOf(i)];
    expect([0, 1, 2, 3, 4, 5, 6].map(outcomeOf)).toEqual([0, 3, 1, 2, 2, 0, 3]);
    expect(tl.bars.dur[tl.bars.index.indexOf(5)]).toBe(15);
    expect(m.failed.map((f) => [f.index, f.node, f.worker, f.error?.name, f.attempts])).toEqual([
      [1, 'a', 0, 'RangeError', 1],
      [6, 'a', 1, 'CommandFailed', 1],
      [7, 'b', -1, 'NodeLostError', 3],
    ]);
    expect(m.failed[1]).toMatchObject({ what: 'exit 3', error: { message: 'exited with status 3: no such file' } });
    expect(m.failed[0]!.error?.stack).toMatch(/at f/);
    expect(m.failed[2]!.start).toBeNaN();
    expect(m.retries.map((r) => [r.index, r.outcome])).toEqual([
      [2, 'retried'],
      [3, 'redispatched'],
      [4, 'redispatched'],
      [7, 'failed'],
    ]);
    expect(m.retriesFailed).toBe(1);
    // the lost node has no timed record but still a row, with its lane for worker -1
    expect(m.nodes.map((n) => n.node)).toEqual(['a', 'b']);
    expect(m.nodes[1]).toMatchObject({ failed: 1, tasks: 1 });
  });

  it("a chunk's items (same worker, same times, consecutive indices) make one bar; its busy time counts once even when one item failed", () => {
    const chunk = [0, 1, 2, 3].map((i) => rec(i, 'a', 0, 0, 100));
    const failedItem = { ...rec(4, 'a', 0, 0, 100), ok: false, error: { name: 'Error', message: 'x' } };
    const m = buildReportSync([...chunk, failedItem, rec(5, 'a', 0, 100, 100)], { nodes: [{ node: 'a', workers: 1 }] });
    if (m.timeline.mode !== 'bars') throw new Error('expected bars');
    expect(m.timeline.bars.count).toEqual([4, 1, 1]);
    expect(m.timeline.bars.index).toEqual([0, 4, 5]);
    expect(m.counts).toMatchObject({ tasks: 6, bars: 3 });
    expect(m.lanes[0]).toMatchObject({ tasks: 6, busyMs: 200, failed: 1 });
    expect(m.header.utilization).toBe(1);
    expect(m.slowest[0]).toMatchObject({ index: 0, count: 4, durMs: 100 });
  });

  it('a task recorded twice (failed, then ok after --resume) counts once, as ok; its failure leaves the failed table', () => {
    const m = buildReportSync([{ ...rec(0, 'a', 0, 0, 10), ok: false, error: { name: 'E', message: 'm' } }, rec(1, 'a', 0, 10, 10), rec(0, 'a', 0, 5000, 10)]);
    expect(m.counts).toMatchObject({ tasks: 2, ok: 2, failed: 0, records: 3, bars: 3 });
    expect(m.failed).toEqual([]);
    expect(m.failedTotal).toBe(0);
  });

  it('the slowest table is the N longest bars, longest first', () => {
    const recs = Array.from({ length: 50 }, (_, i) => rec(i, 'a', i % 4, i * 100, (i * 37) % 97));
    const m = buildReportSync(recs, undefined, { top: 5 });
    const want = recs
      .map((r) => ({ i: r.index, d: r.ended - r.started }))
      .sort((x, y) => y.d - x.d || x.i - y.i)
      .slice(0, 5);
    expect(m.slowest.map((s) => [s.index, s.durMs])).toEqual(want.map((w) => [w.i, w.d]));
  });
});

describe('utilization and idle core-hours', () => {
  it('busy workers / all workers over time, per node, and the allocation left idle in core-hours', () => {
    // One node, 2 workers on 4 CPUs (2 per worker), for 1 s: worker 0 busy all of it, worker 1 the first half.
    const m = buildReportSync([rec(0, 'a', 0, 0, 1000), rec(1, 'a', 1, 0, 500)], { nodes: [{ node: 'a', workers: 2, cpus: 4 }], started: T }, { utilBins: 4 });
    expect(m.header.wallMs).toBe(1000);
    expect(m.header.utilization).toBeCloseTo(0.75, 10);
    expect(m.utilization.overall).toEqual([1, 1, 0.5, 0.5]);
    expect(m.utilization.perNode).toEqual([[1, 1, 0.5, 0.5]]);
    // allocation: 4 CPUs × 1 s = 4,000 core-ms; busy: 1,500 worker-ms × 2 CPUs per worker = 3,000 core-ms
    expect(m.header.allocCoreHours).toBeCloseTo(4000 / 3.6e6, 12);
    expect(m.header.idleCoreHours).toBeCloseTo(1000 / 3.6e6, 12);
    expect(m.nodes[0]!.idleCoreHours).toBeCloseTo(1000 / 3.6e6, 12);
    // overhead: wall − busy / workers = 1000 − 750
    expect(m.header.overheadMs).toBe(250);
    expect(m.header.tasksPerSec).toBe(2);
  });

  it('the run starts at the metadata start when that is earlier than the first task, and ends at its end', () => {
    const m = buildReportSync([{ slurmpool: { started: T - 1000, ended: T + 2000, nodes: [{ node: 'a', workers: 1 }] } }, rec(0, 'a', 0, 0, 1000)]);
    expect(m.t0).toBe(T - 1000);
    expect(m.header.wallMs).toBe(3000);
    expect(m.header.utilization).toBeCloseTo(1 / 3, 10);
  });

  it('spread() splits an interval over bins exactly', () => {
    const a = new Float64Array(5);
    spread(a, 0, 5, 37, 10, 5);
    expect([...a]).toEqual([5, 10, 10, 7, 0]);
    spread(a, 0, 41, 43, 10, 5);
    expect(a[4]).toBe(2);
    const sum = (x: Float64Array) => x.reduce((s, v) => s + v, 0);
    expect(sum(a)).toBe(34);
  });
});

describe('binning', () => {
  it('past maxBars each lane becomes time bins with busy shares and task counts; failed, retried and re-dispatched bars stay on top', () => {
    const recs: object[] = [];
    for (let w = 0; w < 2; w++) for (let i = 0; i < 100; i++) recs.push(rec(w * 100 + i, 'a', w, i * 10, w === 0 ? 10 : 5));
    recs[42] = { ...recs[42]!, ok: false, error: { name: 'E', message: 'boom' } };
    recs[150] = { ...recs[150]!, attempts: 2 };
    const m = buildReportSync(recs, { nodes: [{ node: 'a', workers: 2 }] }, { maxBars: 50, bins: 10 });
    const tl = m.timeline;
    if (tl.mode !== 'bins') throw new Error('expected bins');
    expect(tl.bins).toBe(10);
    expect(tl.busy.length).toBe(2 * 10);
    expect(tl.binMs).toBeCloseTo(100, 10);
    // worker 0 is busy all the time, worker 1 half of it
    expect([...tl.busy.subarray(0, 10)]).toEqual(Array(10).fill(255));
    expect([...tl.busy.subarray(10, 20)]).toEqual(Array(10).fill(128));
    expect([...tl.tasks].reduce((s, v) => s + v, 0)).toBe(200);
    expect([...tl.tasks.subarray(0, 10)]).toEqual(Array(10).fill(10));
    expect(tl.special.index).toEqual([42, 150]);
    expect(tl.special.outcome).toEqual([3, 1]);
    expect(m.counts.bars).toBe(200);
  });

  it('keeps no more notable bars than maxSpecialBars, failures first', () => {
    const recs = Array.from({ length: 30 }, (_, i) => rec(i, 'a', 0, i * 10, 10, i % 2 ? { attempts: 2 } : { ok: false, error: { name: 'E', message: 'm' } }));
    const m = buildReportSync(recs, undefined, { maxBars: 5, maxSpecialBars: 10 });
    if (m.timeline.mode !== 'bins') throw new Error('expected bins');
    expect(m.timeline.special.lane.length).toBe(10);
    expect(new Set(m.timeline.special.outcome)).toEqual(new Set([3]));
    expect(m.timeline.specialDropped).toBe(20);
  });
});

describe('reading a results file', () => {
  it('metadata lines, records, blank lines; a bad line named file:line and skipped; a torn last line ignored', async () => {
    const dir = tmp();
    const path = join(dir, 'results.jsonl');
    const lines = [
      JSON.stringify({ slurmpool: { version: 1, command: 'slurmpool map t.mjs f in.jsonl', mode: 'slurm', jobId: 77, nodes: [{ node: 'n1', workers: 2, cpus: 8 }], started: T } }),
      JSON.stringify(rec(0, 'n1', 0, 0, 10)),
      '',
      '{"index": 1, "ok": tru',
      JSON.stringify(rec(2, 'n1', 1, 0, 10)),
      '{"hello":"world"}',
      JSON.stringify(rec(3, 'n1', 1, 10, 10)),
      '{"index":4,"ok":true,"node":"n1","wor',
    ];
    writeFileSync(path, lines.join('\n'));
    const warnings: string[] = [];
    // metadata passed in fills in (and overrides) what the file says
    const m = await reportFromFile(path, { command: 'slurmpool map t.mjs f in.jsonl --report r.html' }, { onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([
      expect.stringMatching(/^results\.jsonl:4: not JSON .*; skipped$/),
      'results.jsonl:6: not a task record (no numeric "index"); skipped',
      expect.stringMatching(/^results\.jsonl:8: torn last line \(\d+ bytes, cut short by a killed or unfinished write\); ignored$/),
    ]);
    expect(m.warnings).toEqual(warnings);
    expect(m.counts.tasks).toBe(3);
    expect(m.header).toMatchObject({ mode: 'slurm', jobId: '77', command: 'slurmpool map t.mjs f in.jsonl --report r.html', cpus: 8, workers: 2 });
  });

  it('yields line numbers; accepts CRLF and a file without a trailing newline', async () => {
    const path = join(tmp(), 'r.jsonl');
    writeFileSync(path, `${JSON.stringify(rec(0, 'a', 0, 0, 1))}\r\n\r\n${JSON.stringify(rec(1, 'a', 0, 1, 1))}\r\n${JSON.stringify(rec(2, 'a', 0, 2, 1))}`);
    const got: number[] = [];
    const warnings: string[] = [];
    for await (const l of readResults(path, { onWarning: (w) => warnings.push(w) })) got.push(l.kind === 'record' ? l.record.index * 10 + l.line : -1);
    expect(got).toEqual([1, 13, 24]);
    expect(warnings).toEqual([]);
  });

  it('reads a results file many reads long (60,000 lines, 1 MB reads) with every line accounted for', async () => {
    const path = join(tmp(), 'big.jsonl');
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i++) lines.push(JSON.stringify(rec(i, `n${i % 3}`, i % 4, i, 1)));
    writeFileSync(path, `${lines.join('\n')}\n`);
    const m = await reportFromFile(path);
    expect(m.counts).toMatchObject({ tasks: 60_000, records: 60_000 });
    expect(m.timeline.mode).toBe('bins');
    expect(m.warnings).toEqual([]);
  });

  it('buildReport takes async iterables (records as the pool yields them) and a builder takes records one by one', async () => {
    async function* gen() {
      for (let i = 0; i < 3; i++) yield rec(i, 'a', 0, i * 10, 10);
    }
    const m = await buildReport(gen(), { nodes: [{ node: 'a', workers: 1 }] });
    expect(m.counts.tasks).toBe(3);
    const b = new ReportBuilder();
    b.add(rec(0, 'x', 0, 0, 5));
    b.add({ nope: true });
    const m2 = b.finish();
    expect(m2.counts.tasks).toBe(1);
    expect(m2.warnings).toEqual(['record 2: not a task record (no numeric "index"); skipped']);
  });
});

describe('lost nodes', () => {
  it('a nodeLost event line marks its node (when, why, how often) in the model and the nodes table; records after a loss count as re-dispatched', async () => {
    const { renderReport } = await import('../../dist/report/index.js');
    const dir = tmp();
    const path = join(dir, 'lost.jsonl');
    const lines = [
      JSON.stringify({ slurmpool: { version: 1, run: 'run', command: 'slurmpool run t.txt', mode: 'emulate', tasks: 3, started: T } }),
      JSON.stringify(rec(0, 'emu1', 0, 0, 10)),
      JSON.stringify(rec(1, 'emu2', 0, 0, 10)),
      JSON.stringify({ slurmpool: { event: 'nodeLost', node: 'emu2', at: T + 15, reason: 'connection closed' } }),
      JSON.stringify(rec(2, 'emu1', 0, 20, 10, { attempts: 2, redispatched: true })),
    ];
    writeFileSync(path, `${lines.join('\n')}\n`);
    const m = await reportFromFile(path);
    expect(m.nodes.find((n) => n.node === 'emu2')!.lost).toEqual({ at: T + 15, reason: 'connection closed', times: 1 });
    expect(m.nodes.find((n) => n.node === 'emu1')!.lost).toBeUndefined();
    expect(m.counts.redispatched).toBe(1);
    const html = renderReport(m);
    expect(html).toMatch(/<tr data-node="emu2" class="lost"><td>emu2 <span class="bad" title="connection closed">lost at 2023-11-14 22:13:20 UTC<\/span>/);
  });
});
