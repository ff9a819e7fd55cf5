// Reading a results file (JSON Lines) as a stream: constant memory per line, bad lines named, a torn last line tolerated.
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { parseLine, type ParsedLine } from './records.js';

/** A line of a results file that is metadata or a task record, with its 1-based line number. */
export type ResultLine = Exclude<ParsedLine, { kind: 'bad' }> & { line: number };

export interface ReadOptions {
  /** Called for each line that is skipped, with `file:line: why`. */
  onWarning?: (text: string) => void;
}

/** Split `rest + chunk` at newlines (CRLF too), call `emit` for each whole line, and return what is left. */
function split(rest: string, chunk: string, emit: (line: string) => void): string {
  const s = rest + chunk;
  let a = 0;
  let b: number;
  while ((b = s.indexOf('\n', a)) >= 0) {
    emit(s.charCodeAt(b - 1) === 13 && b > a ? s.slice(a, b - 1) : s.slice(a, b));
    a = b + 1;
  }
  return s.slice(a);
}

const chunks = (path: string) => createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }) as AsyncIterable<string>;

/** Classifies a file's lines in order; names a bad line once it knows whether it was the last (torn) one. */
class Lines {
  private lineNo = 0;
  private pending: { line: number; why: string; bytes: number; json: boolean } | null = null;
  constructor(
    private readonly name: string,
    private readonly warn: (text: string) => void,
  ) {}

  next(text: string): ResultLine | null {
    this.lineNo++;
    const pending = this.pending;
    if (pending) {
      this.warn(`${this.name}:${pending.line}: ${pending.why}; skipped`);
      this.pending = null;
    }
    const p = parseLine(text);
    if (p === null) return null;
    if (p.kind === 'bad') {
      this.pending = { line: this.lineNo, why: p.why, bytes: Buffer.byteLength(text), json: !p.why.startsWith('not JSON') };
      return null;
    }
    // parseLine's result is ours: number it in place rather than copy it.
    return Object.assign(p, { line: this.lineNo });
  }

  end(): number {
    const p = this.pending;
    if (p) this.warn(p.json ? `${this.name}:${p.line}: ${p.why}; skipped` : `${this.name}:${p.line}: torn last line (${p.bytes} bytes, cut short by a killed or unfinished write); ignored`);
    return this.lineNo;
  }
}

/**
 * Call `onLine` with the metadata and records of a results file, in file order; resolves to the number
 * of lines. A line that is not JSON or not a record is skipped with a warning naming `file:line`; a last
 * line that is not JSON is a write cut short by a killed run (or one still being written): "torn".
 */
export async function scanResults(path: string, onLine: (l: ResultLine) => void, options?: ReadOptions): Promise<number> {
  const lines = new Lines(basename(path), options?.onWarning ?? (() => undefined));
  const take = (text: string) => {
    const l = lines.next(text);
    if (l) onLine(l);
  };
  let rest = '';
  // Lines are handled synchronously a chunk at a time: per-line async iteration costs more than parsing.
  for await (const chunk of chunks(path)) rest = split(rest, chunk, take);
  if (rest !== '') take(rest);
  return lines.end();
}

/** The same as an async iterator: simpler to consume, slower per line. */
export async function* readResults(path: string, options?: ReadOptions): AsyncGenerator<ResultLine> {
  const lines = new Lines(basename(path), options?.onWarning ?? (() => undefined));
  let rest = '';
  for await (const chunk of chunks(path)) {
    const batch: string[] = [];
    rest = split(rest, chunk, (l) => batch.push(l));
    for (const text of batch) {
      const l = lines.next(text);
      if (l) yield l;
    }
  }
  if (rest !== '') {
    const l = lines.next(rest);
    if (l) yield l;
  }
  lines.end();
}
