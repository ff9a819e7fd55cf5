// Issue 7: a buffer every task reads, shared once per node versus copied into every task's arguments.
import { join } from 'node:path';

export const id = 'S';

export async function run(ctx) {
  const script = join(ctx.benchDir, 'peers/shared.mjs');
  const reps = ctx.reps ?? 2;
  ctx.log('S shared 256 MB buffer: shared once per node vs passed in every task');
  const m = await ctx.measure({
    unit: 'tasks/s',
    reps,
    blocks: [
      [{ key: 'shared', cmd: ctx.node, args: [script, 'shared'], timeoutMs: 120_000, value: (r) => r.json.tasksPerSecond }],
      [{ key: 'args', cmd: ctx.node, args: [script, 'args'], timeoutMs: 120_000, value: (r) => r.json.tasksPerSecond }],
    ],
  });
  const memRows = [];
  const shared = m.get('shared');
  const last = shared?.results?.findLast?.((r) => Array.isArray(r.agentPeakRss));
  if (last) {
    // Peak RSS of each node's agent (its worker threads included) over one copy of the data plus what the agent held at rest.
    const ratio = Math.max(...last.agentPeakRss.map((p, i) => p / (last.bytes + last.agentBaseRss[i])));
    memRows.push({ key: 'mem', impl: 'peak RSS per node ÷ (one copy + the node agent at rest)', role: 'subject', values: [ratio], errors: [], planned: 1, runs: 1, results: [], comparable: false, note: `peak RSS ${last.agentPeakRss.map((b) => Math.round(b / 2 ** 20)).join(', ')} MB; at rest ${last.agentBaseRss.map((b) => Math.round(b / 2 ** 20)).join(', ')} MB; data ${Math.round(last.bytes / 2 ** 20)} MB` });
  }
  return [
    {
      id: 'S1',
      title: 'S1 tasks reading one 256 MB buffer, 2 emulated nodes x 2 workers (2,000 shared; 16 copied)',
      unit: 'tasks/s',
      better: 'higher',
      target: { kind: 'peer', peer: 'args', min: 10 },
      rows: [
        ctx.row(m.get('shared'), { key: 'shared', impl: 'pool.share (once per node)', role: 'subject' }),
        ctx.row(m.get('args'), { key: 'args', impl: "in every task's arguments", role: 'peer' }),
      ],
    },
    ...(memRows.length ? [{ id: 'S2', title: 'S2 memory per node with the shared buffer', unit: '×', better: 'lower', target: { kind: 'absolute', max: 1.2 }, rows: memRows }] : []),
  ];
}
