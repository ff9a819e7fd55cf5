// How a node's WorkerPool cuts its queue into thread batches: pure rules, a table-driven test each
// (test/batching.test.ts). The WorkerPool learns durations and owns the threads; these decide sizes.
import type { ChunkSpec } from '../protocol/messages.js';

/** A batch sent to a worker aims to keep it busy this long, so tiny chunks share one message. */
export const TARGET_BATCH_MS = 2;
export const MAX_BATCH = 512;
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Chunks shorter than this are prefetched (a second batch waits beside each worker, and the node asks
 * for more than one chunk per worker); longer ones are not: a chunk that waits behind a long one
 * while another worker idles costs more than the round trip it hides.
 */
export const PREFETCH_BELOW_MS = 2;
/**
 * Python slots: for calls whose chunks take less than this, an interpreter holds its next batch while
 * it runs one (no round trip between chunks); a worker that idles takes such a batch back (takeBack).
 * Longer chunks go one at a time: their round trip costs them little.
 */
export const PIPELINE_BELOW_MS = 200;

/** Chunks per batch for chunks expected to take `ms`: about TARGET_BATCH_MS of work, 1 while unknown. */
export function perBatch(ms: number | undefined): number {
  if (ms === undefined) return 1;
  return Math.min(MAX_BATCH, Math.max(1, Math.ceil(TARGET_BATCH_MS / Math.max(ms, 0.001))));
}

/**
 * The batches for the chunk at the head of the queue, expected to take `ms` (undefined: unknown).
 * `callKnown`: the expectation is its call's own chunks'; otherwise its function's, learned from
 * other calls, and then a batch holds that function's chunks only, at most one of each call (`byFn`).
 * `depth`: the chunks a worker may hold. A worker holds a second batch only for tiny chunks of a call
 * it knows; otherwise just the one it runs. A Python interpreter holds its next batch for short
 * chunks, and for a call known by its function only, one chunk more (one running, one waiting, which
 * an idle worker can take back).
 */
export function batchShape(ms: number | undefined, callKnown: boolean, python: boolean): { per: number; depth: number; byFn: boolean } {
  const per = perBatch(ms);
  const short = python && ms !== undefined && ms < PIPELINE_BELOW_MS;
  if (!callKnown) return { per, depth: short ? per + 1 : per, byFn: true };
  return { per, depth: ms! < PREFETCH_BELOW_MS || short ? 2 * per : per, byFn: false };
}

/**
 * How many of the `take` chunks from `queue[from]` on go in one batch: a batch stops at
 * MAX_BATCH_BYTES (memory stays bounded, work spreads) and, sized by function (`byFn`), at a chunk of
 * another function or kind, or at a call's second chunk. The first chunk always goes.
 */
export function batchLength(queue: readonly ChunkSpec[], from: number, take: number, byFn: boolean): number {
  const head = queue[from]!;
  const calls = byFn ? new Set<number>() : null;
  let bytes = 0;
  for (let k = 0; k < take; k++) {
    const c = queue[from + k]!;
    bytes += c.items.byteLength;
    const other = calls !== null && (c.fn !== head.fn || c.kind !== head.kind || calls.has(c.job));
    if (k > 0 && (bytes > MAX_BATCH_BYTES || other)) return k;
    calls?.add(c.job);
  }
  return take;
}
