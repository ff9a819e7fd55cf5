// Tasks with their own CPU and GPU requests, packed on real emulated nodes (taskResources): from the
// times and variables each command records itself, no node ever runs more CPUs or GPUs than it has,
// no GPU is held twice, and each command sees its own GPUs and thread count.
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';

/** Prints: CUDA_VISIBLE_DEVICES|OMP_NUM_THREADS|start µs|end µs (from the command itself). */
const CMD = 's=$(date +%s%N); sleep 0.15; e=$(date +%s%N); echo "$CUDA_VISIBLE_DEVICES|$OMP_NUM_THREADS|${s%???}|${e%???}"';

interface Ran {
  node: string;
  cpus: number;
  gpus: string[];
  start: number;
  end: number;
}

/** At every start on a node: the CPUs and GPUs of the commands running then. Returns what went over. */
function oversubscribed(ran: Ran[], cpus: number, gpus: number): string[] {
  const bad: string[] = [];
  for (const a of ran) {
    const now = ran.filter((b) => b.node === a.node && b.start <= a.start && a.start < b.end);
    const c = now.reduce((s, b) => s + b.cpus, 0);
    const g = now.flatMap((b) => b.gpus);
    if (c > cpus) bad.push(`${a.node} at ${a.start}: ${c} CPUs`);
    if (g.length > gpus || new Set(g).size !== g.length) bad.push(`${a.node} at ${a.start}: GPUs ${g.join(',')}`);
  }
  return bad;
}

describe('per-task requests (taskResources)', () => {
  it('mixed requests on 2 emulated nodes of 4 CPUs and GPUs 0,1: never more than a node has, each its own GPUs', async () => {
    await using pool = await Pool.open({ emulate: '2x4', taskResources: true, env: { ...process.env, CUDA_VISIBLE_DEVICES: '0,1' }, log: false });
    expect(pool.nodes.map((n) => [n.workers, n.gpus])).toEqual([[4, 2], [4, 2]]);
    // A fixed mix: mostly small, some whole-node ones, GPU and CPU-only tasks interleaved.
    const asks: [number, number][] = [];
    for (let i = 0; i < 36; i++) asks.push(i % 9 === 4 ? [4, 2] : [1 + (i % 3), i % 4 === 1 ? 1 : i % 5 === 2 ? 2 : 0]);
    const items = asks.map(([cpus, gpus]) => ({ cmd: CMD, cpus, gpus }));
    const ran: Ran[] = [];
    for await (const r of pool.runCommands(items, { chunksize: 1 })) {
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const [cvd, omp, s, e] = (r.value as { stdout: string }).stdout.trim().split('|');
      const [cpus, gpus] = asks[r.index]!;
      expect(omp).toBe(String(cpus));
      const got = cvd === '' ? [] : cvd!.split(',');
      expect(got).toHaveLength(gpus);
      for (const g of got) expect(['0', '1']).toContain(g);
      ran.push({ node: r.node, cpus, gpus: got, start: Number(s), end: Number(e) });
    }
    expect(ran).toHaveLength(36);
    expect(oversubscribed(ran, 4, 2)).toEqual([]);
  });

  it('a request larger than the node fails that task naming the node; bad fields fail their item; the others run', async () => {
    await using pool = await Pool.open({ emulate: '1x2', taskResources: true, env: { ...process.env, CUDA_VISIBLE_DEVICES: '0' }, log: false });
    const items = [{ cmd: 'true', cpus: 3 }, { cmd: 'true', gpus: 2 }, { cmd: 'true', cpus: 0 }, { cmd: 'echo $X', env: { X: 'a b' } }, 'true'];
    const recs = new Map<number, { ok: boolean; error?: { message: string; name: string } | null; value: unknown }>();
    for await (const r of pool.runCommands(items, { chunksize: 1 })) recs.set(r.index, r as never);
    expect(recs.get(0)!.error).toMatchObject({ message: 'the task asks for 3 CPUs, more than the 2 of node emu1' });
    expect(recs.get(1)!.error?.message).toBe('the task asks for 2 GPUs, more than the 1 of node emu1');
    expect(recs.get(2)!.error?.message).toBe('command item: cpus must be a positive integer, got 0');
    expect(recs.get(3)!.ok).toBe(true);
    expect((recs.get(3)!.value as { stdout: string }).stdout).toBe('a b\n');
    expect(recs.get(4)!.ok).toBe(true);
  });

  it('module functions in a packed pool take the defaults (gpusPerTask 1): their GPU in process.env while they run, never one held twice', async () => {
    const gpuTask = new URL('./fixtures/gpu-task.mjs', import.meta.url);
    await using pool = await Pool.open({ module: gpuTask, emulate: '1x4', taskResources: true, gpusPerTask: 1, env: { ...process.env, CUDA_VISIBLE_DEVICES: '0,1' }, log: false });
    expect(pool.workers).toBe(4);
    const rs = await pool.map<{ now: string; start: number; end: number }>('gpus', Array(12).fill(40), { chunksize: 1 });
    expect(new Set(rs.map((r) => r.now))).toEqual(new Set(['0', '1']));
    const over = rs.filter((a) => rs.some((b) => a !== b && a.now === b.now && a.start < b.end && b.start < a.end));
    expect(over).toEqual([]);
  });

  it('options.taskResources is checked', async () => {
    await expect(Pool.open({ taskResources: 1 } as never)).rejects.toThrow('options.taskResources must be a boolean, got 1');
  });
});
