// Task records as JSON lines: what a run writes for each task, whatever its outcome.
import type { CommandResult } from '../agent/shell.js';
import type { ErrorRecord } from '../errors.js';
import type { TaskRecord } from '../ordering.js';

/** A record for a task of `slurmpool map`: its value or its error, and where and when it ran. */
export function mapRecord(index: number, r: TaskRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { index, ok: r.ok };
  if (r.ok) out.value = r.value === undefined ? null : r.value;
  else out.error = errorOf(r.error);
  out.node = r.node;
  out.worker = r.worker;
  out.started = r.started;
  out.ended = r.ended;
  out.attempts = r.attempts;
  if (r.redispatched) out.redispatched = true;
  return out;
}

/**
 * A record for a command of `slurmpool run`: exit code, signal, output, where and when it ran.
 * `command` names a task that never ran (stopped or cancelled), whose record has no result to take it from.
 */
export function commandRecord(index: number, line: number | undefined, r: TaskRecord, command?: string): Record<string, unknown> {
  const v = (r.value ?? null) as CommandResult | null;
  const out: Record<string, unknown> = { index };
  if (line !== undefined) out.line = line;
  out.ok = r.ok;
  if (v && typeof v === 'object') {
    out.command = v.command;
    out.exitCode = v.exitCode;
    out.signal = v.signal;
    out.timedOut = v.timedOut;
    out.stdout = v.stdout;
    out.stderr = v.stderr;
    if (v.stdoutFile) out.stdoutFile = v.stdoutFile;
    if (v.stderrFile) out.stderrFile = v.stderrFile;
  } else if (command !== undefined) out.command = command;
  if (!r.ok) out.error = errorOf(r.error);
  out.node = r.node;
  out.worker = r.worker;
  if (v && typeof v === 'object' && typeof v.startedAt === 'number') {
    out.started = v.startedAt;
    out.ended = v.startedAt + v.durationMs;
    out.durationMs = v.durationMs;
  } else {
    out.started = r.started;
    out.ended = r.ended;
  }
  if (v?.cpus) out.cpus = v.cpus;
  if (v?.gpus !== undefined) out.gpus = v.gpus;
  out.attempts = r.attempts;
  if (r.redispatched) out.redispatched = true;
  return out;
}

function errorOf(e: ErrorRecord | undefined): Record<string, unknown> {
  if (!e) return { name: 'Error', message: 'unknown failure' };
  const o: Record<string, unknown> = { name: e.name, message: e.message };
  if (e.kind) o.kind = e.kind;
  if (e.code) o.code = e.code;
  if (e.stack) o.stack = e.stack;
  return o;
}

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof Set) return [...v];
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  return v;
}

/** One line of JSON; a value JSON cannot hold (a cycle) turns the record into a failure that says so (ok: false). */
export function toJsonLine(rec: Record<string, unknown>): { line: string; ok: boolean } {
  try {
    return { line: JSON.stringify(rec, replacer), ok: rec.ok === true };
  } catch (e) {
    const { value: _value, ...rest } = rec;
    const error = { name: 'ResultNotSerializable', message: `the task's value cannot be written as JSON: ${(e as Error).message}` };
    return { line: JSON.stringify({ ...rest, ok: false, error }, replacer), ok: false };
  }
}
