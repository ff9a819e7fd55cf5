// The one definition of what crosses between a coordinator and an agent, in both directions.
import type { ErrorRecord } from '../errors.js';
import type { AuthRole } from './auth.js';

/** Bumped on any incompatible change; checked in the handshake. */
export const PROTOCOL_VERSION = 4;

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
  /**
   * Shell chunks whose items carry their own requests (taskResources): the CPUs and GPUs the chunk
   * holds while it runs. The agent starts it only when its node has them free.
   */
  need?: { cpus: number; gpus: number };
  /** Set by the agent for its worker, never sent: variables of this run of the chunk (the GPUs it was given). */
  env?: Record<string, string>;
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
  /** The Python interpreter for a .py task module (options.python); unset: SLURMPOOL_PYTHON, $VIRTUAL_ENV/bin/python or python3 on each node. */
  python?: string;
  /** CPUs the allocation gives this agent's node (the coordinator read them from SLURM_JOB_CPUS_PER_NODE); wins over the step's own count. */
  cpus?: number;
  /** GPUs each task gets to itself (CUDA_VISIBLE_DEVICES…); 0 or absent: GPUs are not handed out. */
  gpusPerTask?: number;
  /**
   * Tasks carry their own CPU and GPU requests (chunks with `need`): one worker per CPU, and the agent
   * packs chunks so that those running never hold more CPUs or GPUs than the node has.
   * threadsPerTask and gpusPerTask are then the requests of tasks that make none.
   */
  taskResources?: boolean;
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

/** Another agent's relay port, where shared values can be fetched from it. */
export interface RelayPeer {
  node: string;
  host: string;
  port: number;
}

/** Coordinator → agent. */
export type ToAgent =
  | { t: 'configure'; config: AgentConfig }
  /** Get a shared value: from `peer` (an agent that holds or is receiving it), or from the coordinator when there is none. */
  | { t: 'fetch'; id: number; kind: SharedKind; ctor: string; total: number; peer?: RelayPeer }
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
  /**
   * `exports`: the task module's exports (name → typeof), as this node's workers imported it.
   * `relayGroup`: a tag derived from the secret the agent joined with (never the secret): only agents
   * of one group can prove themselves to each other, so only they relay shared data to each other.
   */
  | { t: 'ready'; node: string; workers: number; cpus: number; pid: number; credits: number; exports?: Record<string, string>; gpus?: number; relayGroup?: string }
  | { t: 'results'; results: ChunkResult[] }
  | { t: 'credits'; credits: number }
  /** Chunks dropped before any worker started them (answer to unqueue). */
  | { t: 'unqueued'; ids: number[] }
  /** The agent is leaving (its allocation ends, or a signal): send it nothing more; `ids` are chunks it hands back unrun. */
  | { t: 'leaving'; ids: number[]; why: string }
  /**
   * Chunks the node cannot run from its own copy any more (their items were moved to a worker that
   * died before starting them): the coordinator sends them again from its own items.
   */
  | { t: 'handback'; ids: number[] }
  | { t: 'pong'; at: number }
  | { t: 'heartbeat' }
  | { t: 'fatal'; error: ErrorRecord }
  | { t: 'shareState'; id: number; state: 'ready' | 'released'; bytes: number }
  /** Stream shared value `id` to this agent from byte `from` (after a fetch without a peer). */
  | { t: 'want'; id: number; from: number }
  /** This agent's relay port is open: other agents may fetch shared values from it. */
  | { t: 'relay'; host: string; port: number }
  /** Fetching `id` from a peer stopped before the end, with `got` bytes held. */
  | { t: 'fetchFailed'; id: number; got: number; reason: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; text: string };

/** Handshake over TCP, before any of the above. */
export type Handshake =
  | { t: 'hello'; v: number; role: AuthRole; node: string; nonce: Uint8Array }
  | { t: 'challenge'; v: number; nonce: Uint8Array; proof: Uint8Array }
  | { t: 'proof'; proof: Uint8Array }
  | { t: 'welcome' }
  | { t: 'reject'; reason: string };

