// The results file read back as a journal: which tasks finished, for --resume. Each task ends with exactly one record.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { headerOf } from './header.js';

/** One saved record. */
export interface SavedRecord {
  index: number;
  ok: boolean;
  /** 1-based line of the results file. */
  line: number;
  /** The line as written. */
  text: string;
  record: Record<string, unknown>;
}

/** What a results file holds. */
export interface Journal {
  path: string;
  /** The record kept for each task: the successful one when there are several. */
  records: Map<number, SavedRecord>;
  /** Lines that are not records, by 1-based line number. */
  bad: { line: number; why: string }[];
  /** The last line, cut short by a killed write: its task runs again. */
  torn: { line: number; bytes: number } | null;
  /** Records of a task already recorded. */
  duplicates: number;
  /** Byte length of the file up to the end of its last complete line. */
  completeBytes: number;
  /** Run headers (`{"slurmpool":{…}}` lines), in file order: one per run that wrote to the file. */
  headers: SavedHeader[];
}

/** One run header line. */
export interface SavedHeader {
  line: number;
  text: string;
  header: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> & { index: number; ok: boolean } {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.index === 'number' && Number.isInteger(o.index) && o.index >= 0 && typeof o.ok === 'boolean';
}

/** Read a results file; null if there is none. */
export function readJournal(path: string): Journal | null {
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  const records = new Map<number, SavedRecord>();
  const bad: Journal['bad'] = [];
  let torn: Journal['torn'] = null;
  let duplicates = 0;
  let start = 0;
  let lineNo = 0;
  let completeBytes = 0;
  const headers: SavedHeader[] = [];
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    lineNo++;
    if (nl < 0) {
      torn = { line: lineNo, bytes: buf.length - start };
      break;
    }
    const text = buf.toString('utf8', start, nl);
    start = nl + 1;
    completeBytes = start;
    if (text.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      bad.push({ line: lineNo, why: `not JSON (${(e as Error).message})` });
      continue;
    }
    const header = headerOf(v);
    if (header) {
      headers.push({ line: lineNo, text, header });
      continue;
    }
    if (!isRecord(v)) {
      bad.push({ line: lineNo, why: 'not a task record (no integer "index" and boolean "ok")' });
      continue;
    }
    const prev = records.get(v.index);
    if (prev) {
      duplicates++;
      if (prev.ok || !v.ok) continue;
    }
    records.set(v.index, { index: v.index, ok: v.ok, line: lineNo, text, record: v });
  }
  return { path, records, bad, torn, duplicates, completeBytes, headers };
}

/** Checks of a results file's run headers against the run about to resume: each returns why not, or null. */
export interface HeaderChecks {
  /** Same subcommand (run or map)? Checked before the records. */
  kind(h: SavedHeader, name: string): string | null;
  /** Same work (task file; module, export, input)? Checked after the records, whose mismatches name a line. */
  work(h: SavedHeader, name: string): string | null;
}

/** What --resume found and did to a results file. */
export interface ResumeState {
  /** Tasks that finished successfully: not run again. */
  done: Set<number>;
  /** Tasks whose failure records were removed: they run again. */
  failedBefore: number[];
  /** What was dropped or repaired, in words, for the user. */
  notes: string[];
}

/**
 * Make a results file ready to be appended to by a resumed run: drop failure records (those tasks run
 * again), duplicates, lines that are not records and a torn last line, so that the file ends with
 * exactly one record per task. `check` vets each kept record against the current input and returns
 * why it does not match (the run then stops before changing anything).
 */
export function prepareResume(path: string, check?: (r: SavedRecord) => string | null, checkHeader?: HeaderChecks): ResumeState {
  const j = readJournal(path);
  const state: ResumeState = { done: new Set(), failedBefore: [], notes: [] };
  if (!j) return state;
  const name = basename(path);
  // A file of another kind of run first: its records would be judged by the wrong rules.
  for (const h of j.headers) {
    const why = checkHeader?.kind(h, name);
    if (why) throw new JournalMismatch(why);
  }
  if (check) {
    // Failed tasks run again from the current input, so only kept (successful) records must still match it.
    // In task order: the input is read forward (a task file is streamed, not held in memory).
    const kept = [...j.records.values()].filter((r) => r.ok).sort((a, b) => a.index - b.index);
    for (const r of kept) {
      const why = check(r);
      if (why) throw new JournalMismatch(`${name} line ${r.line}: ${why}`);
    }
  }
  // Every run that wrote to the file must have done the same work as this one.
  for (const h of j.headers) {
    const why = checkHeader?.work(h, name);
    if (why) throw new JournalMismatch(why);
  }
  for (const b of j.bad) state.notes.push(`${name} line ${b.line} is ${b.why}; it is dropped`);
  if (j.torn) state.notes.push(`${name} line ${j.torn.line} is incomplete (torn write, ${j.torn.bytes} bytes); that task will run again`);
  if (j.duplicates) state.notes.push(`${name} recorded ${j.duplicates} task(s) more than once; one record each is kept`);
  const keep: SavedRecord[] = [];
  for (const r of j.records.values()) {
    if (r.ok) {
      state.done.add(r.index);
      keep.push(r);
    } else state.failedBefore.push(r.index);
  }
  state.failedBefore.sort((a, b) => a - b);
  const needsRewrite = j.bad.length > 0 || j.duplicates > 0 || state.failedBefore.length > 0;
  if (needsRewrite) {
    const lines = [...j.headers, ...keep].sort((a, b) => a.line - b.line);
    rewrite(path, lines.map((r) => r.text));
  } else if (j.torn) {
    truncateSync(path, j.completeBytes);
  }
  return state;
}

/** The resume rewrite of a results file failed (disk full, quota…); the file is unchanged. */
export class ResumeWriteError extends Error {
  override name = 'ResumeWriteError';
}

/** A saved record does not match the current input. */
export class JournalMismatch extends Error {
  override name = 'JournalMismatch';
}

/** Replace a file's content atomically: write a sibling, sync it, rename it over, sync the folder. */
function rewrite(path: string, lines: string[]): void {
  const mode = statSync(path).mode & 0o777;
  const tmp = join(dirname(path), `.${basename(path)}.resume-${process.pid}`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      const body = lines.length ? `${lines.join('\n')}\n` : '';
      const buf = Buffer.from(body);
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    // Never leave the half-written copy behind (on a full disk it holds the space the user needs back).
    try {
      unlinkSync(tmp);
    } catch {
      // not created, or already renamed
    }
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'the disk is full (ENOSPC)' : code === 'EDQUOT' ? 'the disk quota is exceeded (EDQUOT)' : (e as Error).message;
    throw new ResumeWriteError(`cannot rewrite ${path} for --resume: ${why} while writing its new copy ${tmp} (removed again); ${path} is unchanged`);
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // some file systems cannot sync a folder
  }
}
