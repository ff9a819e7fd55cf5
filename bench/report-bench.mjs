// Benchmark of the HTML report at scale (not a test): a synthetic results file of 1,000,000 tasks on
// 16 nodes × 8 workers, read + modelled + rendered by dist/report, then opened in headless Chromium.
//
//   npm run build && node bench/report-bench.mjs [--tasks 1000000] [--nodes 16] [--workers 8] [--out bench/out] [--no-browser]
//
// Prints: results-file size, time to read and model it, time to render the HTML, the HTML's size, and
// in Chromium (Debian's /usr/bin/chromium through playwright-core) the time from navigation to the load
// event and to the end of the first canvas draw.
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000000' },
    nodes: { type: 'string', default: '16' },
    workers: { type: 'string', default: '8' },
    out: { type: 'string', default: 'bench/out' },
    'no-browser': { type: 'boolean', default: false },
  },
});
const TASKS = Number(args.tasks);
const NODES = Number(args.nodes);
const WORKERS = Number(args.workers);
const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });
const resultsPath = join(outDir, `report-bench-${TASKS}.jsonl`);
const htmlPath = join(outDir, `report-bench-${TASKS}.html`);

const { reportFromFile, renderReport, writeModel } = await import('../dist/report/index.js');

// A small deterministic PRNG, so every run writes the same file.
let seed = 0x2545f491;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const logNormal = (median, sigma) => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()));

/** Simulate a run: each worker takes the next index when it is free; node 12 is slow, node 7 is lost at 60%. */
async function generate() {
  const t0 = 1_764_000_000_000;
  const nodes = Array.from({ length: NODES }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
  const free = [];
  for (let n = 0; n < NODES; n++) for (let w = 0; w < WORKERS; w++) free.push({ t: t0 + 200 + rand() * 300, n, w });
  // Binary heap by free time.
  const less = (a, b) => free[a].t < free[b].t;
  const swap = (a, b) => ([free[a], free[b]] = [free[b], free[a]]);
  const down = (i) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < free.length && less(l, m)) m = l;
      if (r < free.length && less(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let i = (free.length >> 1) - 1; i >= 0; i--) down(i);
  const lostNode = NODES > 7 ? 6 : -1;
  const lostAt = t0 + 0.6 * (TASKS / (NODES * WORKERS)) * 330;
  const ws = createWriteStream(resultsPath);
  const write = async (s) => {
    if (!ws.write(s)) await once(ws, 'drain');
  };
  await write(`${JSON.stringify({ slurmpool: { version: 1, command: `slurmpool map sim.mjs simulate seeds.jsonl -o results.jsonl --report report.html`, mode: 'slurm', jobId: '4242137', nodes: nodes.map((node) => ({ node, workers: WORKERS, cpus: WORKERS * 2 })), started: t0 } })}\n`);
  let buf = '';
  let ended = t0;
  for (let index = 0; index < TASKS; index++) {
    let slot = free[0];
    // The lost node takes no work after it is lost: its workers drop out of the heap.
    while (slot.n === lostNode && slot.t > lostAt && free.length > 1) {
      free[0] = free[free.length - 1];
      free.pop();
      down(0);
      slot = free[0];
    }
    const started = slot.t + 0.2 + rand() * 1.5;
    let ms = logNormal(280, 0.45) * (slot.n === 11 ? 1.7 : 1);
    const r = rand();
    const fail = r < 0.0005;
    const retried = !fail && r < 0.0025;
    const redispatched = !fail && !retried && index > TASKS * 0.6 && index < TASKS * 0.6 + 40;
    if (retried) ms *= 2;
    const end = started + ms;
    const rec = { index, ok: !fail, node: nodes[slot.n], worker: slot.w, started: Math.round(started), ended: Math.round(end), attempts: retried ? 2 : 1 };
    if (fail) rec.error = { name: 'ValueError', message: `model diverged for seed ${index * 7919}`, kind: 'error' };
    else rec.value = Math.round(ms * 1000) / 1000;
    if (redispatched) rec.redispatched = true;
    buf += `${JSON.stringify(rec)}\n`;
    if (buf.length > 4_000_000) {
      await write(buf);
      buf = '';
    }
    slot.t = end;
    if (end > ended) ended = end;
    down(0);
  }
  await write(buf);
  ws.end();
  await once(ws, 'finish');
}

const mb = (b) => `${(b / 1e6).toFixed(2)} MB`;
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;

let t = performance.now();
await generate();
console.log(`results file: ${resultsPath}: ${TASKS.toLocaleString('en-US')} tasks, ${NODES} nodes × ${WORKERS} workers, ${mb(statSync(resultsPath).size)} (written in ${s(performance.now() - t)})`);

t = performance.now();
const model = await reportFromFile(resultsPath);
const tModel = performance.now() - t;
t = performance.now();
const html = renderReport(model);
const tRender = performance.now() - t;
await writeModel(model, htmlPath);
const rss = process.memoryUsage().rss;
console.log(`read + model: ${s(tModel)} (timeline: ${model.timeline.mode}, ${model.counts.bars.toLocaleString('en-US')} bars, ${model.lanes.length} lanes${model.timeline.mode === 'bins' ? ` × ${model.timeline.bins} bins, ${model.timeline.special.lane.length} bars kept on top` : ''}); render: ${s(tRender)}; rss ${mb(rss)}`);
console.log(`report: ${htmlPath}: ${mb(Buffer.byteLength(html))}`);

if (!args['no-browser']) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'slurmpool-report-bench-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1600, height: 1000 },
  });
  try {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      const w0 = performance.now();
      await page.goto(`file://${htmlPath}`, { waitUntil: 'load', timeout: 120_000 });
      await page.waitForSelector('#timeline[data-ready="1"]', { timeout: 120_000 });
      const wall = performance.now() - w0;
      const m = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        return { load: nav.loadEventEnd, firstDraw: window.slurmpoolReport.firstDrawMs };
      });
      if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
      runs.push({ ...m, wall });
      await page.close();
    }
    for (const [i, r] of runs.entries()) console.log(`chromium run ${i + 1}: navigation → load event ${s(r.load)}, → first canvas draw done ${s(r.firstDraw)} (wall from goto to drawn: ${s(r.wall)})`);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
