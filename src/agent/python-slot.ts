// A worker slot that runs Python: one long-lived interpreter per slot, in place of a worker thread. It
// speaks the worker thread's messages (ready, initError, results, retire; batch, share, unshare) to
// the WorkerPool, so the scheduler, the Pool and the CLI see no difference; to the interpreter it
// speaks length-prefixed msgpack frames over its stdin and stdout (python/slurmpool_runtime.py).
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as osc } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { ErrorRecord } from '../errors.js';
import type { ChunkResult, ChunkSpec } from '../protocol/messages.js';
import type * as Codec from '../protocol/codec.js';
// Types only: python-process.js is part of the pool's bundle (this module is not), and a second copy would load codec.js again.
import type { Interpreter, SharedFiles } from './python-process.js';
import { SLOT_CHUNK, SLOT_LENGTH, type FromWorker, type ToWorker, type WorkerInit } from './thread-messages.js';
// node:fs through require (util/node-fs.ts): an ES module import of it costs the pool's main thread 3–5 ms.
import { closeSync, readSync, writeSync } from '../util/node-fs.js';

/**
 * The codec of the process that loaded this module (PythonSlots.load): not imported here, since the
 * pool's main thread has its own copy of codec.js inside its bundle, and a second copy would load and
 * warm msgpackr a second time.
 */
let codec: Pick<typeof Codec, 'decode' | 'encode' | 'encodeFloats' | 'typedArrayData' | 'writeArrayHeader'>;

export function useCodec(c: typeof codec): void {
  codec = c;
}

// 'I', the init frame, is python-process.ts's (sendInit).
const TAG_BATCH = 0x42; // B
const TAG_SHARE = 0x53; // S
const TAG_UNSHARE = 0x55; // U
const TAG_READY = 0x59; // Y
const TAG_INIT_ERROR = 0x45; // E
const TAG_RESULTS = 0x52; // R
const TAG_RESULTS_INT32 = 0x51; // Q: results, some of whose values are Int32Arrays (see widenInt32)
const TAG_RETIRE = 0x54; // T
const TAG_TAKE_BACK = 0x56; // V: to the interpreter, give back batch n if not begun; from it, batch n given back

/** Kept of the interpreter's stderr for error messages (a traceback, faulthandler's dump of a crash). */
const STDERR_TAIL = 8 * 1024;

function frame(tag: number, payload: Uint8Array): [Buffer, Uint8Array] {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(payload.byteLength + 1, 0);
  head[4] = tag;
  return [head, payload];
}

/** A Buffer over the same bytes (msgpackr writes a Buffer as bin, any other Uint8Array as a typed array). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The slot the interpreter writes (chunk, item offset, item start, and the stop flag the agent
 * writes), as a Float64Array-like view over a file both map: reads and writes go to the file, so the
 * WorkerPool reads it as it reads a worker thread's SharedArrayBuffer slot.
 */
function fileSlot(fd: number, isOpen: () => boolean): Float64Array {
  const buf = Buffer.alloc(8);
  const index = (k: string | symbol): number => (typeof k === 'string' && /^\d$/.test(k) ? Number(k) : -1);
  return new Proxy(new Float64Array(SLOT_LENGTH), {
    get(target, k) {
      const i = index(k);
      if (i < 0 || i >= SLOT_LENGTH) return Reflect.get(target, k) as unknown;
      if (!isOpen()) return i === SLOT_CHUNK ? -1 : 0;
      readSync(fd, buf, 0, 8, i * 8);
      return buf.readDoubleLE(0);
    },
    set(target, k, v) {
      const i = index(k);
      if (i < 0 || i >= SLOT_LENGTH) return Reflect.set(target, k, v);
      if (!isOpen()) return true;
      buf.writeDoubleLE(Number(v), 0);
      writeSync(fd, buf, 0, 8, i * 8);
      return true;
    },
  });
}

/**
 * One interpreter of a worker slot: emits the worker thread's 'message' (but for results), 'error'
 * and 'exit' events, and 'results' (ChunkResult[], decoded) and 'takenBack' (a batch's number).
 */
export class PythonWorker extends EventEmitter {
  readonly slot: Float64Array;
  readonly pid: number | undefined;
  private readonly child: ChildProcess;
  private readonly slotFd: number;
  private slotOpen = true;
  private tail = '';
  private started = false;
  private retired = false;
  private killed = false;
  private exited = false;
  private closedP: Promise<void>;

