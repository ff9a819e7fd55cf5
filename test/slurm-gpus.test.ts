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
      .map((l) => JSON.parse(l) as { ok: boolean; node: string; stdout: string });
    expect(recs).toHaveLength(16);
    const held: { node: string; gpu: string; start: number; end: number }[] = [];
    for (const r of recs) {
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const [node, gpu, s, e] = r.stdout.trim().split(' ');
      expect(node).toBe(r.node);
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
