// Starting the Python interpreters of a node's worker slots: which interpreter, the slot's file, the
// process. Kept apart from the Python slots' protocol (python-slot.ts, loaded only for a .py task
// module) and light (node:fs through require, util/node-fs.ts; node:child_process through require, when first used), so that it is
// part of every pool at no cost, and a Python pool starts its interpreters before anything else of its
// Python side loads: an interpreter's own start (~30 ms) then overlaps that loading and the codec's,
// instead of following them.
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, encode, encodeFloats, typedArrayData, writeArrayHeader } from '../protocol/codec.js';
import { pinnedCpuList } from './cpu-sets.js';
import { accessSync, closeSync, constants, ftruncateSync, openSync, statSync, unlinkSync, writeFileSync, writeSync } from '../util/node-fs.js';
import { SLOT_CHUNK, SLOT_LENGTH, type SharedEntry, type WorkerInit } from './thread-messages.js';
import type { PythonWorker } from './python-slot.js';

const requireBuiltin = createRequire(import.meta.url);

/** The interpreter's entry point, shipped with the package beside dist/. */
export const PYTHON_WORKER = fileURLToPath(new URL('../../python/slurmpool_worker.py', import.meta.url));

/** Where files that Python maps live: tmpfs when there is one (never written to disk), else the temporary folder. */
export function mapDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return tmpdir();
}

/** Names made by this process so far: with the pid, unique among this process's files. */
let made = 0;

/**
 * Create a new file under mapDir(), 0600, with O_EXCL (never an existing file, nor a link someone
 * planted), named for this process, what it holds, and a count with a random part (so that a name
 * cannot be taken in advance); a name that exists already is passed over. Returns its path and fd.
 */
export function createExclusive(what: string, flags: 'wx' | 'wx+'): { path: string; fd: number } {
  const dir = mapDir();
  for (let tries = 0; ; tries++) {
    const path = join(dir, `slurmpool-${process.pid}-${++made}${Math.random().toString(36).slice(2, 10)}-${what}`);
    try {
      return { path, fd: openSync(path, flags, 0o600) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 16) throw e;
    }
  }
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, path: string | undefined): string | null {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return null;
}

/**
 * The interpreter for this node: `options.python` (or SLURMPOOL_PYTHON), else the active virtual
 * environment's ($VIRTUAL_ENV/bin/python), else python3 (then python) on PATH. Throws naming what was tried.
 */
export function resolvePython(given: string | undefined, env: Record<string, string | undefined>, where: string): string {
  const tried: string[] = [];
  const explicit = given ?? (env.SLURMPOOL_PYTHON || undefined);
  const label = given !== undefined ? 'options.python' : 'SLURMPOOL_PYTHON';
  if (explicit !== undefined) {
    const p = explicit.includes('/') ? (executable(explicit) ? explicit : null) : onPath(explicit, env.PATH);
    if (p) return p;
    throw notFound(`${label} is ${JSON.stringify(explicit)}, which is ${explicit.includes('/') ? 'not an executable file' : `not on PATH (${env.PATH ?? 'unset'})`}${where}`);
  }
  tried.push(`${label} (not set)`);
  if (env.VIRTUAL_ENV) {
    const p = join(env.VIRTUAL_ENV, 'bin', 'python');
    if (executable(p)) return p;
    tried.push(`${p} (VIRTUAL_ENV is set, but it is not there)`);
  } else tried.push('$VIRTUAL_ENV/bin/python (VIRTUAL_ENV not set)');
  for (const name of ['python3', 'python']) {
    const p = onPath(name, env.PATH);
    if (p) return p;
  }
  tried.push(`python3 and python on PATH (${env.PATH ?? 'unset'})`);
  throw notFound(`no Python interpreter found${where}: tried ${tried.join(', ')}; set options.python or SLURMPOOL_PYTHON`);
}

function notFound(message: string): Error {
  const e = new Error(message);
  e.name = 'PythonNotFound';
  return e;
}

/** Files of shared values that some interpreter still maps, removed at exit whatever else happened. */
const liveFiles = new Set<string>();
let exitHook = false;