  /** `it`: the slot's interpreter, started and sent its init frame (python-process.ts); this takes it over. */
  constructor(
    private readonly python: string,
    private readonly init: WorkerInit,
    private readonly files: SharedFiles,
    private readonly careful: Set<number>,
    it: Interpreter,
  ) {
    super();
    const child = it.child;
    this.slotFd = it.slotFd;
    this.slot = fileSlot(this.slotFd, () => this.slotOpen);
    this.child = child;
    this.pid = child.pid;
    let closed!: () => void;
    this.closedP = new Promise((r) => (closed = r));
    const onStdout = (d: Buffer) => this.onData(d);
    const onStderr = (d: Buffer) => {
      process.stderr.write(d);
      this.tail = (this.tail + d.toString('utf8')).slice(-STDERR_TAIL);
    };
    const onError = (e: Error) => {
      // Not started at all (the interpreter vanished since it was found): no 'close' follows.
      if (child.pid === undefined) this.finish(e, -1, closed);
    };
    const onClose = (code: number | null, signal: NodeJS.Signals | null) => this.finish(null, code ?? 128 + (signal ? (osc.signals[signal] ?? 0) : 0), closed, signal);
    // What it did before this took it over (it was started while the Python side loaded), then the
    // rest as it comes; replayed after the caller's listeners are on this, as a child's own events come.
    const early = it.takeOver();
    child.stdout!.on('data', onStdout);
    child.stderr!.on('data', onStderr);
    child.on('error', onError);
    child.on('close', onClose);
    if (early.length > 0) {
      queueMicrotask(() => {
        for (const e of early) {
          if (e[0] === 'stdout') onStdout(e[1]);
          else if (e[0] === 'stderr') onStderr(e[1]);
          else if (e[0] === 'error') onError(e[1]);
          else onClose(e[1], e[2]);
        }
      });
    }
  }

  private finish(error: Error | null, code: number, closed: () => void, signal?: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    if (!this.killed && !(this.retired && code === 0)) {
      const how = error ? `could not be started: ${error.message}` : signal ? `was killed by ${signal}` : `exited with status ${code}`;
      const what = this.started ? `Python interpreter of worker ${this.init.workerIndex} (pid ${this.pid}, ${this.python}) ${how}` : `${this.python} ${how} while starting`;
      const text = this.tail.trim();
      // Before it was ready, what it printed is the reason (a too-old version, a broken installation).
      const err = new Error(!this.started && text ? `${what}: ${lastLines(text, 20)}` : what);
      err.name = 'WorkerExit';
      err.stack = text ? `${err.name}: ${err.message}\n${lastLines(text, 40)}` : `${err.name}: ${err.message}`;
      this.emit('error', err);
    }
    this.emit('exit', code);
    this.slotOpen = false;
    closeSync(this.slotFd);
    closed();
  }

