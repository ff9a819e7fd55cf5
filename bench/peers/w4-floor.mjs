// The floor under W4 for any worker-thread pool: start node, start two empty ES-module worker threads, wait until both answer, exit.
import { Worker } from 'node:worker_threads';

const src = `import { parentPort } from 'node:worker_threads'; parentPort.postMessage(1);`;
const url = new URL(`data:text/javascript,${encodeURIComponent(src)}`);
const ws = [new Worker(url), new Worker(url)];
await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
await Promise.all(ws.map((w) => w.terminate()));
