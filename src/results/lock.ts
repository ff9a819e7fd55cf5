// One run per results file: a lock file beside it, created with O_EXCL, refreshed while the run lives.
//
// Cluster filesystems (NFS, Lustre, GPFS) are why it is a file and not flock/fcntl: POSIX locks over
// NFS depend on lockd/statd and are silently local on some mounts, while an exclusive create
// (`open(O_CREAT|O_EXCL)`) is atomic on NFSv3 and later, Lustre and GPFS. The holder writes who it is
// (host, pid, start time, Slurm job) into the file and touches it every REFRESH_MS, so that a lock
// whose holder died is recognised: on the same host by its pid being gone, from another host by the
// file not being touched for STALE_MS, or as an earlier incarnation of the same requeued Slurm job.
import { closeSync, futimesSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, linkSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** How often a held lock is touched. */
export const REFRESH_MS = 15_000;
/** A lock from another host not touched for this long is taken to be left by a dead run (clock skew between hosts must stay below it). */
export const STALE_MS = 120_000;

/** Who holds a results file. */
export interface LockHolder {
  host: string;
  pid: number;
  /** Epoch milliseconds. */
  started: number;
  jobId?: string;
  restartCount?: number;
  command?: string;
}

/** The lock file's path for a results file. */
export function lockPath(results: string): string {
  return join(dirname(results), `${basename(results)}.lock`);
}

/** The holder in words: `host n1, pid 4242, since 2026-12-01T11:00:00.000Z (job 77)`. */
export function describeHolder(h: LockHolder): string {
  const job = h.jobId ? ` (Slurm job ${h.jobId}${h.restartCount ? `, restart ${h.restartCount}` : ''})` : '';
  return `host ${h.host}, pid ${h.pid}, since ${new Date(h.started).toISOString()}${job}`;
}

/** Another run holds the results file. */
export class LockHeld extends Error {
  override name = 'LockHeld';
  constructor(
    readonly path: string,
    readonly holder: LockHolder | null,
    why: string,
  ) {
    super(why);
  }
}

function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.host === 'string' && typeof v.pid === 'number' && typeof v.started === 'number') return v as LockHolder;
  } catch {
    // written halfway, or not ours
  }
  return null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock's holder is known to be gone, or null when it may be alive. */
export function staleness(h: LockHolder | null, mtimeMs: number, me: LockHolder, now = Date.now(), staleMs = STALE_MS): string | null {
  const age = now - mtimeMs;
  if (!h) return age > staleMs ? `its content cannot be read and it was last touched ${Math.round(age / 1000)} s ago` : null;
  if (h.host === me.host) {
    if (h.pid === me.pid) return 'it was left by this very process';
    if (!pidAlive(h.pid)) return `process ${h.pid} no longer exists on ${h.host}`;
    return null;
  }
  if (h.jobId && me.jobId === h.jobId && (h.restartCount ?? 0) < (me.restartCount ?? 0)) {
    return `it was taken by an earlier start of this Slurm job (restart ${h.restartCount ?? 0}; this is restart ${me.restartCount})`;
  }
  if (age > staleMs) return `it has not been refreshed for ${Math.round(age / 1000)} s (a live run refreshes it every ${REFRESH_MS / 1000} s)`;
  return null;
}

export interface LockOptions {
  /** Told when a stale lock is taken over, or when the held lock was taken away. */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  command?: string;
  staleMs?: number;
  refreshMs?: number;
}

/** The lock of one results file, held by this process from `acquire` to `release`. */
export class RunLock {
  private fd: number;
  private readonly timer: NodeJS.Timeout;
  private readonly text: string;
  private released = false;
  /** Told once when the lock file turns out not to be ours any more (removed or taken over). */
  onLost: ((why: string) => void) | undefined;

  private constructor(
    readonly path: string,
    readonly holder: LockHolder,
    fd: number,
    text: string,
    refreshMs: number,
  ) {
    this.fd = fd;
    this.text = text;
    this.timer = setInterval(() => this.refresh(), refreshMs);
    this.timer.unref();
  }

