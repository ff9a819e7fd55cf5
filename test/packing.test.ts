// The packing policy of tasks with their own CPU and GPU requests (src/agent/packing.ts): first come,
// first served, the oldest waiting task reserved, smaller ones backfilling only out of the surplus.
// Table cases, then a simulation in virtual time (no clock) over many random mixes.
import { describe, expect, it } from 'vitest';
import { Ledger, type Need } from '../dist/agent/packing.js';

const n = (cpus: number, gpus = 0): Need => ({ cpus, gpus });

describe('Ledger.pick', () => {
  it('starts tasks in arrival order while they fit, each with the lowest free GPUs', () => {
    const l = new Ledger(8, 4);
    expect(l.pick([n(2, 1), n(2, 2), n(1)], 10)).toEqual([{ index: 0, gpus: [0] }, { index: 1, gpus: [1, 2] }, { index: 2, gpus: [] }]);
    expect(l.freeCpus).toBe(3);
    expect(l.freeGpuCount).toBe(1);
    l.release(2, [1, 2]);
    expect(l.pick([n(1, 3)], 10)).toEqual([{ index: 0, gpus: [1, 2, 3] }]);
  });

  it('never more tasks than idle workers', () => {
    expect(new Ledger(8, 0).pick([n(1), n(1), n(1)], 2).map((s) => s.index)).toEqual([0, 1]);
  });

  it('the head short of GPUs: CPU-only tasks backfill from the CPUs beyond its reservation, no further', () => {
    const l = new Ledger(8, 2);
    l.pick([n(2, 2)], 10); // running: 2 CPUs, both GPUs; free: 6 CPUs, 0 GPUs
    // head needs 4 CPUs + 1 GPU: reserved 4 of the 6 free CPUs; surplus 2
    const s = l.pick([n(4, 1), n(1), n(2), n(1), n(1, 1)], 10);
    expect(s.map((x) => x.index)).toEqual([1, 3]); // 1 CPU, then 2 would exceed the surplus of 1, then 1 CPU
    expect(l.freeCpus).toBe(4); // exactly the head's reservation
  });

  it('the head short of CPUs: nothing backfills (every task needs a CPU)', () => {
    const l = new Ledger(4, 2);
    l.pick([n(3)], 10);
    expect(l.pick([n(2), n(1), n(1, 1)], 10)).toEqual([]);
  });

  it('a request larger than the node is skipped (the pool fails it) and does not block the queue', () => {
    const l = new Ledger(4, 1);
    expect(l.tooLarge(n(5))).toBe('5 CPUs, more than the 4 of this node');
    expect(l.tooLarge(n(1, 2))).toBe('2 GPUs, more than the 1 of this node');
    expect(l.pick([n(5), n(1, 2), n(1)], 10)).toEqual([{ index: 2, gpus: [] }]);
  });
});

/** A deterministic pseudo-random sequence (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Task {
  need: Need;
  dur: number;
  start?: number;
  end?: number;
  gpus?: number[];
  /** When it became the head (oldest waiting), and what was running then. */
  headAt?: number;
  runningAtHead?: Task[];
  freeAtHead?: Need;
}

/** Run `tasks` through one node's ledger in virtual time, as the worker pool does: pick on every arrival and end. */
function simulate(cpus: number, gpus: number, tasks: Task[], arrivals: number[]): void {
  const l = new Ledger(cpus, gpus);
  const waiting: Task[] = [];
  const running = new Set<Task>();
  let now = 0;
  let next = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    // Arrivals at this time, then starts.
    while (next < tasks.length && arrivals[next]! <= now) waiting.push(tasks[next++]!);
    const starts = l.pick(waiting.map((t) => t.need), cpus);
    const started = new Set(starts.map((s) => s.index));
    for (const s of starts) {
      const t = waiting[s.index]!;
      t.start = now;
      t.end = now + t.dur;
      t.gpus = s.gpus;
      running.add(t);
    }
    const left = waiting.filter((_, i) => !started.has(i));
    waiting.length = 0;
    waiting.push(...left);
    const head = waiting[0];
    if (head && head.headAt === undefined) {
      head.headAt = now;
      head.runningAtHead = [...running];
      head.freeAtHead = { cpus: l.freeCpus, gpus: l.freeGpuCount };
    }
    // Never more than the node has, and no GPU held twice.
    const held = [...running].flatMap((t) => t.gpus!);
    expect(new Set(held).size).toBe(held.length);
    expect([...running].reduce((s, t) => s + t.need.cpus, 0)).toBeLessThanOrEqual(cpus);
    expect(held.length).toBeLessThanOrEqual(gpus);
    if (running.size === 0 && waiting.length === 0 && next >= tasks.length) return;
    // The next event: an end or an arrival.
    const ends = [...running].map((t) => t.end!);
    now = Math.min(...ends, next < tasks.length ? arrivals[next]! : Infinity);
    for (const t of [...running]) {
      if (t.end! <= now) {
        running.delete(t);
        l.release(t.need.cpus, t.gpus!);
      }
    }
  }
  throw new Error('simulation did not finish');
}

describe('the policy over random mixes (virtual time)', () => {
  it('never oversubscribes, runs everything, and never starts a head later than the tasks running when it became head allow', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const cpus = 1 + Math.floor(r() * 16);
      const gpus = Math.floor(r() * 5);
      const tasks: Task[] = [];
      const arrivals: number[] = [];
      let t = 0;
      for (let i = 0; i < 60; i++) {
        // Mostly small, sometimes a whole node.
        const big = r() < 0.15;
        tasks.push({ need: n(big ? cpus : 1 + Math.floor(r() * Math.min(4, cpus)), big ? gpus : Math.floor(r() * (gpus + 1))), dur: 1 + Math.floor(r() * 20) });
        arrivals.push(t);
        t += Math.floor(r() * 3);
      }
      simulate(cpus, gpus, tasks, arrivals);
      for (const task of tasks) {
        expect(task.start, `seed ${seed}`).toBeDefined();
        if (task.headAt === undefined) continue;
        // The earliest moment the tasks that were running when it became head free enough for it.
        const frees = task.runningAtHead!.map((p) => p).sort((a, b) => a.end! - b.end!);
        let c = task.freeAtHead!.cpus;
        let g = task.freeAtHead!.gpus;
        let bound = task.headAt;
        for (const p of frees) {
          if (c >= task.need.cpus && g >= task.need.gpus) break;
          c += p.need.cpus;
          g += p.need.gpus;
          bound = Math.max(bound, p.end!);
        }
        expect(task.start!, `seed ${seed}: a head waited past ${bound}`).toBeLessThanOrEqual(bound);
      }
    }
  });
});
