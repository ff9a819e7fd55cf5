// Reading a results file (JSON Lines) as a stream: constant memory per line, bad lines named, a torn last line tolerated.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';
import { parseLine, type ParsedLine } from './records.js';

/** A line of a results file that is metadata or a task record, with its 1-based line number. */
export type ResultLine = Exclude<ParsedLine, { kind: 'bad' }> & { line: number };

export interface ReadOptions {
  /** Called for each line that is skipped, with `file:line: why`. */
  onWarning?: (text: string) => void;
}

/**
 * The metadata and records of a results file, in file order. A line that is not JSON or not a record
 * is skipped with a warning naming `file:line`; a bad last line is a write cut short by a killed run
 * (or one still being written) and is reported as torn.
 */
export async function* readResults(path: string, options?: ReadOptions): AsyncGenerator<ResultLine> {
  const warn = options?.onWarning ?? (() => undefined);
  const name = basename(path);
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let lineNo = 0;
  // A bad line is only named once we know whether another line follows it.
  let pending: { line: number; why: string; bytes: number; json: boolean } | null = null;
  for await (const text of rl) {
    lineNo++;
    if (pending) {
      warn(`${name}:${pending.line}: ${pending.why}; skipped`);
      pending = null;
    }
    const p = parseLine(text);
    if (p === null) continue;
    if (p.kind === 'bad') pending = { line: lineNo, why: p.why, bytes: Buffer.byteLength(text), json: !p.why.startsWith('not JSON') };
    else yield { ...p, line: lineNo };
  }
  if (pending) warn(pending.json ? `${name}:${pending.line}: ${pending.why}; skipped` : `${name}:${pending.line}: torn last line (${pending.bytes} bytes, cut short by a killed or unfinished write); ignored`);
}