/** Relay child → relay parent (between agents): stream shared value `id` from byte `from`. */
export type RelayUp = { t: 'want'; id: number; from: number };
/** Relay parent → relay child: pieces in order, or why there will be none. */
export type RelayDown = ({ t: 'share' } & SharePiece) | { t: 'gone'; id: number; reason: string };

const TO_AGENT = new Set(['configure', 'chunks', 'cancel', 'unqueue', 'ping', 'shutdown', 'share', 'unshare', 'fetch']);
const FROM_AGENT = new Set(['ready', 'results', 'credits', 'unqueued', 'leaving', 'handback', 'pong', 'heartbeat', 'fatal', 'log', 'shareState', 'want', 'relay', 'fetchFailed']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Check the shape of a decoded message from an agent; returns a reason or null. */
export function checkFromAgent(v: unknown): string | null {
  if (!isRecord(v) || typeof v.t !== 'string') return 'message is not a record with a type';
  if (!FROM_AGENT.has(v.t)) return `unknown message type ${JSON.stringify(v.t).slice(0, 40)}`;
  if (v.t === 'results' && !Array.isArray(v.results)) return 'results without a results array';
  if (v.t === 'leaving' && !Array.isArray(v.ids)) return 'leaving without an ids array';
  if (v.t === 'handback' && !Array.isArray(v.ids)) return 'handback without an ids array';
  if (v.t === 'ready' && (typeof v.node !== 'string' || typeof v.workers !== 'number')) return 'ready without node/workers';
  if (v.t === 'want' && !isOffset(v.id, v.from)) return 'malformed want';
  if (v.t === 'relay' && (typeof v.host !== 'string' || v.host.length > 256 || !Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535)) return 'malformed relay port';
  if (v.t === 'fetchFailed' && (!isOffset(v.id, v.got) || typeof v.reason !== 'string')) return 'malformed fetchFailed';
  return null;
}

/** Check the shape of a decoded message from a coordinator; returns a reason or null. */
export function checkToAgent(v: unknown): string | null {
  if (!isRecord(v) || typeof v.t !== 'string') return 'message is not a record with a type';
  if (!TO_AGENT.has(v.t)) return `unknown message type ${JSON.stringify(v.t).slice(0, 40)}`;
  if (v.t === 'chunks' && !Array.isArray(v.chunks)) return 'chunks without a chunks array';
  if (v.t === 'share' && !isPiece(v)) return 'malformed share piece';
  if (v.t === 'fetch' && (!isOffset(v.id, v.total) || (v.peer !== undefined && !isPeer(v.peer)))) return 'malformed fetch';
  return null;
}

function isOffset(id: unknown, n: unknown): boolean {
  return Number.isInteger(id) && Number.isInteger(n) && (n as number) >= 0;
}

function isPiece(v: Record<string, unknown>): boolean {
  return v.bytes instanceof Uint8Array && isOffset(v.id, v.total) && Number.isInteger(v.offset);
}

function isPeer(v: unknown): boolean {
  return isRecord(v) && typeof v.host === 'string' && typeof v.node === 'string' && Number.isInteger(v.port);
}

/** Check what a relay parent receives from a child. */
export function checkRelayUp(v: unknown): string | null {
  if (!isRecord(v) || v.t !== 'want' || !isOffset(v.id, v.from)) return 'a relay child may only ask for a shared value (want)';
  return null;
}

/** Check what a relay child receives from its parent. */
export function checkRelayDown(v: unknown): string | null {
  if (!isRecord(v)) return 'message is not a record';
  if (v.t === 'share') return isPiece(v) ? null : 'malformed share piece';
  if (v.t === 'gone') return Number.isInteger(v.id) ? null : 'malformed gone';
  return `unexpected message ${JSON.stringify(v.t).slice(0, 40)} from a relay parent`;
}
