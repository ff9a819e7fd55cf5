// GPUs bound per task: discovery from the node's environment, slots, the variables each task gets,
// and real pools (in-process threads, emulated nodes) handing every running task GPUs of its own.
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';
import { describeGpus, discoverGpus, gpuEnv, gpuSlots } from '../dist/agent/gpus.js';

const none = () => [];

describe('GPU discovery', () => {
  it('CUDA_VISIBLE_DEVICES wins over the Slurm lists (it is what CUDA reads, renumbered under cgroups)', () => {
    const g = discoverGpus({ CUDA_VISIBLE_DEVICES: '0,1', SLURM_STEP_GPUS: '2,3', SLURM_JOB_GPUS: '2,3', GPU_DEVICE_ORDINAL: '0,1' }, none);
    expect(g.ids).toEqual(['0', '1']);
    expect(g.source).toBe('CUDA_VISIBLE_DEVICES');
    expect(g.lists).toEqual({ CUDA_VISIBLE_DEVICES: ['0', '1'], GPU_DEVICE_ORDINAL: ['0', '1'] });
  });

  it('then the other vendors\' lists, SLURM_STEP_GPUS, SLURM_JOB_GPUS, SLURM_GPUS_ON_NODE, the device files', () => {
    expect(discoverGpus({ ROCR_VISIBLE_DEVICES: '4,5', SLURM_JOB_GPUS: '4,5' }, none)).toMatchObject({ ids: ['4', '5'], source: 'ROCR_VISIBLE_DEVICES' });
    expect(discoverGpus({ SLURM_STEP_GPUS: '1', SLURM_JOB_GPUS: '0,1' }, none)).toMatchObject({ ids: ['1'], source: 'SLURM_STEP_GPUS' });
    expect(discoverGpus({ SLURM_JOB_GPUS: '0,1,2' }, none)).toMatchObject({ ids: ['0', '1', '2'], source: 'SLURM_JOB_GPUS' });
    expect(discoverGpus({ SLURM_GPUS_ON_NODE: '3' }, none)).toMatchObject({ ids: ['0', '1', '2'], source: 'SLURM_GPUS_ON_NODE' });
    expect(discoverGpus({}, () => ['0', '1'])).toMatchObject({ ids: ['0', '1'], source: '/dev/nvidia*' });
    expect(discoverGpus({}, none)).toMatchObject({ ids: [], source: 'none' });
  });

  it('UUIDs and MIG names are kept as given; "" and -1 mean none; Slurm\'s NoDevFiles is not a list', () => {
    expect(discoverGpus({ CUDA_VISIBLE_DEVICES: 'GPU-8a1c,MIG-2f3e' }, none).ids).toEqual(['GPU-8a1c', 'MIG-2f3e']);
    expect(discoverGpus({ CUDA_VISIBLE_DEVICES: '', SLURM_JOB_GPUS: '0' }, none)).toMatchObject({ ids: [], source: 'CUDA_VISIBLE_DEVICES' });
    expect(discoverGpus({ CUDA_VISIBLE_DEVICES: '-1' }, () => ['0']).ids).toEqual([]);
    expect(discoverGpus({ CUDA_VISIBLE_DEVICES: 'NoDevFiles', SLURM_JOB_GPUS: '0,1' }, none)).toMatchObject({ ids: ['0', '1'], source: 'SLURM_JOB_GPUS' });
  });

  it('says where they came from, or where it looked', () => {
    expect(describeGpus(discoverGpus({ CUDA_VISIBLE_DEVICES: '0,1' }, none))).toBe('2 GPUs (CUDA_VISIBLE_DEVICES=0,1)');
    expect(describeGpus(discoverGpus({}, () => ['0']))).toBe('1 GPU (/dev/nvidia0)');
    expect(describeGpus(discoverGpus({}, none))).toMatch(/^no GPU found \(none of CUDA_VISIBLE_DEVICES, .*SLURM_JOB_GPUS.*\/dev\/nvidiaN\)$/);
    expect(describeGpus(discoverGpus({ CUDA_VISIBLE_DEVICES: '' }, none))).toBe('no GPU (CUDA_VISIBLE_DEVICES lists none)');
  });
});

