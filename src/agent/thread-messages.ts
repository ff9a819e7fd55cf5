// What crosses the thread boundary between an agent and one of its worker threads.
import type { ErrorRecord } from '../errors.js';

export interface WorkerInit {
  module: string | null;
  initializer: string | null;
  initArgs: unknown[];
  /** Float64Array over a SharedArrayBuffer: [chunk id running or -1, item offset, started at (epoch ms), stop flag]. */
  slot: SharedArrayBuffer;
  workerIndex: number;
  maxTasks: number;
  /** Environment for shell commands run by this worker (pinned thread variables). */
  env: Record<string, string>;
  /** Shared values present when the worker starts. */
  shared: SharedEntry[];
}

/** A shared value as workers see it: one SharedArrayBuffer per node, never copied per worker. */
export interface SharedEntry {
  id: number;
  kind: 'bytes' | 'value';
  ctor: string;
  sab: SharedArrayBuffer;
}

/** Chunks and results cross the thread boundary msgpack-encoded (`data`), moved rather than copied. */
/**
 * A batch: chunk specs msgpack-encoded in `data`, except the items of large chunks, which travel
 * beside it in `large` (chunk position → its encoded items), each in its own moved ArrayBuffer.
 */
export type ToWorker = { t: 'batch'; data: Uint8Array; large: [number, Uint8Array][] } | { t: 'share'; entry: SharedEntry } | { t: 'unshare'; id: number };

export type FromWorker =
  /** The worker imported the module: each export's name and typeof. */
  | { t: 'ready'; exports: Record<string, string> }
  | { t: 'initError'; error: ErrorRecord }
  /** `large`: values moved beside `data` (result position → its encoded values), as a batch's large items are. */
  | { t: 'results'; data: Uint8Array; large?: [number, Uint8Array][]; /** [id, duration ms] of each result, in order (forwarding unread). */ head?: number[] }
  /** maxTasksPerWorker reached: the worker exits after this; chunks it did not run are the agent's to requeue. */
  | { t: 'retire' };

export const SLOT_CHUNK = 0;
export const SLOT_OFFSET = 1;
export const SLOT_STARTED = 2;
/** Set to 1 by the agent when the pool stops starting tasks: the worker starts no further item. */
export const SLOT_STOP = 3;
export const SLOT_LENGTH = 4;