  /**
   * Take the lock of `results`, taking over a stale one with a log line; throws LockHeld naming the
   * holder when another live run has it.
   */
  static acquire(results: string, opts: LockOptions = {}): RunLock {
    const env = opts.env ?? process.env;
    const path = lockPath(results);
    const restart = Number(env.SLURM_RESTART_COUNT);
    const me: LockHolder = {
      host: hostname(),
      pid: process.pid,
      started: Date.now(),
      ...(env.SLURM_JOB_ID ? { jobId: env.SLURM_JOB_ID } : {}),
      ...(Number.isInteger(restart) && restart > 0 ? { restartCount: restart } : {}),
      ...(opts.command ? { command: opts.command } : {}),
    };
    const text = `${JSON.stringify(me)}\n`;
    const staleMs = opts.staleMs ?? STALE_MS;
    // Bounded: each pass either creates the file, refuses, or removes one stale lock.
    for (let attempt = 0; attempt < 5; attempt++) {
      const fd = tryCreate(path, text);
      if (fd !== null) return new RunLock(path, me, fd, text, opts.refreshMs ?? REFRESH_MS);
      const seen = readLock(path);
      if (!seen) continue; // removed between our create and our read: try again
      const why = staleness(seen.holder, seen.mtimeMs, me, Date.now(), staleMs);
      if (!why) {
        const who = seen.holder ? `another slurmpool run (${describeHolder(seen.holder)})` : 'another slurmpool run that is still writing its lock file';
        throw new LockHeld(path, seen.holder, `${results} is in use by ${who}: only one run may write a results file (lock file ${path})`);
      }
      takeOver(path, seen.text);
      opts.log?.(`taking over the lock of ${results} (${path}): ${why}${seen.holder ? `; it was held by ${describeHolder(seen.holder)}` : ''}`);
    }
    throw new LockHeld(path, null, `${results}: could not take its lock file ${path} (other runs keep taking it)`);
  }

  /** Touch the lock file; check it is still ours. */
  refresh(): void {
    if (this.released) return;
    try {
      const now = new Date();
      futimesSync(this.fd, now, now);
      if (readFileSync(this.path, 'utf8') !== this.text) throw new Error('its content is another run\'s');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it was removed' : (e as Error).message;
      const lost = this.onLost;
      this.onLost = undefined;
      lost?.(`the lock file ${this.path} is no longer this run's (${why})`);
    }
  }

  /** Stop refreshing and remove the lock file if it is still ours. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    try {
      if (readFileSync(this.path, 'utf8') === this.text) unlinkSync(this.path);
    } catch {
      // gone already
    }
  }
}

/** Create the lock file exclusively with our content; null when it exists. */
function tryCreate(path: string, text: string): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o666);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw new Error(`cannot create the lock file ${path}: ${(e as Error).message}`);
  }
  try {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    try {
      fsyncSync(fd);
    } catch {
      // a file system without sync
    }
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // nothing to remove
    }
    throw new Error(`cannot write the lock file ${path}: ${(e as Error).message}`);
  }
  return fd;
}

/** The lock file as it is now; a half-written one is read again a few times before it is judged. */
function readLock(path: string): { holder: LockHolder | null; mtimeMs: number; text: string } | null {
  for (let i = 0; ; i++) {
    let text: string;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const holder = parseHolder(text);
    if (holder || i >= 10) return { holder, mtimeMs, text };
    // A creator writes right after its create: give it a moment (bounded: about 0.5 s in all).
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/**
 * Remove a stale lock without removing a fresh one another process created meanwhile: move it
 * aside (rename is atomic), check that what moved is the stale content, and put it back if not.
 */
function takeOver(path: string, staleText: string): void {
  const aside = `${path}.stale-${hostname()}-${process.pid}-${Date.now()}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // another run took it over first
    throw e;
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    // vanished: nothing to put back
  }
  if (moved !== '' && moved !== staleText) {
    // A live run's fresh lock: restore it unless yet another one exists now (then both stay refused).
    try {
      linkSync(aside, path);
    } catch {
      // a newer lock is in place already
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // already gone
  }
}
