// The results file: one JSON line per task, appended as tasks finish, synced to disk every second and at the end.
import { accessSync, closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Where records go: a results file, or standard output. */
export interface RecordOut {
  /** Queue one complete line (no newline); written with its neighbours in one write soon after. */
  write(line: string): void;
  /** Write what is queued now. */
  flush(): void;
  /** Write, sync to disk and close. */
  close(): Promise<void>;
}

/** Lines queued before a write even if no pause comes. */
const MAX_QUEUED_BYTES = 256 * 1024;
/** Sync the file to disk at least this often while records arrive. */
export const SYNC_EVERY_MS = 1000;

/** Why a results file cannot be written, in words, or null if it can. */
export function unwritable(path: string): string | null {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return `${path} is a directory`;
    accessSync(path, constants.W_OK);
    return null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return `${path} is not writable (${(e as Error).message})`;
  }
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `its folder ${dir} does not exist` : `its folder ${dir} is not writable (${(e as Error).message})`;
  }
}

/**
 * Appends records to a results file. Each batch of whole lines goes out in one write, so a job
 * killed at any moment leaves at most one torn line at the end, which the journal reader names and drops.
 */
export class ResultsFile implements RecordOut {
  private readonly fd: number;
  private queued: string[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private dirty = false;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** Bytes of whole records in the file. */
  private size: number;
  /** The write error that stopped this file (disk full, quota, I/O error); later records are dropped. */
  failed: Error | null = null;
  /** Told once when a write fails; the file is cut back to its last whole record first. */
  onError: ((e: Error) => void) | undefined;

  /** Open for appending, or truncate first when `truncate`; a new file gets 0666 less the umask, as any tool's output. */
  constructor(
    readonly path: string,
    truncate: boolean,
  ) {
    // The umask is the user's (or the site's) choice of who may read results: never widened here.
    this.fd = openSync(path, truncate ? 'w' : 'a', 0o666);
    this.size = fstatSync(this.fd).size;
    this.timer = setInterval(() => this.sync(), SYNC_EVERY_MS);
    this.timer.unref();
  }

  write(line: string): void {
    this.queued.push(line);
    this.queuedBytes += line.length + 1;
    if (this.queuedBytes >= MAX_QUEUED_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.queued.length === 0 || this.closed || this.failed) return;
    const buf = Buffer.from(`${this.queued.join('\n')}\n`);
    this.queued = [];
    this.queuedBytes = 0;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      // Disk full, quota, I/O error: cut the file back to its last whole record, so that it stays a
      // valid journal, and let the run stop cleanly; the records not written run again on --resume.
      this.failed = e as Error;
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // the reader drops a torn last line anyway
      }
      this.onError?.(this.failed);
      return;
    }
    this.size += buf.length;
    this.dirty = true;
  }

  /** fdatasync if anything was written since the last one. */
  sync(): void {
    if (!this.dirty || this.closed) return;
    this.dirty = false;
    try {
      fdatasyncSync(this.fd);
    } catch {
      // a file system without sync (some FUSE mounts): the data is still written
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.sync();
    this.closed = true;
    clearInterval(this.timer);
    closeSync(this.fd);
  }
}

/** Records as JSON Lines on standard output. */
export class StdoutRecords implements RecordOut {
  private queued: string[] = [];
  private scheduled = false;
  broken = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {
    stream.on('error', () => (this.broken = true));
  }

  write(line: string): void {
    this.queued.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.queued.length === 0 || this.broken) return;
    this.stream.write(`${this.queued.join('\n')}\n`);
    this.queued = [];
  }

  async close(): Promise<void> {
    this.flush();
    if (this.broken || !this.stream.writableNeedDrain) return;
    await new Promise<void>((r) => this.stream.once('drain', () => r()));
  }
}
