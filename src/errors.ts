// Every error slurmpool throws, with stable codes. Messages are written here once.

/**
 * Every `code` a slurmpool error can have: EOPTION (OptionError), ETASK (TaskError), ECLOSED
 * (PoolClosedError), ELAUNCH (LaunchError), EPROTOCOL (ProtocolError), ESLURMPARSE (SlurmParseError),
 * ABORT_ERR (AbortError, the code of Node's own).
 */
export type ErrorCode = 'EOPTION' | 'ETASK' | 'ECLOSED' | 'ELAUNCH' | 'EPROTOCOL' | 'ESLURMPARSE' | 'ABORT_ERR';

/** Base class: every slurmpool error has a stable `code`. */
export class SlurmpoolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad option or argument, found before any work starts. */
export class OptionError extends SlurmpoolError {
  constructor(message: string) {
    super('EOPTION', message);
  }
}

/** How a task failed: it threw, its worker died, it ran past its timeout, or it was cancelled. */
export type TaskFailure = 'error' | 'died' | 'timeout' | 'cancelled' | 'lost';

/** An error record as it crosses threads and the network: plain data, never a live Error. */
export interface ErrorRecord {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  kind?: TaskFailure;
}

export interface TaskErrorDetails {
  index: number;
  node: string;
  worker: number;
  fn: string;
  kind: TaskFailure;
  attempts: number;
}

/**
 * A task failed. `index` is the item's position in the input, `node` and `worker` say where it
 * ran, and `cause` is the remote error re-created with its name, message and stack.
 */
export class TaskError extends SlurmpoolError {
  readonly index: number;
  readonly node: string;
  readonly worker: number;
  readonly fn: string;
  readonly kind: TaskFailure;
  readonly attempts: number;
  override readonly cause: Error;
  constructor(record: ErrorRecord, d: TaskErrorDetails) {
    const cause = errorFromRecord(record);
    const what =
      d.kind === 'died'
        ? `worker died running it`
        : d.kind === 'timeout'
          ? `timed out`
          : d.kind === 'cancelled'
            ? `cancelled`
            : d.kind === 'lost'
              ? `lost with its node`
              : `threw ${record.name}`;
    const where = d.worker >= 0 ? `on node ${d.node}, worker ${d.worker}` : `on node ${d.node}`;
    const tries = d.attempts > 1 ? ` after ${d.attempts} attempts` : '';
    super('ETASK', `task ${d.index} (${d.fn}) ${what} ${where}${tries}: ${record.message}`, { cause });
    this.cause = cause;
    this.index = d.index;
    this.node = d.node;
    this.worker = d.worker;
    this.fn = d.fn;
    this.kind = d.kind;
    this.attempts = d.attempts;
  }
}

/** The pool was closed or terminated while work was pending, or used after. */
export class PoolClosedError extends SlurmpoolError {
  constructor(message: string) {
    super('ECLOSED', message);
  }
}

/** Agents could not be started or all of them were lost. */
export class LaunchError extends SlurmpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ELAUNCH', message, options);
  }
}

/**
 * A call or Pool.open was aborted through its `signal`. Like Node's own AbortError: name
 * 'AbortError', code 'ABORT_ERR', and the signal's reason as `cause`.
 */
export class AbortError extends SlurmpoolError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super('ABORT_ERR', message, options);
  }
}

/** The AbortError for an aborted signal, with its reason as the cause. */
export function abortErrorOf(signal: AbortSignal): AbortError {
  return new AbortError('The operation was aborted', { cause: signal.reason });
}

/** A peer broke the protocol: bad frame, bad proof, wrong version. */
export class ProtocolError extends SlurmpoolError {
  constructor(message: string) {
    super('EPROTOCOL', message);
  }
}

const MAX_TEXT = 16 * 1024;

function clip(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}… [${s.length - MAX_TEXT} more characters]` : s;
}

/** Turn anything thrown into a plain, size-limited record. */
export function toErrorRecord(e: unknown, kind?: TaskFailure): ErrorRecord {
  if (e instanceof Error) {
    const rec: ErrorRecord = { name: String(e.name || 'Error'), message: clip(String(e.message)) };
    if (typeof e.stack === 'string') rec.stack = clip(e.stack);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') rec.code = String(code);
    if (kind) rec.kind = kind;
    return rec;
  }
  let message: string;
  try {
    message = typeof e === 'string' ? e : JSON.stringify(e) ?? String(e);
  } catch {
    message = String(e);
  }
  const rec: ErrorRecord = { name: 'NonError', message: clip(`non-Error value thrown: ${message}`) };
  if (kind) rec.kind = kind;
  return rec;
}

/** Re-create an Error from a record, keeping name, message, stack and code. */
export function errorFromRecord(rec: ErrorRecord): Error {
  const err = new Error(rec.message);
  Object.defineProperty(err, 'name', { value: rec.name, enumerable: false, configurable: true, writable: true });
  err.stack = rec.stack ?? `${rec.name}: ${rec.message}`;
  if (rec.code !== undefined) (err as Error & { code?: string }).code = rec.code;
  return err;
}
