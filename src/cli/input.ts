// Task inputs, read and checked before any work starts: task files, JSON Lines items, ranges.
import { readFileSync, statSync } from 'node:fs';
import { sha256 } from '../results/header.js';
import { CliError } from './errors.js';
import { memoryTaskSource, openTaskFile, type TaskSource } from './taskfile.js';
import { isRequestLine } from './task-requests.js';

/** The commands of a task file and the 1-based line each came from. */
export interface TaskFile {
  name: string;
  commands: string[];
  lines: number[];
  /** sha256 of the whole text (the run header's identity of the work). */
  sha256: string;
}

/** All of standard input as text. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function readText(path: string, what: string): string {
  checkFile(path, what);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${what} ${path} cannot be read: ${(e as Error).message}`);
  }
}

/** Split task-file text: one command a line; blank lines and lines starting with # are skipped. */
export function parseTaskFile(text: string, name: string): TaskFile {
  const commands: string[] = [];
  const lines: number[] = [];
  const all = text.split('\n');
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  all.forEach((l, i) => {
    const line = l.endsWith('\r') ? l.slice(0, -1) : l;
    const t = line.trim();
    if (t === '' || (t.startsWith('#') && !isRequestLine(t))) return;
    if (line.includes('\0')) throw new CliError(`${name} line ${i + 1} contains a NUL byte; a command line cannot`);
    commands.push(line);
    lines.push(i + 1);
  });
  if (commands.length === 0) {
    throw new CliError(
      all.length === 0 ? `${name} is empty: it has no commands to run` : `${name} has no commands: its ${all.length} line${all.length === 1 ? ' is' : 's are'} blank or # comments`,
    );
  }
  return { name, commands, lines, sha256: sha256(text) };
}

/**
 * A task file, or standard input for "-". A file is streamed (checked, counted and hashed in one pass;
 * commands read back as they are needed); standard input, which cannot be read twice, is held in memory.
 */
export async function readTaskFile(path: string, inspect?: (line: string, lineNo: number) => void): Promise<TaskSource> {
  if (path === '-') {
    const tf = parseTaskFile(await readStdin(), 'standard input');
    if (inspect) tf.commands.forEach((c, i) => inspect(c, tf.lines[i]!));
    return memoryTaskSource(tf);
  }
  checkFile(path, 'task file');
  return openTaskFile(path, inspect);
}

/** Refuse a path that does not exist or is a folder, naming it. */
function checkFile(path: string, what: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `${what} ${path} does not exist` : `${what} ${path} cannot be read: ${(e as Error).message}`);
  }
  if (st.isDirectory()) throw new CliError(`${what} ${path} is a directory, not a file`);
}

/** Items of a JSON Lines input and the 1-based line each came from. */
export interface Items {
  name: string;
  items: unknown[];
  lines: number[];
  /** sha256 of the whole text. */
  sha256: string;
}

/** Parse JSON Lines: one JSON value a line, blank lines skipped; a bad line is named by its number. */
export function parseJsonLines(text: string, name: string): Items {
  const items: unknown[] = [];
  const lines: number[] = [];
  const all = text.split('\n');
  for (let i = 0; i < all.length; i++) {
    const l = all[i]!.trim();
    if (l === '') continue;
    try {
      items.push(JSON.parse(l));
      lines.push(i + 1);
    } catch (e) {
      const shown = l.length > 60 ? `${l.slice(0, 60)}…` : l;
      throw new CliError(`${name} line ${i + 1} is not JSON: ${(e as Error).message} (the line: ${shown})`);
    }
  }
  if (items.length === 0) throw new CliError(`${name} has no items: ${all.length <= 1 && all[0] === '' ? 'it is empty' : 'every line is blank'}`);
  return { name, items, lines, sha256: sha256(text) };
}

/** Read --input FILE (JSON Lines), or standard input for "-". */
export async function readItems(path: string): Promise<Items> {
  if (path === '-') return parseJsonLines(await readStdin(), 'standard input');
  return parseJsonLines(readText(path, 'input file'), path);
}

/** A numeric range START:END[:STEP], END excluded (Python's range). */
export interface Range {
  start: number;
  end: number;
  step: number;
  length: number;
}

/** Parse --range START:END[:STEP]. */
export function parseRange(v: string): Range {
  const m = /^\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$/.exec(v);
  if (!m) throw new CliError(`--range must look like START:END or START:END:STEP (integers, END excluded), got ${JSON.stringify(v)}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  const step = m[3] === undefined ? 1 : Number(m[3]);
  if (![start, end, step].every(Number.isSafeInteger)) throw new CliError(`--range ${JSON.stringify(v)} has numbers too large`);
  if (step === 0) throw new CliError(`--range step cannot be 0, got ${JSON.stringify(v)}`);
  const length = Math.max(0, Math.ceil((end - start) / step));
  if (length === 0) throw new CliError(`--range ${JSON.stringify(v)} is empty (END is excluded)`);
  return { start, end, step, length };
}
