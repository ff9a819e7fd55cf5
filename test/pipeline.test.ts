// Pipelines: one map's lazy output is the next one's input.
import { describe, expect, it } from 'vitest';
import { Pool, TaskError } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

describe('pipelines', () => {
  it('imap over imap runs both stages overlapped, in order', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const xs = Array.from({ length: 500 }, (_, i) => i);
    const out: number[] = [];
    for await (const v of pool.imap<number>('square', pool.imap('identity', xs))) out.push(v);
    expect(out).toEqual(xs.map((x) => x * x));
  });

  it('a two-stage pipeline over an endless generator, broken after N results, stops both stages', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    let read = 0;
    let closed = false;
    function* naturals() {
      try {
        for (let i = 0; ; i++) {
          read++;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const got: number[] = [];
    for await (const v of pool.imapUnordered<number>('square', pool.imap('identity', naturals()))) {
      got.push(v);
      if (got.length === 25) break;
    }
    expect(got).toHaveLength(25);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(true);
    expect(read).toBeLessThan(30_000);
    expect(await pool.map('square', [4])).toEqual([16]);
  });

  it('an error in stage 1 surfaces in stage 2\'s iteration with its original index', async () => {
    await using pool = await Pool.open({ module: tasks, workers: 2 });
    const got: number[] = [];
    let err: unknown;
    try {
      for await (const v of pool.imap<number>('identity', pool.imap('failOn', [0, 1, 2, 3, 4, 5], { chunksize: 1 }))) got.push(v);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TaskError);
    expect((err as InstanceType<typeof TaskError>).index).toBe(3);
    expect((err as InstanceType<typeof TaskError>).fn).toBe('failOn');
    expect(got).toEqual([0, 1, 2]);
  });
});
