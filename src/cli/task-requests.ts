// Requests per line of a task file: `#SLURMPOOL -c 4 --gpus 1 --timeout 10m -- cmd …`, or a JSON
// Lines task `{"cmd": …, "cpus": 4, "gpus": 1, "timeout": "10m", "env": {…}}`. Every other line is a
// plain command, and `#` lines without the marker stay comments.
//
// How a line is told apart (docs/gpus.md): after leading whitespace,
//   `#SLURMPOOL` followed by whitespace (or nothing) → a request line; its options end at ` -- `;
//   `{"`                                           → a JSON task (one object on the line);
//   anything else                                  → the command as written.
// `{"` cannot begin a shell command that means anything: a brace group needs a blank after `{`.
import type { TaskRequest } from '../requests.js';
import { parseDuration } from './durations.js';
import { CliError } from './errors.js';

const MARKER = '#SLURMPOOL';

/** Whether a line (already trimmed at the start) is a `#SLURMPOOL` request line rather than a comment. */
export function isRequestLine(t: string): boolean {
  if (!t.startsWith(MARKER)) return false;
  const c = t.charCodeAt(MARKER.length);
  return Number.isNaN(c) || c === 0x20 || c === 0x09;
}

/** Whether a line (trimmed at the start) is a JSON Lines task. */
export function isJsonTask(t: string): boolean {
  return t.startsWith('{"');
}

/** Whether a line (trimmed at the start) carries a request of either form. */
export function carriesRequest(t: string): boolean {
  return isJsonTask(t) || isRequestLine(t);
}

/** A line's command and its own request (null for a plain command). */
export interface ParsedLine {
  command: string;
  request: TaskRequest | null;
}

const OPTIONS = '-c/--cpus N, --gpus N, --timeout D, --env NAME=VALUE';

function count(v: string | undefined, opt: string, where: string, min: number): number {
  if (v === undefined) throw new CliError(`${where}: ${opt} needs a value`);
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`${where}: ${opt} must be ${min === 0 ? 'a whole number ≥ 0' : 'a positive whole number'}, got ${JSON.stringify(v)}`);
  return n;
}

function envPair(v: string | undefined, where: string, into: Record<string, string>): void {
  const m = v === undefined ? null : /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(v);
  if (!m) throw new CliError(`${where}: --env takes NAME=VALUE, got ${JSON.stringify(v ?? '')}`);
  into[m[1]!] = m[2]!;
}

/** `#SLURMPOOL OPTIONS -- COMMAND`. */
function parseMarked(t: string, where: string): ParsedLine {
  const rest = t.slice(MARKER.length);
  const sep = /(?:^|[ \t])--(?:[ \t]+|$)/.exec(rest);
  if (!sep) throw new CliError(`${where}: a #SLURMPOOL line needs -- before its command (#SLURMPOOL ${OPTIONS} -- COMMAND)`);
  const command = rest.slice(sep.index + sep[0].length);
  if (command.trim() === '') throw new CliError(`${where}: no command after -- on the #SLURMPOOL line`);
  const words = rest.slice(0, sep.index).split(/[ \t]+/).filter(Boolean);
  const r: TaskRequest = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq > 0 ? w.slice(0, eq) : /^-[cG]\d+$/.test(w) ? w.slice(0, 2) : w;
    const inline = eq > 0 ? w.slice(eq + 1) : name !== w ? w.slice(2) : undefined;
    const value = () => inline ?? words[++i];
    switch (name) {
      case '-c':
      case '--cpus':
      case '--cpus-per-task':
        r.cpus = count(value(), name, where, 1);
        break;
      case '-G':
      case '--gpus':
      case '--gpus-per-task':
        r.gpus = count(value(), name, where, 0);
        break;
      case '--timeout':
        r.timeoutMs = parseDuration(value() ?? '', `${where}: --timeout`);
        break;
      case '--env':
        envPair(value(), where, (r.env ??= {}));
        break;
      default:
        throw new CliError(`${where}: ${JSON.stringify(w)} is not a #SLURMPOOL option (${OPTIONS}, then -- and the command)`);
    }
  }
  return { command, request: r };
}

const JSON_KEYS = ['cmd', 'cpus', 'gpus', 'timeout', 'env'];

