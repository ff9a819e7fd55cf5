// How many items go into one chunk.

/** multiprocessing's rule for a known length: about four chunks per worker. */
export function autoChunksize(length: number, workers: number): number {
  if (length <= 0) return 1;
  const per = Math.max(1, workers) * 4;
  let size = Math.floor(length / per);
  if (length % per) size += 1;
  return Math.max(1, size);
}

/** Automatic chunks aim to take about this long (joblib's approach). */
export const ADAPTIVE_TARGET_MS = 50;
export const ADAPTIVE_MAX = 4096;

/**
 * Time per item as learned from finished chunks: the mean and spread of each chunk's time per item,
 * each chunk weighted by its items (a 12,000-item chunk says more than a cold one-item call).
 */
export class ItemTime {
  count = 0;
  mean = 0;
  private weight = 0;
  private m2 = 0;
  add(msPerItem: number, items = 1): void {
    if (!(msPerItem >= 0) || !(items > 0)) return;
    this.count++;
    // West's weighted incremental mean and variance.
    this.weight += items;
    const d = msPerItem - this.mean;
    this.mean += (items / this.weight) * d;
    this.m2 += items * d * (msPerItem - this.mean);
  }
  get sd(): number {
    return this.count > 1 && this.weight > 0 ? Math.sqrt(Math.max(0, this.m2) / this.weight) : 0;
  }

  /** Take another call's statistics as this one's start (a copy, not shared). */
  absorb(o: ItemTime): void {
    this.count = o.count;
    this.mean = o.mean;
    this.weight = o.weight;
    this.m2 = o.m2;
  }
  /** A per-item time to size chunks by: the mean plus twice the spread, so that mixed durations give small chunks. */
  get planning(): number {
    return this.mean + 2 * this.sd;
  }
}

/**
 * Chunks one coordinator hands out per second, at most, when automatic sizes are chosen: it spends
 * about 15 µs per chunk at 1,000 agents (bench/scale.mjs), so this keeps it under half a core.
 */
export const COORDINATOR_CHUNKS_PER_S = 30_000;

/**
 * What an automatic chunk aims to take: ADAPTIVE_TARGET_MS, or longer when there are so many workers
 * that chunks of that length would come back faster than one coordinator can hand them out
 * (64,000 workers: about 2.1 s).
 */
export function chunkTargetMs(workers: number): number {
  return Math.max(ADAPTIVE_TARGET_MS, (Math.max(1, workers) * 1000) / COORDINATOR_CHUNKS_PER_S);
}

/**
 * Automatic chunk size from what the items of a call have taken so far: about `targetMs` of work
 * (ADAPTIVE_TARGET_MS by default), counting the spread of durations (a call that mixes 1 ms and
 * 500 ms items gets chunks of one or two items, a call of uniform tiny items gets large ones), never
 * above `cap`.
 */
export function durationChunksize(t: ItemTime, cap: number, targetMs = ADAPTIVE_TARGET_MS): number {
  const per = t.planning;
  const ideal = per <= 0 ? cap : Math.floor(targetMs / per);
  return Math.max(1, Math.min(cap, ideal));
}

/** Next chunk size for an input of unknown length, from the measured time per item. */
export function adaptiveChunksize(current: number, msPerItem: number): number {
  if (!(msPerItem >= 0)) return current;
  const ideal = msPerItem <= 0 ? ADAPTIVE_MAX : Math.floor(ADAPTIVE_TARGET_MS / msPerItem);
  // Grow at most 2x per step so that one slow item does not mislead, shrink at once.
  const next = Math.min(ideal, current * 2);
  return Math.max(1, Math.min(ADAPTIVE_MAX, next));
}
