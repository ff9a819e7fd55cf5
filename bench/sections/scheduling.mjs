// Issue 12's scheduling figures: head-of-line blocking against GNU parallel, and mixed durations against their ideal makespan.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const id = 'H';

export async function run(ctx) {
  const script = join(ctx.benchDir, 'peers/scheduling.mjs');
  const reps = ctx.reps ?? 3;
  const hol = join(ctx.tmpdir, 'hol.txt');
  writeFileSync(hol, 'sleep 3\nsleep 0.1\nsleep 3\nsleep 0.1\n');
  const mixed = join(ctx.tmpdir, 'mixed.txt');
  // 490 × sleep 0.001 and 10 × sleep 0.5, the long ones spread through the file.
  writeFileSync(mixed, Array.from({ length: 500 }, (_, i) => (i % 50 === 17 ? 'sleep 0.5' : 'sleep 0.001')).join('\n') + '\n');
  ctx.log('H scheduling: head-of-line case beside GNU parallel, mixed durations against their ideal');
  const blocks = [
    [{ key: 'hol', cmd: ctx.node, args: [script, 'cli', hol], timeoutMs: 60_000, value: (r) => r.json.makespan }],
    [{ key: 'holWall', cmd: ctx.node, args: [script, 'cli', hol], timeoutMs: 60_000, value: (r) => r.json.seconds }],
    [{ key: 'holEmu', cmd: ctx.node, args: [script, 'cli', hol, '--emulate', '2x1'], timeoutMs: 60_000, value: (r) => r.json.seconds }],
    [{ key: 'mixedCli', cmd: ctx.node, args: [script, 'cli', mixed], timeoutMs: 120_000, value: (r) => r.json.makespan / r.json.ideal }],
    [{ key: 'mapArray', cmd: ctx.node, args: [script, 'map', 'array'], timeoutMs: 60_000, value: (r) => r.json.seconds / r.json.ideal }],
    [{ key: 'mapGen', cmd: ctx.node, args: [script, 'map', 'gen'], timeoutMs: 60_000, value: (r) => r.json.seconds / r.json.ideal }],
  ];
  if (ctx.parallelVersion) {
    blocks.push([{ key: 'parallel', cmd: ctx.node, args: [script, 'parallel', hol], timeoutMs: 60_000, value: (r) => r.json.makespan }]);
    blocks.push([{ key: 'parallelWall', cmd: ctx.node, args: [script, 'parallel', hol], timeoutMs: 60_000, value: (r) => r.json.seconds }]);
  }
  const m = await ctx.measure({ unit: 'mixed', reps, blocks });
  const skipped = (key, why) => ({ key, impl: 'GNU parallel -j2', role: 'peer', values: [], errors: [], skipped: why, planned: 0, runs: 0, results: [], comparable: false });
  return [
    {
      id: 'H1',
      title: 'H1 head-of-line: sleep 3, 0.1, 3, 0.1 on 2 workers, makespan (first start to last end, from each tool\'s own records)',
      unit: 's',
      better: 'lower',
      target: ctx.parallelVersion ? { kind: 'peer', peer: 'parallel', min: 0.87 } : null,
      rows: [
        ctx.row(m.get('hol'), { key: 'hol', impl: 'slurmpool run --local --workers 2', role: 'subject', note: 'records\' started/ended' }),
        ctx.parallelVersion ? ctx.row(m.get('parallel'), { key: 'parallel', impl: 'GNU parallel -j2', role: 'peer', note: '--joblog' }) : skipped('parallel', 'GNU parallel not installed'),
      ],
    },
    {
      id: 'H1w',
      title: 'H1 the same, whole process (start-up and exit included: W4\'s share)',
      unit: 's',
      better: 'lower',
      target: null,
      rows: [
        ctx.row(m.get('holWall'), { key: 'holWall', impl: 'slurmpool run --local --workers 2', role: 'subject' }),
        ctx.row(m.get('holEmu'), { key: 'holEmu', impl: 'slurmpool run --emulate 2x1', role: 'baseline', comparable: false }),
        ctx.parallelVersion ? ctx.row(m.get('parallelWall'), { key: 'parallelWall', impl: 'GNU parallel -j2', role: 'peer' }) : skipped('parallelWall', 'GNU parallel not installed'),
      ],
    },
    {
      id: 'H2',
      title: 'H2 490 × sleep 0.001 and 10 × sleep 0.5 from a command file, 2 workers: makespan (first start to last end) ÷ ideal',
      unit: '×',
      better: 'lower',
      target: { kind: 'absolute', max: 1.3 },
      rows: [ctx.row(m.get('mixedCli'), { key: 'mixedCli', impl: 'slurmpool run --local --workers 2', role: 'subject', note: 'ideal: the commands\' own total time ÷ 2 (or the longest)' })],
    },
    {
      id: 'H3',
      title: 'H3 map of 490 × 1 ms and 10 × 500 ms tasks, 2 workers: makespan ÷ ideal (2.745 s)',
      unit: '×',
      better: 'lower',
      target: { kind: 'absolute', max: 1.25 },
      rows: [
        ctx.row(m.get('mapArray'), { key: 'mapArray', impl: 'slurmpool map (array)', role: 'subject' }),
        ctx.row(m.get('mapGen'), { key: 'mapGen', impl: 'slurmpool imap (generator)', role: 'subject' }),
      ],
    },
  ];
}
