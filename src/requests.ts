// What one shell task asks for (CPUs, GPUs, a time limit, variables), and how it travels with its
// command: in the command's envelope (shell.ts's task id), so that the coordinator reads the CPUs and
// GPUs of a chunk without decoding anything else, and the worker the rest.

/** One task's own request. Absent fields take the run's defaults (--cpus-per-task, --gpus-per-task, --timeout). */
export interface TaskRequest {
  cpus?: number;
  gpus?: number;
  /** Per-task limit in ms (0: none). */
  timeoutMs?: number;
  /** Variables for this task only, over everything else. */
  env?: Record<string, string>;
}

/** What a chunk holds while it runs: the largest CPU and GPU request of its items (they run one after another). */
export interface ChunkNeed {
  cpus: number;
  gpus: number;
}

/** Opens and closes a command's task id (shell.ts's taskCommand): NUL cannot occur in a command line. */
export const TASK_ENVELOPE = '\u0000';

/** Marks the request inside an envelope (control characters cannot occur in JSON text unescaped). */
export const REQUEST_MARK = '\u0001';

/** `MARK json MARK command`: the part of an envelope after the task id. */
export function withRequest(command: string, request: TaskRequest | null | undefined): string {
  if (!request || Object.keys(request).length === 0) return command;
  return `${REQUEST_MARK}${JSON.stringify(request)}${REQUEST_MARK}${command}`;
}

/** Undo withRequest: the command and its request (null when it carries none). A malformed request is thrown. */
export function splitRequest(s: string): { command: string; request: TaskRequest | null } {
  if (!s.startsWith(REQUEST_MARK)) return { command: s, request: null };
  const end = s.indexOf(REQUEST_MARK, 1);
  if (end < 0) throw new Error('malformed task request: no end mark');
  return { command: s.slice(end + 1), request: checkRequest(JSON.parse(s.slice(1, end)) as unknown, 'task request') };
}

function isInt(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** Check a request's fields (from the wire, or an API item); throws naming the field. */
export function checkRequest(v: unknown, where: string): TaskRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} must be an object`);
  const o = v as Record<string, unknown>;
  const out: TaskRequest = {};
  for (const [k, x] of Object.entries(o)) {
    if (k === 'cpus') {
      if (!isInt(x, 1)) throw new Error(`${where}: cpus must be a positive integer, got ${JSON.stringify(x)}`);
      out.cpus = x;
    } else if (k === 'gpus') {
      if (!isInt(x, 0)) throw new Error(`${where}: gpus must be a whole number ≥ 0, got ${JSON.stringify(x)}`);
      out.gpus = x;
    } else if (k === 'timeoutMs') {
      if (!isInt(x, 0)) throw new Error(`${where}: timeoutMs must be a whole number ≥ 0, got ${JSON.stringify(x)}`);
      out.timeoutMs = x;
    } else if (k === 'env') {
      if (typeof x !== 'object' || x === null || Array.isArray(x) || Object.values(x).some((s) => typeof s !== 'string' || s.includes('\0'))) {
        throw new Error(`${where}: env must be an object of string values, got ${JSON.stringify(x)}`);
      }
      out.env = x as Record<string, string>;
    } else {
      throw new Error(`${where}: ${JSON.stringify(k)} is not a request field (cpus, gpus, timeoutMs, env)`);
    }
  }
  return out;
}

/** A runCommands item of the object form: `{ cmd, cpus?, gpus?, timeout? (ms), env? }`. */
export interface CommandItem {
  cmd: string;
  cpus?: number;
  gpus?: number;
  timeout?: number;
  env?: Record<string, string>;
}

/** Whether an item is of the object form (its fields are checked by requestOfItem). */
export function isCommandItem(v: unknown): v is CommandItem {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { cmd?: unknown }).cmd === 'string';
}

/** The command and request of an object item; throws naming the bad field. */
export function requestOfItem(item: CommandItem): { command: string; request: TaskRequest } {
  const { cmd, timeout, ...rest } = item;
  return { command: cmd, request: checkRequest({ ...rest, ...(timeout !== undefined ? { timeoutMs: timeout } : {}) }, 'command item') };
}

/**
 * The CPUs and GPUs a chunk of shell items holds while it runs (the largest of its items', each
 * defaulting to `defaults`), or undefined when no item carries a request. Reads only the envelopes'
 * request marks: cheap for the many chunks that carry none.
 */
export function chunkNeed(items: ArrayLike<unknown>, defaults: ChunkNeed): ChunkNeed | undefined {
  const envelope = TASK_ENVELOPE;
  let any = false;
  const need: ChunkNeed = { cpus: 0, gpus: 0 };
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    let r: TaskRequest | null = null;
    try {
      if (typeof item === 'string' && item.startsWith(envelope)) {
        const end = item.indexOf(envelope, 1);
        if (end > 0 && item[end + 1] === REQUEST_MARK) r = splitRequest(item.slice(end + 1)).request;
      } else if (typeof item === 'string' && item.startsWith(REQUEST_MARK)) {
        r = splitRequest(item).request;
      } else if (isCommandItem(item)) {
        r = requestOfItem(item).request;
      }
    } catch {
      r = null; // the worker fails that item, saying why
    }
    if (r) any = true;
    r ??= {};
    need.cpus = Math.max(need.cpus, r.cpus ?? defaults.cpus);
    need.gpus = Math.max(need.gpus, r.gpus ?? defaults.gpus);
  }
  return any ? need : undefined;
}