describe('GPU slots', () => {
  it('⌊GPUs / N⌋ slots of N consecutive positions; the rest unused', () => {
    expect(gpuSlots(4, 1)).toEqual([[0], [1], [2], [3]]);
    expect(gpuSlots(4, 2)).toEqual([[0, 1], [2, 3]]);
    expect(gpuSlots(5, 2)).toEqual([[0, 1], [2, 3]]);
    expect(gpuSlots(1, 2)).toEqual([]);
    expect(gpuSlots(3, 0)).toEqual([]);
  });

  it('a slot narrows every GPU variable the node sets to the same positions of its own list', () => {
    const g = discoverGpus({ CUDA_VISIBLE_DEVICES: '0,1,2,3', ROCR_VISIBLE_DEVICES: '4,5,6,7', ZE_AFFINITY_MASK: '0,1,2,3' }, none);
    expect(gpuEnv(g, [2, 3])).toEqual({ CUDA_VISIBLE_DEVICES: '2,3', ROCR_VISIBLE_DEVICES: '6,7', ZE_AFFINITY_MASK: '2,3', SLURMPOOL_TASK_GPUS: '2,3', SLURMPOOL_GPU_ORDINALS: '2,3' });
    // The ordinals are positions, whatever the ids.
    expect(gpuEnv(discoverGpus({ CUDA_VISIBLE_DEVICES: '5,7' }, none), [1])).toEqual({ CUDA_VISIBLE_DEVICES: '7', SLURMPOOL_TASK_GPUS: '7', SLURMPOOL_GPU_ORDINALS: '1' });
  });

  it('from a Slurm list or the device files: CUDA_VISIBLE_DEVICES and ZE_AFFINITY_MASK, not ROCR (HIP would filter twice)', () => {
    const g = discoverGpus({ SLURM_JOB_GPUS: '6,7' }, none);
    expect(gpuEnv(g, [1])).toEqual({ CUDA_VISIBLE_DEVICES: '7', ZE_AFFINITY_MASK: '7', SLURMPOOL_TASK_GPUS: '7' });
  });
});

/** Intervals [start, end] per key never overlap: the tasks that held one GPU ran one after another. */
function overlaps(xs: { key: string; start: number; end: number }[]): string[] {
  const by = new Map<string, { start: number; end: number }[]>();
  for (const x of xs) by.set(x.key, [...(by.get(x.key) ?? []), x]);
  const bad: string[] = [];
  for (const [key, list] of by) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) if (list[i]!.start < list[i - 1]!.end) bad.push(`${key}: [${list[i - 1]!.start}, ${list[i - 1]!.end}] and [${list[i]!.start}, ${list[i]!.end}]`);
  }
  return bad;
}

const gpuTask = new URL('./fixtures/gpu-task.mjs', import.meta.url);

