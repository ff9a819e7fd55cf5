// The floors under D2 (one empty chunk's round trip to an agent over TCP and its worker thread):
//   node bench/peers/pingpong.mjs tcp     median round trip of a 16-byte message to another Node process over loopback TCP (noDelay), µs
//   node bench/peers/pingpong.mjs thread  median round trip of a small message to a worker thread (postMessage both ways), µs
//   node bench/peers/pingpong.mjs chain   D2's four hops with nothing in them: 16 bytes over loopback TCP to another Node process,
//                                         postMessage to its worker thread, back to its main thread, back over TCP, µs
//                                         (not part of D2's target: what the shape itself costs on this machine)
//   node bench/peers/pingpong.mjs codec   the same chain carrying D2's messages in msgpack (msgpackr, as slurmpool uses it) and
//                                         nothing else: a length-prefixed chunk frame, decoded and encoded again for the thread, its
//                                         result encoded there and framed back, µs (by hand: the codec's share of D2's gap)
//   node bench/peers/pingpong.mjs inline  'codec' with the other process answering the chunk itself, no worker thread: two hops,
//                                         what an agent running tiny chunks on its own thread would be held to (by hand)
// Same counts as D2: WARM warm-up round trips (steady state: V8's optimising compiler done), then the median of 1,000.
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { runChild } from '../lib/child.mjs';

const WARM = 5000;
/** A worker thread that sends every message straight back. */
const ECHO_THREAD = `import { parentPort } from 'node:worker_threads'; parentPort.on('message', (m) => parentPort.postMessage(m));`;
const N = 1000;
/**
 * 'codec': a worker thread that decodes a chunk and answers its result, in msgpack (msgpackr from this
 * package's node_modules). What crosses the thread boundary is a copy of exactly the encoded bytes:
 * msgpackr returns a view of its own large buffer, which postMessage would copy whole.
 */
const CODEC_THREAD = `import { parentPort } from 'node:worker_threads'; import { Packr } from ${JSON.stringify(import.meta.resolve('msgpackr'))};
const p = new Packr({ useRecords: false, moreTypes: true });
parentPort.on('message', (m) => { const c = p.unpack(m); parentPort.postMessage(new Uint8Array(p.pack([{ id: c.id, worker: 0, values: p.pack([null]), failures: [], started: 1, ended: 2 }]))); });`;
const packr = new Packr({ useRecords: false, moreTypes: true });

/** A frame: its body's length (u32), then the body. */
function frame(body) {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** Calls onFrame with each whole frame's body as the bytes arrive. */
function frames(onFrame) {
  let buf = Buffer.alloc(0);
  return (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      onFrame(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  };
}

async function measure(roundTrip) {
  for (let k = 0; k < WARM; k++) await roundTrip();
  const us = [];
  for (let k = 0; k < N; k++) {
    const t0 = performance.now();
    await roundTrip();
    us.push((performance.now() - t0) * 1000);
  }
  us.sort((a, b) => a - b);
  return { us: us[us.length >> 1], p90: us[Math.floor(us.length * 0.9)] };
}

if (process.argv[2] === 'echo-server') {
  // The other process: echo every byte back at once ('chain': by way of a worker thread).
  const mode = process.argv[3];
  const src = mode === 'chain' ? ECHO_THREAD : mode === 'codec' ? CODEC_THREAD : null;
  const w = src ? new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`)) : undefined;
  const server = createServer({ noDelay: true }, (s) => {
    if (mode === 'inline') {
      const result = (c) => ({ id: c.id, worker: 0, values: packr.pack([null]), failures: [], started: 1, ended: 2 });
      return s.on('data', frames((body) => s.write(frame(packr.pack({ t: 'results', results: packr.unpack(body).chunks.map(result) })))));
    }
    if (!w) return s.on('data', (d) => s.write(d));
    if (mode === 'codec') {
      // The agent's part: decode the frame, encode each chunk again for the thread; frame its results.
      w.on('message', (results) => s.write(frame(packr.pack({ t: 'results', results: packr.unpack(results) }))));
      s.on('data', frames((body) => { for (const c of packr.unpack(body).chunks) w.postMessage(new Uint8Array(packr.pack(c))); }));
      return;
    }
    w.on('message', (d) => s.write(d));
    s.on('data', (d) => w.postMessage(d));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
  process.on('disconnect', () => process.exit(0));
} else {
  await runChild(async ([what]) => {
    if (what === 'codec' || what === 'inline') {
      const child = fork(new URL(import.meta.url).pathname, ['echo-server', what], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const port = await new Promise((r) => child.once('message', r));
      const s = connect({ host: '127.0.0.1', port, noDelay: true });
      await new Promise((r) => s.once('connect', r));
      // The coordinator's part: a chunk of one empty call in, its result out, both in msgpack.
      let want = null;
      let id = 0;
      s.on('data', frames((body) => {
        const r = packr.unpack(body).results[0];
        if (r.id !== id || packr.unpack(r.values)[0] !== null) throw new Error('wrong result');
        const w = want;
        want = null;
        w();
      }));
      const chunk = () => frame(packr.pack({ t: 'chunks', chunks: [{ id: ++id, job: 1, fn: 'noop', kind: 'star', start: 0, items: packr.pack([[]]), count: 1, stopOnError: true }] }));
      try {
        return await measure(() => new Promise((r) => ((want = r), s.write(chunk()))));
      } finally {
        s.destroy();
        child.disconnect();
      }
    }
    if (what === 'tcp' || what === 'chain') {
      const child = fork(new URL(import.meta.url).pathname, ['echo-server', what], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const port = await new Promise((r) => child.once('message', r));
      const s = connect({ host: '127.0.0.1', port, noDelay: true });
      await new Promise((r) => s.once('connect', r));
      const msg = Buffer.alloc(16, 1);
      let want = null;
      let got = 0;
      s.on('data', (d) => {
        got += d.length;
        if (got >= 16 && want) {
          got -= 16;
          const w = want;
          want = null;
          w();
        }
      });
      try {
        return await measure(() => new Promise((r) => ((want = r), s.write(msg))));
      } finally {
        s.destroy();
        child.disconnect();
      }
    }
    if (what === 'thread') {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(ECHO_THREAD)}`));
      const msg = { t: 'chunk', id: 1 };
      try {
        return await measure(() => new Promise((r) => (w.once('message', r), w.postMessage(msg))));
      } finally {
        await w.terminate();
      }
    }
    throw new Error(`unknown: ${what} (tcp, thread, chain, codec or inline)`);
  });
}