  private write(tag: number, payload: Uint8Array): void {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || this.exited) return;
    const [head, body] = frame(tag, payload);
    stdin.cork();
    stdin.write(head);
    stdin.write(body);
    stdin.uncork();
  }

  /** Bytes read but not yet a whole frame, kept as they came: a large frame is put together once, not once per read. */
  private chunks: Buffer[] = [];
  private have = 0;
  /** The length of the frame being read (its 4-byte length included), or -1 before its length is known. */
  private need = -1;

  private onData(d: Buffer): void {
    if (d.length > 0) {
      this.chunks.push(d);
      this.have += d.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.have < 5) return;
        if (this.chunks[0]!.length < 5) this.chunks = [Buffer.concat(this.chunks, this.have)];
        this.need = 4 + this.chunks[0]!.readUInt32BE(0);
      }
      if (this.have < this.need) return;
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.have);
      const end = this.need;
      const rest = buf.subarray(end);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.have = rest.length;
      this.need = -1;
      this.onFrame(buf[4]!, buf.subarray(5, end));
    }
  }

  private onFrame(tag: number, payload: Buffer): void {
    let m: FromWorker;
    switch (tag) {
      case TAG_RESULTS:
      case TAG_RESULTS_INT32: {
        // Decoded here, once, and handed over as they are ('results'), not as bytes to decode again.
        const results = codec.decode(payload) as ChunkResult[];
        if (tag === TAG_RESULTS_INT32) for (const r of results) r.values = widenInt32(r.values);
        this.emit('results', results);
        return;
      }
      case TAG_READY: {
        this.started = true;
        const info = codec.decode(payload) as { exports: Record<string, string>; python: string; executable: string; codec: string; codecVersion: string };
        this.info = info;
        m = { t: 'ready', exports: info.exports };
        break;
      }
      case TAG_INIT_ERROR: {
        // JSON when the interpreter had no codec to write msgpack with.
        const error = (payload[0] === 0x4a ? JSON.parse(payload.subarray(1).toString('utf8')) : codec.decode(payload)) as ErrorRecord;
        m = { t: 'initError', error };
        break;
      }
      case TAG_RETIRE:
        this.retired = true;
        m = { t: 'retire' };
        break;
      case TAG_TAKE_BACK: {
        const seq = payload.readUInt32BE(0);
        for (const id of this.sentCarefully.get(seq) ?? []) this.careful.add(id);
        this.sentCarefully.delete(seq);
        this.emit('takenBack', seq);
        return;
      }
      default:
        return;
    }
    this.emit('message', m);
  }

  /** What the interpreter said about itself when ready: its version, path and codec. */
  info: { python: string; executable: string; codec: string; codecVersion: string } | null = null;

  /** Batches sent so far: the interpreter numbers them the same way (1, 2, ...), so that one can be asked back by number. */
  private batches = 0;
  /** Chunks sent to run carefully, by batch, while that batch may still be given back (they are then careful again). */
  private readonly sentCarefully = new Map<number, number[]>();

  /**
   * A batch of chunks, as one frame: the items stay as the coordinator encoded them, but for lists
   * of numbers (see forPython). Returns its number, for takeBack. The interpreter may still be
   * running an earlier batch: this one then waits in it (its reader thread has it) and starts with
   * no round trip.
   */
  postBatch(batch: ChunkSpec[]): number {
    const careful = this.careful;
    const seq = ++this.batches;
    // The built-in codec reads a Float64Array (one array copy) far faster than a long msgpack array (a Python loop).
    const items = this.info?.codec === 'builtin' ? asBuffer : forPython;
    const carefully = (id: number): boolean => {
      if (careful.size === 0 || !careful.delete(id)) return false;
      const list = this.sentCarefully.get(seq);
      if (list) list.push(id);
      else this.sentCarefully.set(seq, [id]);
      return true;
    };
    if (this.sentCarefully.size > 8) for (const k of [...this.sentCarefully.keys()].slice(0, -8)) this.sentCarefully.delete(k);
    this.write(TAG_BATCH, codec.encode(batch.map((c) => [c.id, c.fn, c.kind, c.start, c.count, items(c.items), c.stopOnError, c.timeoutMs, carefully(c.id)])));
    return seq;
  }

  /**
   * Ask for batch `seq` back. The interpreter gives it back ('takenBack' with its number) only if it
   * has not begun it; otherwise it runs it and its results come as usual.
   */
  takeBack(seq: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(seq, 0);
    this.write(TAG_TAKE_BACK, b);
  }

  /** Run this chunk item by item when it comes again (the interpreter died in it without saying which item it was on). */
  runCarefully(id: number): void {
    this.careful.add(id);
  }

  /** The worker thread's messages that are not batches: shared values come and go. */
  postMessage(msg: ToWorker): void {
    if (msg.t === 'share') this.write(TAG_SHARE, codec.encode(this.files.describe(msg.entry)));
    else if (msg.t === 'unshare') {
      this.files.release(msg.id);
      this.write(TAG_UNSHARE, codec.encode(msg.id));
    } else {
      const specs = codec.decode(msg.data) as ChunkSpec[];
      for (const [i, items] of msg.large) specs[i]!.items = items;
      this.postBatch(specs);
    }
  }

  /** End the interpreter now (a timeout, or the pool stopping). */
  terminate(): Promise<void> {
    if (!this.exited) {
      this.killed = true;
      this.child.kill('SIGKILL');
    }
    return this.closedP;
  }

  ref(): void {
    this.child.ref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as (Readable | Writable) & { ref?: () => void } | null)?.ref?.();
  }

  unref(): void {
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as (Readable | Writable) & { unref?: () => void } | null)?.unref?.();
  }
}

/**
 * A chunk's items for Python (msgpack package). A list of numbers travels as one Float64Array
 * (encodeList); here a list of 32-bit ints becomes an Int32Array (see int32Ext), any other a plain
 * msgpack array again, so that integral values arrive as Python ints and the package reads them in C
 * (cheaper here, once, than a Python loop in every interpreter). The built-in codec gets the
 * Float64Array as it is (postBatch; slurmpool_codec.unpack_numeric_list is faster on it).
 */
export function forPython(items: Uint8Array): Buffer {
  const list = typedArray(items, 8, Float64Array);
  if (list) return int32Ext(list) ?? numbersAsMsgpack(list);
  return asBuffer(items);
}