describe('GPUs per task in real pools', () => {
  it('in-process threads: ⌊4/1⌋ workers, each thread its own GPU, in process.env before the module loaded', async () => {
    await using pool = await Pool.open({ module: gpuTask, mode: 'local', workers: 8, gpusPerTask: 1, env: { ...process.env, CUDA_VISIBLE_DEVICES: '0,1,2,3' }, log: false });
    expect(pool.workers).toBe(4);
    expect(pool.nodes[0]!.gpus).toBe(4);
    const rs = await pool.map<{ atLoad: string; now: string; thread: number; start: number; end: number }>('gpus', Array(16).fill(30), { chunksize: 1 });
    for (const r of rs) expect(r.atLoad).toBe(r.now);
    expect(new Set(rs.map((r) => r.now))).toEqual(new Set(['0', '1', '2', '3']));
    // One GPU per thread, for good.
    const gpuOf = new Map<number, string>();
    for (const r of rs) expect(gpuOf.set(r.thread, gpuOf.get(r.thread) ?? r.now).get(r.thread)).toBe(r.now);
    expect(overlaps(rs.map((r) => ({ key: r.now, start: r.start, end: r.end })))).toEqual([]);
  });

  it('emulated nodes given CUDA_VISIBLE_DEVICES=0,1,2,3: shell tasks at once on a node never share a GPU; 2 per task makes 2 slots', async () => {
    const env = { ...process.env, CUDA_VISIBLE_DEVICES: '0,1,2,3' };
    const cmd = 's=$(date +%s%N); sleep 0.1; e=$(date +%s%N); echo "$CUDA_VISIBLE_DEVICES $SLURMPOOL_TASK_GPUS $s $e"';
    for (const [perTask, slots] of [[1, 4], [2, 2]] as const) {
      await using pool = await Pool.open({ emulate: '2x6', gpusPerTask: perTask, env, log: false });
      expect(pool.nodes.map((n) => [n.workers, n.gpus])).toEqual([[slots, 4], [slots, 4]]);
      const seen: { key: string; start: number; end: number }[] = [];
      const gpuSets = new Set<string>();
      for await (const r of pool.runCommands(Array(24).fill(cmd), { chunksize: 1 })) {
        expect(r.ok, JSON.stringify(r)).toBe(true);
        const [cvd, taskGpus, s, e] = (r.value as { stdout: string }).stdout.trim().split(' ');
        expect(taskGpus).toBe(cvd);
        expect((r.value as { gpus?: string }).gpus).toBe(cvd);
        expect(cvd!.split(',')).toHaveLength(perTask);
        gpuSets.add(cvd!);
        // Nanoseconds from date: exact enough, and from the command itself, not from slurmpool's bookkeeping.
        for (const gpu of cvd!.split(',')) seen.push({ key: `${r.node}/${gpu}`, start: Number(BigInt(s!) / 1000n), end: Number(BigInt(e!) / 1000n) });
      }
      expect([...gpuSets].sort()).toEqual(perTask === 1 ? ['0', '1', '2', '3'] : ['0,1', '2,3']);
      expect(overlaps(seen)).toEqual([]);
    }
  });

  it('a node without the GPUs asked for fails the open before any task, naming the node and what it found', async () => {
    await expect(Pool.open({ emulate: '2x1', gpusPerTask: 1, env: { ...process.env, CUDA_VISIBLE_DEVICES: '' }, log: false, startTimeout: 20_000 })).rejects.toThrow(
      /node emu[12] has no GPU \(CUDA_VISIBLE_DEVICES lists none\), fewer than the 1 each task asks for \(gpusPerTask \/ --gpus-per-task\)/,
    );
    await expect(Pool.open({ mode: 'local', gpusPerTask: 3, env: { ...process.env, CUDA_VISIBLE_DEVICES: '0,1' }, log: false })).rejects.toThrow(/has 2 GPUs \(CUDA_VISIBLE_DEVICES=0,1\), fewer than the 3 each task asks for/);
  });

  it('options.gpusPerTask is checked', async () => {
    await expect(Pool.open({ gpusPerTask: -1 } as never)).rejects.toThrow('options.gpusPerTask must be a non-negative integer, got -1');
    await expect(Pool.open({ gpusPerTask: 1.5 } as never)).rejects.toThrow('options.gpusPerTask must be a non-negative integer, got 1.5');
  });
});

describe('slurmpool env', () => {
  it('shows the GPUs found and, with --gpus-per-task, each slot\'s variables', async () => {
    const { execFileSync } = await import('node:child_process');
    const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
    const env = { ...process.env, CUDA_VISIBLE_DEVICES: '0,1,2', GPU_DEVICE_ORDINAL: '0,1,2' };
    const j = JSON.parse(execFileSync(process.execPath, [cli, 'env', '--json', '--gpus-per-task', '1'], { env, encoding: 'utf8' })) as { gpus: { ids: string[]; source: string; perTask: number; slots: Record<string, string>[] }; here: { workers: number } };
    expect(j.gpus).toMatchObject({ ids: ['0', '1', '2'], source: 'CUDA_VISIBLE_DEVICES', perTask: 1 });
    expect(j.gpus.slots.map((s) => [s.CUDA_VISIBLE_DEVICES, s.GPU_DEVICE_ORDINAL])).toEqual([['0', '0'], ['1', '1'], ['2', '2']]);
    const text = execFileSync(process.execPath, [cli, 'env', '--gpus-per-task', '2'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(text).toContain('GPUs: 3 GPUs (CUDA_VISIBLE_DEVICES=0,1,2)');
    expect(text).toContain('--gpus-per-task 2: 1 slot: [0] CUDA_VISIBLE_DEVICES=0,1 GPU_DEVICE_ORDINAL=0,1 SLURMPOOL_GPU_ORDINALS=0,1');
  });
});