function removeLive(): void {
  for (const p of liveFiles) {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
  liveFiles.clear();
}

/**
 * Binary shared values as files Python maps read-only: one file per value per node (this agent), 0600,
 * written once from the node's SharedArrayBuffer when an interpreter first needs it, removed on
 * unshare and when the pool stops (and at process exit).
 */
export class SharedFiles {
  private readonly files = new Map<number, string>();

  /** A shared value as the interpreter takes it: bytes as the path of their file (written now if need be), else the encoded value. */
  describe(e: SharedEntry): Record<string, unknown> {
    if (e.kind === 'bytes') return { id: e.id, kind: 'bytes', ctor: e.ctor, path: this.pathOf(e) };
    return { id: e.id, kind: 'value', data: Buffer.from(e.sab) };
  }

  pathOf(e: SharedEntry): string {
    let p = this.files.get(e.id);
    if (p === undefined) {
      const file = createExclusive(`shared-${e.id}`, 'wx');
      p = file.path;
      try {
        writeFileSync(file.fd, Buffer.from(e.sab));
      } catch (err) {
        unlinkSync(p);
        throw err;
      } finally {
        closeSync(file.fd);
      }
      this.files.set(e.id, p);
      liveFiles.add(p);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', removeLive);
      }
    }
    return p;
  }

  release(id: number): void {
    const p = this.files.get(id);
    if (p === undefined) return;
    this.files.delete(id);
    liveFiles.delete(p);
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }

  releaseAll(): void {
    for (const id of [...this.files.keys()]) this.release(id);
  }
}

/**
 * What the child did before a PythonWorker took it over, in order: what it wrote (kept, since Node
 * throws away the unread output of a child that exits), and its 'error' and 'close' events.
 */
export type EarlyEvent = ['stdout', Buffer] | ['stderr', Buffer] | ['error', Error] | ['close', number | null, NodeJS.Signals | null];

/** A slot's interpreter process and its slot file (fd 3 in the interpreter; the file itself is already unlinked). */
export interface Interpreter {
  child: ChildProcess;
  slotFd: number;
  /** The shared values its init frame named (their ids), once sent (sendInit). */
  shared: Set<number> | null;
  /** Stop keeping the child's output and events and hand over those it had: its new owner listens to it now. */
  takeOver(): EarlyEvent[];
}

/**
 * Start slot `index`'s interpreter: its slot file (the interpreter's fd 3, unlinked as soon as it has
 * it, so nothing is left behind whatever happens; no chunk running), then the process. Throws what
 * spawn throws; a process that cannot start says so by an 'error' event, kept until takeOver as
 * everything else it does.
 */
export function startInterpreter(python: string, env: Record<string, string>, index: number): Interpreter {
  const { path, fd } = createExclusive(`slot-${index}`, 'wx+');
  let child: ChildProcess;
  try {
    ftruncateSync(fd, SLOT_LENGTH * 8);
    const none = Buffer.alloc(8);
    none.writeDoubleLE(-1, 0);
    writeSync(fd, none, 0, 8, SLOT_CHUNK * 8);
    child = (requireBuiltin('node:child_process') as typeof import('node:child_process')).spawn(python, ['-u', PYTHON_WORKER], {
      env: { ...env, SLURMPOOL_WORKER: String(index) },
      stdio: ['pipe', 'pipe', 'pipe', fd],
    });
  } catch (e) {
    closeSync(fd);
    throw e;
  } finally {
    unlinkSync(path);
  }
  // A write to an interpreter that just died: its exit is reported by 'close'.
  child.stdin!.on('error', () => undefined);
  const early: EarlyEvent[] = [];
  const onStdout = (d: Buffer) => early.push(['stdout', d]);
  const onStderr = (d: Buffer) => early.push(['stderr', d]);
  const onError = (e: Error) => early.push(['error', e]);
  const onClose = (code: number | null, signal: NodeJS.Signals | null) => early.push(['close', code, signal]);
  child.stdout!.on('data', onStdout);
  child.stderr!.on('data', onStderr);
  child.on('error', onError);
  child.on('close', onClose);
  return {
    child,
    slotFd: fd,
    shared: null,
    takeOver() {
      child.stdout!.off('data', onStdout);
      child.stderr!.off('data', onStderr);
      child.off('error', onError);
      child.off('close', onClose);
      return early;
    },
  };
}

/** The first frame an interpreter reads ('I'): what to import and run, its shared values, its cores. */
const TAG_INIT = 0x49;

/**
 * Send the interpreter its init frame: it reads it as soon as its runtime has loaded, before it
 * imports the task module. Here rather than in python-slot.ts, so that it goes as soon as the
 * interpreter is started, whether python-slot.ts has loaded yet or not.
 */
