// A task file read as a stream: one pass to check it, count its commands and hash it, then each
// command read back from the file when the feed asks for it, so that a file of millions of lines
// never sits in the coordinator's memory (a sparse index of byte offsets does).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { CliError } from './errors.js';
import { carriesRequest, isRequestLine } from './task-requests.js';

/** A command of a task file and the 1-based line it is on. */
export interface TaskLine {
  command: string;
  line: number;
}

/** The commands of a task file, by index. */
export interface TaskSource {
  /** "task file PATH" or "standard input", for messages. */
  name: string;
  count: number;
  /** sha256 of the whole content. */
  sha256: string;
  /** Command `i` (0-based) and its line. Cheapest in increasing order; any order works. */
  at(i: number): TaskLine;
  close(): void;
}

/** Commands between two entries of the offset index. */
const STRIDE = 1024;
/** Read size of the back reader. */
const READ_BYTES = 64 * 1024;

/** A line that holds a command: not blank (after trimming whitespace) and not a # comment (#SLURMPOOL lines are commands). */
function isCommand(line: string): boolean {
  const t = line.trim();
  return t !== '' && (!t.startsWith('#') || isRequestLine(t));
}

/** Whitespace bytes that String#trim removes (ASCII); a non-ASCII first byte is decided on the decoded text. */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** Whether bytes [a, b) of `buf` are a command line; `b` excludes the newline. */
function commandBytes(buf: Buffer, a: number, b: number): boolean {
  let i = a;
  while (i < b && isSpace(buf[i]!)) i++;
  if (i === b) return false;
  const c = buf[i]!;
  if (c === 0x23) return b - i >= 10 && isRequestLine(buf.toString('latin1', i, Math.min(b, i + 11))); // '#': a comment unless #SLURMPOOL
  if (c < 0x80) return true;
  return isCommand(buf.toString('utf8', a, b));
}

/**
 * Read a task file: check every line (a NUL byte is refused, naming the line), count the commands,
 * hash it and index every STRIDE-th command's byte offset. Throws CliError like parseTaskFile.
 */
export async function openTaskFile(path: string, inspect?: (line: string, lineNo: number) => void): Promise<TaskSource> {
  const name = `task file ${path}`;
  const hash = createHash('sha256');
  const offsets: number[] = [];
  const lines: number[] = [];
  let count = 0;
  let lineNo = 0;
  let pos = 0; // file offset of carry[0]
  let carry: Buffer = Buffer.alloc(0);
  // The next NUL byte at or after the current line in the current buffer (-1: none): searched once per
  // buffer and after each NUL found, not once per line.
  let nul = -1;
  const take = (buf: Buffer, a: number, b: number, at: number) => {
    lineNo++;
    // b excludes '\n'; a trailing '\r' is part of the line end.
    const end = b > a && buf[b - 1] === 0x0d ? b - 1 : b;
    if (nul >= 0 && nul < a) nul = buf.indexOf(0, a);
    if (!commandBytes(buf, a, end)) return;
    if (nul >= a && nul < end) throw new CliError(`${name} line ${lineNo} contains a NUL byte; a command line cannot`);
    // Lines that may carry their own request (#SLURMPOOL, {"), checked in this pass: task-requests.ts.
    if (inspect) {
      let i = a;
      while (i < end && isSpace(buf[i]!)) i++;
      if (buf[i] === 0x23 || buf[i] === 0x7b) {
        const text = buf.toString('utf8', a, end);
        if (carriesRequest(text.trimStart())) inspect(text, lineNo);
      }
    }
    if (count % STRIDE === 0) {
      offsets.push(at);
      lines.push(lineNo);
    }
    count++;
  };
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      const c = chunk as Buffer;
      hash.update(c);
      const buf = carry.length ? Buffer.concat([carry, c]) : c;
      nul = buf.indexOf(0);
      let a = 0;
      let nl: number;
      while ((nl = buf.indexOf(0x0a, a)) >= 0) {
        take(buf, a, nl, pos + a);
        a = nl + 1;
      }
      pos += a;
      carry = Buffer.from(buf.subarray(a));
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${name} cannot be read: ${(e as Error).message}`);
  }
  if (carry.length) {
    nul = carry.indexOf(0);
    take(carry, 0, carry.length, pos);
  }
  if (count === 0) {
    throw new CliError(lineNo === 0 ? `${name} is empty: it has no commands to run` : `${name} has no commands: its ${lineNo} line${lineNo === 1 ? ' is' : 's are'} blank or # comments`);
  }
  return new StreamedTaskFile(path, name, count, hash.digest('hex'), Float64Array.from(offsets), Uint32Array.from(lines));
}

