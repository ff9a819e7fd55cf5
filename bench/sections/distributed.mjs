// Issue 3's distributed figures: agents as real processes over loopback TCP, and on the Slurm test cluster when it is up.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const id = 'D';

function clusterUp() {
  try {
    const env = { ...process.env, SLURM_CONF: process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf' };
    if (!existsSync(env.SLURM_CONF)) return false;
    const out = execFileSync('sinfo', ['-h', '-o', '%D %t'], { env, encoding: 'utf8', timeout: 5000 });
    return out.split('\n').filter((l) => /idle|mix/.test(l)).reduce((n, l) => n + Number(l.split(' ')[0]), 0) >= 3;
  } catch {
    return false;
  }
}

export async function run(ctx) {
  const script = join(ctx.benchDir, 'peers/distributed.mjs');
  const pingpong = join(ctx.benchDir, 'peers/pingpong.mjs');
  const reps = ctx.reps ?? 3;
  const n = ctx.params.w1.n;
  ctx.log('D distributed: automatic chunking across 3 agents, empty-chunk round trip');
  const m = await ctx.measure({
    unit: 'mixed',
    reps,
    blocks: [
      [{ key: 'auto3', cmd: ctx.node, args: [script, 'auto', '3'], timeoutMs: 90_000, value: (r) => n / r.json.seconds }],
      [
        { key: 'rtt', cmd: ctx.node, args: [script, 'rtt'], timeoutMs: 60_000, value: (r) => r.json.us },
        { key: 'tcp', cmd: ctx.node, args: [pingpong, 'tcp'], timeoutMs: 30_000, value: (r) => r.json.us },
        { key: 'thread', cmd: ctx.node, args: [pingpong, 'thread'], timeoutMs: 30_000, value: (r) => r.json.us },
        { key: 'chain', cmd: ctx.node, args: [pingpong, 'chain'], timeoutMs: 30_000, value: (r) => r.json.us },
      ],
    ],
  });
  const groups = [
    {
      id: 'D1',
      title: 'D1 identity over 200,000 items, automatic chunking, 3 emulated agents over TCP',
      unit: 'items/s',
      better: 'higher',
      target: { kind: 'absolute', min: 1_000_000 },
      rows: [ctx.row(m.get('auto3'), { key: 'auto3', impl: 'slurmpool emulate 3x1', role: 'subject' })],
    },
    {
      id: 'D2',
      title: 'D2 round trip of one empty chunk to one agent over loopback TCP (median of 1,000 after 5,000 warm-up)',
      unit: 'µs',
      better: 'lower',
      // Issue 19: within 1.3× of the two hops it cannot avoid, measured in the same run.
      target: { kind: 'baseline', baseline: ['tcp', 'thread'], max: 1.3 },
      rows: [
        ctx.row(m.get('rtt'), { key: 'rtt', impl: 'slurmpool emulate 1x1', role: 'subject', note: 'coordinator → agent → worker thread → back' }),
        ctx.row(m.get('tcp'), { key: 'tcp', impl: 'bare TCP ping-pong', role: 'baseline', note: '16 bytes to another Node process over loopback and back' }),
        ctx.row(m.get('thread'), { key: 'thread', impl: 'bare worker-thread ping-pong', role: 'baseline', note: 'postMessage to a worker thread and back' }),
        // Not in the target: the same four hops with nothing in them, what the shape itself costs on this machine.
        ctx.row(m.get('chain'), { key: 'chain', impl: 'bare four-hop chain', role: 'baseline', note: 'TCP → another process → its worker thread → back, no code between' }),
      ],
    },
  ];
  if (!clusterUp()) {
    groups.push({ id: 'D3', title: 'D3 Pool.open to first result in a 3-node allocation', unit: 's', better: 'lower', target: null, rows: [{ key: 'open3', impl: 'slurmpool', role: 'subject', values: [], errors: [], skipped: 'Slurm test cluster not up (bash scripts/slurm/test-cluster.sh up)', planned: 0, runs: 0, results: [], comparable: false }] });
    return groups;
  }
  ctx.log('D3 open to first result on the Slurm test cluster, beside srun true');
  const env = { ...process.env, SLURM_CONF: process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf' };
  const wrap = join(ctx.tmpdir, 'd3.sh');
  // One allocation, then both measurements inside it: open-to-first-result and srun -N3 true.
  writeFileSync(
    wrap,
    `#!/bin/bash\nexport SLURMPOOL_BIND=127.0.0.1\nfor i in $(seq ${reps}); do\n  s=$(date +%s.%N); srun -N3 --overlap true; e=$(date +%s.%N)\n  awk -v s=$s -v e=$e 'BEGIN { printf "{\\"srun\\": %.6f}\\n", e - s }'\n  ${ctx.node} ${script} open\ndone\n`,
    { mode: 0o755 },
  );
  const values = { open: [], srun: [] };
  const errors = [];
  try {
    const out = execFileSync('salloc', ['-N3', '--immediate=60', wrap], { env, encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line);
      if (typeof j.srun === 'number') values.srun.push(j.srun);
      else if (j.ok && typeof j.seconds === 'number') values.open.push(j.seconds);
      else if (!j.ok) errors.push(j.error);
    }
  } catch (e) {
    errors.push(String(e.message).split('\n')[0]);
  }
  groups.push({
    id: 'D3',
    title: 'D3 Pool.open in a 3-node allocation to the first result (srun steps, agents, workers)',
    unit: 's',
    better: 'lower',
    target: null,
    rows: [
      { key: 'open3', impl: 'slurmpool open → first result', role: 'subject', values: values.open, errors, planned: reps, runs: values.open.length, results: [], comparable: false, note: 'target: < 1 s + srun' },
      { key: 'srun', impl: 'srun -N3 --overlap true', role: 'baseline', values: values.srun, errors: [], planned: reps, runs: values.srun.length, results: [], comparable: false },
    ],
  });
  return groups;
}