export function sendInit(it: Interpreter, init: WorkerInit, files: SharedFiles): void {
  const payload = encode({
    module: init.module === null ? null : init.module.startsWith('file:') ? fileURLToPath(init.module) : init.module,
    initializer: init.initializer,
    initArgs: init.initArgs,
    worker: init.workerIndex,
    maxTasks: init.maxTasks,
    shared: init.shared.map((e) => files.describe(e)),
    cpus: pinnedCpuList(init.env, init.workerIndex),
  });
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(payload.byteLength + 1, 0);
  head[4] = TAG_INIT;
  const stdin = it.child.stdin!;
  stdin.cork();
  stdin.write(head);
  stdin.write(payload);
  stdin.uncork();
  it.shared = new Set(init.shared.map((e) => e.id));
}

/**
 * What a WorkerPool needs to run its slots as Python interpreters: the interpreter, the interpreters
 * started ahead (prestart), and python-slot.ts once loaded (load).
 */
export class PythonSlots {
  /** Chunks to run item by item, tracking each: an interpreter died in them while it ran tiny items in bulk. */
  readonly careful = new Set<number>();
  /** The interpreter's path, once resolved. */
  python = '';
  private slotCode: typeof import('./python-slot.js') | null = null;
  private loading: Promise<void> | null = null;
  /** Binary shared values as files the interpreters map. */
  readonly files = new SharedFiles();
  /** Interpreters started before the slots' code loaded, by slot, until their slot takes them. */
  private readonly ahead = new Map<number, Interpreter>();

  constructor(private readonly opts: { python: string | undefined; env: Record<string, string>; node: string }) {}

  /** Find the interpreter; throws naming what was tried. */
  resolve(): void {
    if (this.python) return;
    const node = this.opts.env.SLURMPOOL_NODE;
    this.python = resolvePython(this.opts.python, this.opts.env, node ? ` on node ${node}` : '');
  }

  /**
   * Start the interpreters of these slots now, and send each its init frame once all are started (the
   * codec may have to load for it). One that spawn refuses is left to its slot, which starts it again
   * and reports why (as without this).
   */
  prestart(inits: WorkerInit[]): void {
    this.resolve();
    // python-slot.ts's files are read meanwhile (an import is asynchronous); the pool awaits load() after.
    this.load().catch(() => undefined);
    const started: [Interpreter, WorkerInit][] = [];
    for (const init of inits) {
      if (this.ahead.has(init.workerIndex)) continue;
      try {
        const it = startInterpreter(this.python, init.env, init.workerIndex);
        this.ahead.set(init.workerIndex, it);
        started.push([it, init]);
      } catch {
        // the slot tries again
      }
    }
    for (const [it, init] of started) sendInit(it, init, this.files);
  }

  /** Load the slots' code (python-slot.ts) and hand it this process's codec (one msgpackr for the whole process). */
  load(): Promise<void> {
    this.loading ??= import('./python-slot.js').then((code) => {
      code.useCodec({ decode, encode, encodeFloats, typedArrayData, writeArrayHeader });
      this.slotCode = code;
    });
    return this.loading;
  }

  /**
   * Slot init.workerIndex's interpreter: the one started ahead for it, else a new one. One started
   * ahead is told of the shared values that came or went since its init frame.
   */
  spawn(init: WorkerInit): PythonWorker {
    this.resolve();
    if (!this.slotCode) throw new Error('the Python slots are not loaded (PythonSlots.load)');
    let it = this.ahead.get(init.workerIndex);
    this.ahead.delete(init.workerIndex);
    if (!it) {
      it = startInterpreter(this.python, init.env, init.workerIndex);
      try {
        sendInit(it, init, this.files);
      } catch (e) {
        discard(it);
        throw e;
      }
    }
    const sent = it.shared ?? new Set<number>();
    const worker = new this.slotCode.PythonWorker(this.python, init, this.files, this.careful, it);
    for (const e of init.shared) if (!sent.has(e.id)) worker.postMessage({ t: 'share', entry: e });
    const now = new Set(init.shared.map((e) => e.id));
    for (const id of sent) if (!now.has(id)) worker.postMessage({ t: 'unshare', id });
    return worker;
  }

  close(): void {
    this.files.releaseAll();
    // Interpreters no slot took (the pool stopped while starting).
    for (const it of this.ahead.values()) discard(it);
    this.ahead.clear();
  }
}

/** End an interpreter no slot took over, and close its slot file. */
function discard(it: Interpreter): void {
  it.takeOver();
  it.child.on('error', () => undefined);
  it.child.kill('SIGKILL');
  try {
    closeSync(it.slotFd);
  } catch {
    // closed
  }
}