/** Commands read back from the file through a sparse offset index and a forward cursor. */
class StreamedTaskFile implements TaskSource {
  private fd: number;
  private readonly size: number;
  private buf = Buffer.allocUnsafe(READ_BYTES);
  /** File offset of buf[0], and how many bytes of buf are valid. */
  private bufAt = 0;
  private bufLen = 0;
  /** The next line starts at this file offset and is line `nextLine`; the next command has index `nextIndex`. */
  private cursor = 0;
  private nextLine = 1;
  private nextIndex = 0;
  private last: { i: number; v: TaskLine } | null = null;

  constructor(
    readonly path: string,
    readonly name: string,
    readonly count: number,
    readonly sha256: string,
    private readonly offsets: Float64Array,
    private readonly lines: Uint32Array,
  ) {
    this.fd = openSync(path, 'r');
    this.size = statSync(path).size;
  }

  at(i: number): TaskLine {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`${this.name} has ${this.count} commands; there is no command ${i}`);
    if (this.last?.i === i) return this.last.v;
    // Forward within the same stride: go on from the cursor; anything else: from the index entry.
    if (i < this.nextIndex || Math.floor(i / STRIDE) !== Math.floor(this.nextIndex / STRIDE)) {
      const k = Math.floor(i / STRIDE);
      this.cursor = this.offsets[k]!;
      this.nextLine = this.lines[k]!;
      this.nextIndex = k * STRIDE;
    }
    for (;;) {
      const raw = this.readLine();
      if (raw === null) throw new Error(`${this.name} changed while it was being read: command ${i} is gone`);
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const lineNo = this.nextLine++;
      if (!isCommand(line)) continue;
      const index = this.nextIndex++;
      if (index === i) {
        const v = { command: line, line: lineNo };
        this.last = { i, v };
        return v;
      }
    }
  }

  /** The line at `this.cursor` (without its newline), moving past it; null at the end of the file. */
  private readLine(): string | null {
    if (this.cursor >= this.size) return null;
    for (;;) {
      const start = this.cursor - this.bufAt;
      if (start >= 0 && start < this.bufLen) {
        const nl = this.buf.indexOf(0x0a, start);
        if (nl >= 0 && nl < this.bufLen) {
          const s = this.buf.toString('utf8', start, nl);
          this.cursor = this.bufAt + nl + 1;
          return s;
        }
        if (this.bufAt + this.bufLen >= this.size) {
          const s = this.buf.toString('utf8', start, this.bufLen);
          this.cursor = this.size;
          return s;
        }
        // The line goes past the buffer: refill from its start, growing the buffer if the line is longer.
        if (start === 0) this.buf = Buffer.concat([this.buf, Buffer.allocUnsafe(this.buf.length)]);
      }
      this.fill(this.cursor);
    }
  }

  private fill(from: number): void {
    this.bufAt = from;
    this.bufLen = 0;
    while (this.bufLen < this.buf.length) {
      const n = readSync(this.fd, this.buf, this.bufLen, this.buf.length - this.bufLen, from + this.bufLen);
      if (n <= 0) break;
      this.bufLen += n;
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/** A task source over commands already in memory (standard input). */
export function memoryTaskSource(tf: { name: string; commands: string[]; lines: number[]; sha256: string }): TaskSource {
  return {
    name: tf.name,
    count: tf.commands.length,
    sha256: tf.sha256,
    at: (i) => ({ command: tf.commands[i]!, line: tf.lines[i]! }),
    close: () => undefined,
  };
}
