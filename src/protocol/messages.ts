// The one definition of what crosses between a coordinator and an agent, in both directions.
import type { ErrorRecord } from '../errors.js';

/** Bumped on any incompatible change; checked in the handshake. */
export const PROTOCOL_VERSION = 2;

/** What a chunk asks a worker to run. */
export type TaskKind = 'call' | 'star' | 'shell';

/** A chunk: consecutive items of one call, the unit of dispatch, result and failure. */
export interface ChunkSpec {
  /** Unique per coordinator. */
  id: number;
  /** The call (map, imap…) it belongs to: chunk durations are learned per call. */
  job: number;
  /** Export name (call/star) or '' for shell commands. */
  fn: string;
  kind: TaskKind;
  /** Input index of the first item. */
  start: number;
  /** The items, msgpack-encoded once by the coordinator and decoded only by the worker that runs them. */
  items: Uint8Array;
  count: number;
  /** Stop the chunk at the first failing item (map semantics) or run every item (CLI records). */
  stopOnError: boolean;
  /** Per-task timeout in ms; 0 = none. */
  timeoutMs: number;
}

/** What the workers of an agent load and how. */
export interface AgentConfig {
  /** file: URL of the task module, or null for shell-only pools. */
  module: string | null;
  initializer: string | null;
  initArgs: unknown[];
  maxTasksPerWorker: number;
  threadsPerTask: number;
  /** Worker threads on this agent; 0 = decide from the node's CPUs. */
  workers: number;
  /** Worker heap limit in MB; 0 = Node's default. */
  maxHeapMB: number;
  heartbeatMs: number;
  /** Variables added to every task's environment on every node (whatever the launcher propagates). */
  taskEnv: Record<string, string>;
  /** Keep thread variables (OMP_NUM_THREADS…) the environment already sets instead of pinning them to threadsPerTask. */
  keepThreadEnv?: boolean;
  /** CPUs the allocation gives this agent's node (the coordinator read them from SLURM_JOB_CPUS_PER_NODE); wins over the step's own count. */
  cpus?: number;
}

export interface ItemFailure {
  offset: number;
  error: ErrorRecord;
}

/** The outcome of one chunk on one worker. */
export interface ChunkResult {
  id: number;
  worker: number;
  /** msgpack of an array: its [i] is the result of item i; shorter than the items when stopped at a failure. Decoded only by the coordinator. */
  values: Uint8Array;
  failures: ItemFailure[];
  /** Epoch ms. */
  started: number;
  ended: number;
  /** The worker died or was killed (timeout) while running items[offset]; values is then empty. */
  died?: { offset: number; error: ErrorRecord };
}

/** How a shared value is stored on a node: raw bytes (a typed array or Buffer) or a msgpack-encoded value. */
export type SharedKind = 'bytes' | 'value';

/** One piece of a shared value; pieces arrive in order, each under the frame limit. */
export interface SharePiece {
  id: number;
  kind: SharedKind;
  /** For bytes: the typed-array constructor to view them with (Uint8Array, Float64Array, Buffer…). */
  ctor: string;
  total: number;
  offset: number;
  bytes: Uint8Array;
}

/** Coordinator → agent. */
export type ToAgent =
  | { t: 'configure'; config: AgentConfig }
  | ({ t: 'share' } & SharePiece)
  | { t: 'unshare'; id: number }
  | { t: 'chunks'; chunks: ChunkSpec[] }
  | { t: 'cancel'; ids: number[] }
  /** Drop every chunk not yet handed to a worker; the agent answers with those it dropped. */
  | { t: 'unqueue' }
  | { t: 'ping'; at: number }
  | { t: 'shutdown'; graceful: boolean };

/** Agent → coordinator. */
export type FromAgent =
  /** `exports`: the task module's exports (name → typeof), as this node's workers imported it. */
  | { t: 'ready'; node: string; workers: number; cpus: number; pid: number; credits: number; exports?: Record<string, string> }
  | { t: 'results'; results: ChunkResult[] }
  | { t: 'credits'; credits: number }
  /** Chunks dropped before any worker started them (answer to unqueue). */
  | { t: 'unqueued'; ids: number[] }
  /** The agent is leaving (its allocation ends, or a signal): send it nothing more; `ids` are chunks it hands back unrun. */
  | { t: 'leaving'; ids: number[]; why: string }
  | { t: 'pong'; at: number }
  | { t: 'heartbeat' }
  | { t: 'fatal'; error: ErrorRecord }
  | { t: 'shareState'; id: number; state: 'ready' | 'released'; bytes: number }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; text: string };

/** Handshake over TCP, before any of the above. */
export type Handshake =
  | { t: 'hello'; v: number; role: 'agent'; node: string; nonce: Uint8Array }
  | { t: 'challenge'; v: number; nonce: Uint8Array; proof: Uint8Array }
  | { t: 'proof'; proof: Uint8Array }
  | { t: 'welcome' }
  | { t: 'reject'; reason: string };

const TO_AGENT = new Set(['configure', 'chunks', 'cancel', 'unqueue', 'ping', 'shutdown', 'share', 'unshare']);
const FROM_AGENT = new Set(['ready', 'results', 'credits', 'unqueued', 'leaving', 'pong', 'heartbeat', 'fatal', 'log', 'shareState']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Check the shape of a decoded message from an agent; returns a reason or null. */
export function checkFromAgent(v: unknown): string | null {
  if (!isRecord(v) || typeof v.t !== 'string') return 'message is not a record with a type';
  if (!FROM_AGENT.has(v.t)) return `unknown message type ${JSON.stringify(v.t).slice(0, 40)}`;
  if (v.t === 'results' && !Array.isArray(v.results)) return 'results without a results array';
  if (v.t === 'leaving' && !Array.isArray(v.ids)) return 'leaving without an ids array';
  if (v.t === 'ready' && (typeof v.node !== 'string' || typeof v.workers !== 'number')) return 'ready without node/workers';
  return null;
}

/** Check the shape of a decoded message from a coordinator; returns a reason or null. */
export function checkToAgent(v: unknown): string | null {
  if (!isRecord(v) || typeof v.t !== 'string') return 'message is not a record with a type';
  if (!TO_AGENT.has(v.t)) return `unknown message type ${JSON.stringify(v.t).slice(0, 40)}`;
  if (v.t === 'chunks' && !Array.isArray(v.chunks)) return 'chunks without a chunks array';
  if (v.t === 'share' && (!(v.bytes instanceof Uint8Array) || typeof v.total !== 'number' || typeof v.offset !== 'number' || typeof v.id !== 'number')) return 'malformed share piece';
  return null;
}
