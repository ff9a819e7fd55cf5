// GPUs bound per task under a real Slurm: the test cluster's stand-in GPUs (gres gpu:2 per node over
// device files, scripts/slurm/test-cluster.sh), `sbatch --gpus-per-node=2`, `slurmpool run
// --gpus-per-task 1`. Each task records the GPU it was given and its own start and end times; no two
// tasks on one node may hold the same GPU at the same moment.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterOrSkip, readOut, sbatch, waitJob } from './helpers/slurm.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli/main.js');
const cluster = clusterOrSkip();

/** A task line that prints: node, CUDA_VISIBLE_DEVICES, start and end in µs (from the command itself). */
const TASK = 's=$(date +%s%N); sleep 0.3; e=$(date +%s%N); echo "$SLURMPOOL_NODE $CUDA_VISIBLE_DEVICES ${s%???} ${e%???}"';

describe.skipIf(cluster.skip)(`GPUs per task under Slurm ${cluster.why}`, () => {
  it('sbatch -N2 --ntasks-per-node=2 --gpus-per-node=2, --gpus-per-task 1: every task one GPU of its node, never one held by another running task', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-gpu-'));
    writeFileSync(join(dir, 'tasks.txt'), `${Array(16).fill(TASK).join('\n')}\n`);
    const out = join(dir, 'out.txt');
    const script = `echo "batch CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; exec ${process.execPath} ${cli} run tasks.txt --gpus-per-task 1 -o results.jsonl`;
    const id = sbatch(['-N2', '--ntasks-per-node=2', '--gpus-per-node=2', `--chdir=${dir}`, `--output=${out}`, `--wrap=${script}`]);
    const end = await waitJob(id, 120_000);
    const text = readOut(out);
    expect(end.state, text).toBe('COMPLETED');
    expect(text).toContain('batch CUDA_VISIBLE_DEVICES=0,1');
    const recs = readFileSync(join(dir, 'results.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"index"'))
      .map((l) => JSON.parse(l) as { ok: boolean; node: string; stdout: string; gpus?: string });
    expect(recs).toHaveLength(16);
    const held: { node: string; gpu: string; start: number; end: number }[] = [];
    for (const r of recs) {
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const [node, gpu, s, e] = r.stdout.trim().split(' ');
      expect(node).toBe(r.node);
      expect(r.gpus).toBe(gpu);
      expect(['0', '1'], `task on ${node} got CUDA_VISIBLE_DEVICES=${gpu}`).toContain(gpu);
      held.push({ node: node!, gpu: gpu!, start: Number(s), end: Number(e) });
    }
    expect(new Set(held.map((h) => h.gpu))).toEqual(new Set(['0', '1']));
    const clashes: string[] = [];
    let concurrent = 0;
    for (const a of held) {
      for (const b of held) {
        if (a === b || a.node !== b.node || !(a.start < b.end && b.start < a.end)) continue;
        concurrent++;
        if (a.gpu === b.gpu) clashes.push(`${a.node} GPU ${a.gpu}: [${a.start}, ${a.end}] and [${b.start}, ${b.end}]`);
      }
    }
    expect(clashes).toEqual([]);
    // Tasks did run side by side (two per node), so the check above checked something.
    expect(concurrent).toBeGreaterThan(0);
  });

  it('requests per line under sbatch -N2 --ntasks-per-node=2 --gpus-per-node=2: no node ever over its 2 CPUs or 2 GPUs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-gpu-'));
    const rec = 's=$(date +%s%N); sleep 0.2; e=$(date +%s%N); echo "$SLURMPOOL_NODE|$CUDA_VISIBLE_DEVICES|${s%???}|${e%???}"';
    const asks: [number, number][] = [];
    const lines: string[] = [];
    for (let i = 0; i < 16; i++) {
      const ask: [number, number] = i % 4 === 0 ? [2, 2] : i % 4 === 1 ? [1, 1] : i % 4 === 2 ? [1, 0] : [2, 0];
      asks.push(ask);
      lines.push(i % 2 ? `#SLURMPOOL -c ${ask[0]} --gpus ${ask[1]} -- ${rec}` : JSON.stringify({ cmd: rec, cpus: ask[0], gpus: ask[1] }));
    }
    writeFileSync(join(dir, 'tasks.txt'), `${lines.join('\n')}\n`);
    const out = join(dir, 'out.txt');
    const id = sbatch(['-N2', '--ntasks-per-node=2', '--gpus-per-node=2', `--chdir=${dir}`, `--output=${out}`, `--wrap=exec ${process.execPath} ${cli} run tasks.txt -o results.jsonl`]);
    const end = await waitJob(id, 120_000);
    const text = readOut(out);
    expect(end.state, text).toBe('COMPLETED');
    const recs = readFileSync(join(dir, 'results.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"index"'))
      .map((l) => JSON.parse(l) as { index: number; ok: boolean; node: string; stdout: string });
    expect(recs).toHaveLength(16);
    const ran = recs.map((r) => {
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const [node, cvd, s, e] = r.stdout.trim().split('|');
      const gpus = cvd === '' ? [] : cvd!.split(',');
      expect(gpus).toHaveLength(asks[r.index]![1]);
      return { node: node!, cpus: asks[r.index]![0], gpus, start: Number(s), end: Number(e) };
    });
    const over: string[] = [];
    for (const a of ran) {
      const now = ran.filter((b) => b.node === a.node && b.start <= a.start && a.start < b.end);
      const c = now.reduce((sum, b) => sum + b.cpus, 0);
      const g = now.flatMap((b) => b.gpus);
      if (c > 2 || g.length > 2 || new Set(g).size !== g.length) over.push(`${a.node} at ${a.start}: ${c} CPUs, GPUs ${g.join(',')}`);
    }
    expect(over).toEqual([]);
  });

  it('--gpus-per-task in a job without GPUs fails before any task runs, naming the node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-gpu-'));
    writeFileSync(join(dir, 'tasks.txt'), 'touch ran-a-task\n');
    const out = join(dir, 'out.txt');
    const id = sbatch(['-N2', `--chdir=${dir}`, `--output=${out}`, `--wrap=exec ${process.execPath} ${cli} run tasks.txt --gpus-per-task 1 -o results.jsonl`]);
    const end = await waitJob(id, 120_000);
    const text = readOut(out);
    expect(end.state, text).toBe('FAILED');
    expect(text).toMatch(/node n\d has no GPU found \(none of CUDA_VISIBLE_DEVICES, .*\), fewer than the 1 each task asks for/);
    expect(() => readFileSync(join(dir, 'ran-a-task'))).toThrow();
  });
});
