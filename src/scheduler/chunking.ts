// How many items go into one chunk.

/** multiprocessing's rule for a known length: about four chunks per worker. */
export function autoChunksize(length: number, workers: number): number {
  if (length <= 0) return 1;
  const per = Math.max(1, workers) * 4;
  let size = Math.floor(length / per);
  if (length % per) size += 1;
  return Math.max(1, size);
}

/** With no length known, chunks grow until one takes about this long (joblib's approach). */
export const ADAPTIVE_TARGET_MS = 50;
export const ADAPTIVE_MAX = 4096;

/** Next chunk size for an input of unknown length, from the measured time per item. */
export function adaptiveChunksize(current: number, msPerItem: number): number {
  if (!(msPerItem >= 0)) return current;
  const ideal = msPerItem <= 0 ? ADAPTIVE_MAX : Math.floor(ADAPTIVE_TARGET_MS / msPerItem);
  // Grow at most 2x per step so that one slow item does not mislead, shrink at once.
  const next = Math.min(ideal, current * 2);
  return Math.max(1, Math.min(ADAPTIVE_MAX, next));
}
