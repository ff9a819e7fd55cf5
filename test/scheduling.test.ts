// Scheduling users can trust: no task waits behind a long one while a worker idles, mixed durations
// are spread, every CPU of an uneven allocation gets a worker. Assertions are on records, not wall time.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Pool, type TaskRecord } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

async function collect(it: AsyncIterable<TaskRecord>): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for await (const r of it) out.push(r);
  return out.sort((a, b) => a.index - b.index);
}

describe('head-of-line blocking', () => {
  for (const [name, opts] of [
    ['local threads', { workers: 2 }],
    ['emulated nodes', { emulate: '2x1' }],
  ] as const) {
    it(`a long command never holds a short one back while a worker idles (${name})`, async () => {
      await using pool = await Pool.open({ ...opts, log: false });
      // The second long command is a second longer than the first: under load the first spawn can be
      // late by a tenth of a second or more, and "task 3 starts before both long ones end" must not
      // then depend on a few milliseconds.
      const recs = await collect(pool.runCommands(['sleep 1.5', 'sleep 0.1', 'sleep 2.5', 'sleep 0.1']));
      expect(recs.map((r) => r.ok)).toEqual([true, true, true, true]);
      const slot = (r: TaskRecord) => `${r.node}/${r.worker}`;
      // Task 2 runs on the slot that finished task 1, and starts while task 0 still runs: it did not wait behind it.
      expect(slot(recs[2]!)).toBe(slot(recs[1]!));
      expect(slot(recs[2]!)).not.toBe(slot(recs[0]!));
      expect(recs[2]!.started).toBeLessThan(recs[0]!.ended);
      // Task 3 starts when the first long one ends, on that slot, not after both.
      expect(recs[3]!.started).toBeLessThan(Math.max(recs[0]!.ended, recs[2]!.ended));
    });
  }

  it('imapUnordered: a 300 ms item does not wait behind another 300 ms one on a busy worker', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    const recs = await collect(pool.imapRecords('sleepThen', [{ ms: 300, v: 0 }, { ms: 20, v: 1 }, { ms: 300, v: 2 }, { ms: 20, v: 3 }], { chunksize: 1 }));
    expect(recs[2]!.worker).toBe(recs[1]!.worker);
    expect(recs[2]!.worker).not.toBe(recs[0]!.worker);
    expect(recs[2]!.started).toBeLessThan(recs[0]!.ended);
  });
});

describe('many calls of one function', () => {
  it('concurrent apply() calls of a function known to be quick go out many to a thread message, each with its own result', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    await pool.map('square', [1, 2, 3, 4], { chunksize: 1 });
    // Thread messages counted as they are posted (the real ones: the pool's threads are Workers of this process).
    const post = Worker.prototype.postMessage;
    let batches = 0;
    Worker.prototype.postMessage = function (this: Worker, m: unknown, t?: readonly Transferable[]) {
      if ((m as { t?: string } | null)?.t === 'batch') batches++;
      return post.call(this, m, t as Transferable[]);
    };
    try {
      const n = 2000;
      const out = await Promise.all(Array.from({ length: n }, (_, i) => pool.apply('square', i)));
      expect(out).toEqual(Array.from({ length: n }, (_, i) => i * i));
      // One call, one chunk: sent one per message, this would be 2,000 messages.
      expect(batches).toBeLessThan(n / 4);
    } finally {
      Worker.prototype.postMessage = post;
    }
  });

  it("a new call's chunks never share a batch before its own durations are known, however quick its function was before", async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2, log: false });
    await Promise.all(Array.from({ length: 200 }, (_, i) => pool.apply('sleepThen', { ms: 0, v: i })));
    const recs = await collect(pool.imapRecords('sleepThen', [{ ms: 800, v: 0 }, { ms: 20, v: 1 }, { ms: 20, v: 2 }, { ms: 20, v: 3 }], { chunksize: 1 }));
    expect(recs.map((r) => r.ok)).toEqual([true, true, true, true]);
    // The short ones ran on the other worker while the long one ran: none waited behind it.
    for (const r of recs.slice(1)) {
      expect(r.worker).not.toBe(recs[0]!.worker);
      expect(r.started).toBeLessThan(recs[0]!.ended);
    }
  });
});

describe('mixed durations', () => {
  it('automatic chunks keep long commands apart once durations are known: after the first wave no chunk holds two of them', async () => {
    await using pool = await Pool.open({ workers: 2, log: false });
    const cmds = Array.from({ length: 200 }, (_, i) => (i % 20 === 7 ? 'sleep 0.3' : 'true'));
    const recs = await collect(pool.runCommands(cmds));
    expect(recs.every((r) => r.ok)).toBe(true);
    // Items of one chunk share started/ended: long items in the same chunk would show the same pair.
    const chunkOf = (r: TaskRecord) => `${r.node}/${r.worker}/${r.started}`;
    const longs = recs.filter((r) => r.index % 20 === 7);
    const chunksWithLongs = new Map<string, number>();
    for (const r of longs) chunksWithLongs.set(chunkOf(r), (chunksWithLongs.get(chunkOf(r)) ?? 0) + 1);
    // The first wave after the probes is sized from two short commands: at most two long ones may share a chunk there.
    expect(Math.max(...chunksWithLongs.values())).toBeLessThanOrEqual(2);
    // Once a long one has been seen, chunks shrink: the second half of the file never bundles two.
    const late = longs.filter((r) => r.index >= 100);
    expect(new Set(late.map(chunkOf)).size).toBe(late.length);
  });
});

describe('uneven allocations', () => {
  it('every CPU of an uneven emulated allocation ("2,2,1") gets a worker', async () => {
    await using pool = await Pool.open({ module: tasks, emulate: '2,2,1', log: false });
    expect(pool.nodes.map((n) => [n.node, n.workers]).sort()).toEqual([
      ['emu1', 2],
      ['emu2', 2],
      ['emu3', 1],
    ]);
    expect(pool.workers).toBe(5);
    const env = await pool.map<string>('envOf', ['SLURM_JOB_CPUS_PER_NODE']);
    expect(env).toEqual(['2(x2),1']);
  });
});