/** `{"cmd": …, "cpus": N, "gpus": N, "timeout": "10m" or seconds, "env": {…}}`. */
function parseJson(t: string, where: string): ParsedLine {
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    throw new CliError(`${where} starts like a JSON task ({") but is not JSON: ${(e as Error).message} (a shell brace group needs a blank after {)`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`${where}: a JSON task must be an object with "cmd"`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!JSON_KEYS.includes(k)) throw new CliError(`${where}: ${JSON.stringify(k)} is not a field of a JSON task (${JSON_KEYS.join(', ')})`);
  if (typeof o.cmd !== 'string' || o.cmd.trim() === '') throw new CliError(`${where}: a JSON task needs "cmd", a non-empty string, got ${JSON.stringify(o.cmd)}`);
  if (o.cmd.includes('\0')) throw new CliError(`${where}: "cmd" contains a NUL character; a command cannot`);
  const r: TaskRequest = {};
  const int = (k: 'cpus' | 'gpus', min: number) => {
    const x = o[k];
    if (x === undefined) return;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) throw new CliError(`${where}: "${k}" must be ${min === 0 ? 'a whole number ≥ 0' : 'a positive whole number'}, got ${JSON.stringify(x)}`);
    r[k] = x;
  };
  int('cpus', 1);
  int('gpus', 0);
  if (o.timeout !== undefined) {
    if (typeof o.timeout === 'number' && o.timeout >= 0 && Number.isFinite(o.timeout)) r.timeoutMs = Math.round(o.timeout * 1000);
    else if (typeof o.timeout === 'string') r.timeoutMs = parseDuration(o.timeout, `${where}: "timeout"`);
    else throw new CliError(`${where}: "timeout" must be a duration ("10m", "90s") or seconds, got ${JSON.stringify(o.timeout)}`);
  }
  if (o.env !== undefined) {
    const e = o.env;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new CliError(`${where}: "env" must be an object of strings, got ${JSON.stringify(e)}`);
    for (const [k, x] of Object.entries(e)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new CliError(`${where}: "env" key ${JSON.stringify(k)} is not a variable name`);
      if (typeof x !== 'string') throw new CliError(`${where}: "env"."${k}" must be a string, got ${JSON.stringify(x)}`);
      if (x.includes('\0')) throw new CliError(`${where}: "env"."${k}" contains a NUL character; a variable cannot`);
    }
    r.env = e as Record<string, string>;
  }
  return { command: o.cmd, request: r };
}

/** A task file line (as the file has it) → its command and request. `where` names the line in errors. */
export function parseTaskLine(line: string, where: string): ParsedLine {
  const t = line.trimStart();
  if (isRequestLine(t)) return parseMarked(t, where);
  if (isJsonTask(t)) return parseJson(t.trimEnd(), where);
  return { command: line, request: null };
}

/** The run's requests as the pass over the task file found them: each distinct (CPUs, GPUs) and its first line. */
export class RequestScan {
  /** Lines that carry a request. */
  lines = 0;
  private readonly asks = new Map<string, { cpus: number | undefined; gpus: number | undefined; line: number }>();

  constructor(readonly name: string) {}

  /** Check one line (throws CliError naming it) and note what it asks for. */
  add(text: string, line: number): void {
    const t = text.trimStart();
    if (!carriesRequest(t)) return;
    const { request } = parseTaskLine(text, `${this.name} line ${line}`);
    this.lines++;
    const key = `${request?.cpus ?? ''},${request?.gpus ?? ''}`;
    // Distinct requests are few in practice; past 10,000 the first of each is still kept for the larger ones.
    if (!this.asks.has(key) && this.asks.size < 10_000) this.asks.set(key, { cpus: request?.cpus, gpus: request?.gpus, line });
  }

  /**
   * The first line whose request fits no node (with the run's defaults for what it leaves out), in
   * words, or null. `nodes`: each node's CPUs and GPUs.
   */
  misfit(nodes: { node: string; cpus: number; gpus: number }[], defaults: { cpus: number; gpus: number }): string | null {
    let worst: { line: number; text: string } | null = null;
    for (const a of this.asks.values()) {
      const cpus = a.cpus ?? defaults.cpus;
      const gpus = a.gpus ?? defaults.gpus;
      if (nodes.some((n) => n.cpus >= cpus && n.gpus >= gpus)) continue;
      if (worst && worst.line < a.line) continue;
      const sizes = nodes.map((n) => `${n.node}: ${n.cpus} CPU${n.cpus === 1 ? '' : 's'}, ${n.gpus} GPU${n.gpus === 1 ? '' : 's'}`);
      const shown = sizes.length > 4 ? `${sizes.slice(0, 4).join('; ')}; …` : sizes.join('; ');
      worst = { line: a.line, text: `${this.name} line ${a.line} asks for ${cpus} CPU${cpus === 1 ? '' : 's'} and ${gpus} GPU${gpus === 1 ? '' : 's'}, more than any node has (${shown})` };
    }
    return worst?.text ?? null;
  }
}
