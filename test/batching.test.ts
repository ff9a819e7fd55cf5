// The rules by which a node cuts its queue into thread batches (src/agent/batching.ts), as tables.
import { describe, expect, it } from 'vitest';
import { batchLength, batchShape, MAX_BATCH, MAX_BATCH_BYTES, perBatch } from '../src/agent/batching.js';
import type { ChunkSpec } from '../src/protocol/messages.js';

const chunk = (job: number, fn = 'f', bytes = 8, kind: ChunkSpec['kind'] = 'call'): ChunkSpec => ({ id: 0, job, fn, kind, start: 0, items: new Uint8Array(bytes), count: 1, stopOnError: true, timeoutMs: 0 });

describe('batch shape', () => {
  it.each([
    // expected ms, the call's own?, Python → chunks per batch, chunks a worker may hold, one chunk per call
    { ms: undefined, own: true, python: false, per: 1, depth: 1, byFn: false, why: 'nothing known: one chunk at a time' },
    { ms: undefined, own: false, python: false, per: 1, depth: 1, byFn: true, why: 'nothing known, new call: one chunk at a time' },
    { ms: 0.01, own: true, python: false, per: 200, depth: 400, byFn: false, why: "a call's tiny chunks: 2 ms batches, a second one waiting" },
    { ms: 0.01, own: false, python: false, per: 200, depth: 200, byFn: true, why: "a quick function's new calls: one batch of them, none waiting" },
    { ms: 0.0001, own: true, python: false, per: MAX_BATCH, depth: 2 * MAX_BATCH, byFn: false, why: 'capped at MAX_BATCH' },
    { ms: 5, own: true, python: false, per: 1, depth: 1, byFn: false, why: 'longer than the prefetch limit: no second batch' },
    { ms: 5, own: true, python: true, per: 1, depth: 2, byFn: false, why: 'Python under 200 ms: the next batch waits in the interpreter' },
    { ms: 5, own: false, python: true, per: 1, depth: 2, byFn: true, why: 'Python, a new call of a known function: one chunk waits' },
    { ms: 0.01, own: false, python: true, per: 200, depth: 201, byFn: true, why: 'Python, many quick calls: a batch and one chunk more' },
    { ms: 500, own: true, python: true, per: 1, depth: 1, byFn: false, why: 'Python over 200 ms: one at a time' },
  ])('$why', ({ ms, own, python, per, depth, byFn }) => {
    expect(batchShape(ms, own, python)).toEqual({ per, depth, byFn });
    expect(perBatch(ms)).toBe(per);
  });
});

describe('batch length', () => {
  it.each([
    { queue: [chunk(1), chunk(2), chunk(3)], take: 3, byFn: true, length: 3, why: 'one chunk of each of three calls' },
    { queue: [chunk(1), chunk(1), chunk(2)], take: 3, byFn: true, length: 1, why: "a call's second chunk starts the next batch" },
    { queue: [chunk(1), chunk(1), chunk(1)], take: 3, byFn: false, length: 3, why: 'a known call: its chunks share a batch' },
    { queue: [chunk(1), chunk(2, 'g'), chunk(3)], take: 3, byFn: true, length: 1, why: 'another function starts the next batch' },
    { queue: [chunk(1), chunk(2, 'f', 8, 'star')], take: 2, byFn: true, length: 1, why: 'another kind starts the next batch' },
    { queue: [chunk(1, 'f', MAX_BATCH_BYTES), chunk(1, 'f', 8)], take: 2, byFn: false, length: 1, why: 'a batch stops at MAX_BATCH_BYTES' },
    { queue: [chunk(1, 'f', MAX_BATCH_BYTES + 1), chunk(1)], take: 1, byFn: false, length: 1, why: 'the first chunk always goes, however large' },
    { queue: [chunk(1), chunk(2), chunk(3)], take: 2, byFn: true, length: 2, why: 'never more than asked for' },
  ])('$why', ({ queue, take, byFn, length }) => {
    expect(batchLength(queue, 0, take, byFn)).toBe(length);
  });

  it('reads from the given position', () => {
    expect(batchLength([chunk(1), chunk(1), chunk(2), chunk(3)], 1, 3, true)).toBe(3);
  });
});