/** The typed array `code` that `b` encodes, as a view where its bytes are aligned (else a copy), or null if it is not one. */
function typedArray<T extends Float64Array | Int32Array>(b: Uint8Array, code: number, Ctor: { new (buf: ArrayBufferLike, offset: number, length: number): T; BYTES_PER_ELEMENT: number }): T | null {
  const d = codec.typedArrayData(b, code);
  if (d === null) return null;
  const [at, bytes] = d;
  const size = Ctor.BYTES_PER_ELEMENT;
  const n = Math.floor(Math.min(bytes, b.byteLength - at) / size);
  const offset = b.byteOffset + at;
  if (offset % size === 0) return new Ctor(b.buffer, offset, n);
  // Uint8Array.prototype.slice copies (a Buffer's own slice is a view).
  return new Ctor(Uint8Array.prototype.slice.call(b, at, at + n * size).buffer, 0, n);
}

/**
 * Room for a typed array's ext: 8 bytes, then `bytes` bytes that start 8-aligned (allocUnsafe's
 * buffers start 8-aligned, in its pool or alone). Not zero-filled: every byte handed on is written.
 */
function extBuffer(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(8 + bytes);
  return b.byteOffset % 8 === 0 ? b : Buffer.from(new ArrayBuffer(8 + bytes));
}

/** The typed array whose `bytes` bytes start at offset 8 of `buf` (extBuffer), as msgpackr's ext: its 7-byte header written just before them. */
function extHead(buf: Buffer, code: number, bytes: number): Buffer {
  // ext 32 (c9, 4-byte length, type), then the code byte: 7 bytes, from offset 1.
  buf[1] = 0xc9;
  buf.writeUInt32BE(bytes + 1, 2);
  buf[6] = 0x74;
  buf[7] = code;
  return buf.subarray(1, 8 + bytes);
}

/**
 * When every number is a 32-bit signed integer, the list as msgpackr's Int32Array (checked and
 * converted in one pass), which the interpreter turns into a list of ints with one C call
 * (array.tolist), cheaper than decoding a msgpack array; they come back so too
 * (slurmpool_codec.Int32Values). Else null.
 */
function int32Ext(list: Float64Array): Buffer | null {
  const n = list.length;
  if (n > 0 && (list[0]! | 0) !== list[0]) return null; // a list of floats, most likely: nothing allocated for it
  const buf = extBuffer(4 * n);
  const ints = new Int32Array(buf.buffer, buf.byteOffset + 8, n);
  for (let i = 0; i < n; i++) {
    const v = list[i]!;
    const k = v | 0;
    if (k !== v) return null;
    ints[i] = k;
  }
  return extHead(buf, 5, 4 * n);
}

/**
 * A chunk's values that Python sent as an Int32Array (all 32-bit ints: the cheapest list of numbers
 * for it to make), as the Float64Array the coordinator reads for a list of numbers (encodeList).
 */
export function widenInt32(values: Uint8Array): Uint8Array {
  const ints = typedArray(values, 5, Int32Array);
  // Written as every numeric list is (encodeList): aligned, in a buffer of its own.
  return ints ? codec.encodeFloats(ints) : values;
}

/** A msgpack array of these numbers as msgpackr writes a number[]: 32-bit integers as ints, the rest as float64. */
function numbersAsMsgpack(list: Float64Array): Buffer {
  const n = list.length;
  const out = Buffer.allocUnsafe(5 + 9 * n);
  let p = codec.writeArrayHeader(out, n);
  // Bytes written by hand: Buffer's write methods cost a call and a range check per number.
  for (let i = 0; i < n; i++) {
    const v = list[i]!;
    if (v >>> 0 === v) {
      if (v < 0x80) out[p++] = v;
      else if (v < 0x100) {
        out[p++] = 0xcc;
        out[p++] = v;
      } else if (v < 0x10000) {
        out[p++] = 0xcd;
        out[p++] = v >>> 8;
        out[p++] = v & 0xff;
      } else {
        out[p++] = 0xce;
        out[p++] = v >>> 24;
        out[p++] = (v >>> 16) & 0xff;
        out[p++] = (v >>> 8) & 0xff;
        out[p++] = v & 0xff;
      }
    } else if (v >> 0 === v) {
      if (v >= -0x20) out[p++] = 0x100 + v;
      else {
        out[p++] = 0xd2;
        out[p++] = (v >>> 24) & 0xff;
        out[p++] = (v >>> 16) & 0xff;
        out[p++] = (v >>> 8) & 0xff;
        out[p++] = v & 0xff;
      }
    } else {
      out[p++] = 0xcb;
      out.writeDoubleBE(v, p);
      p += 8;
    }
  }
  return out.subarray(0, p);
}

function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.slice(-n).join('\n');
}
