// The report of a real (emulated) run, opened in headless Chromium: what a person sees, and that nothing leaves the page.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { Pool, type TaskRecord } from '../../dist/index.js';
import { COLORS, writeReport } from '../../dist/report/index.js';

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
// CI installs Debian's chromium (scripts/ci/install-deps.sh): there a missing browser is a failure, elsewhere a skip.
if (!have && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`);

const FAILING = [5, 17];
const TASKS = 24;

describe.skipIf(!have)('the report in a browser', () => {
  let dir: string;
  let ctx: BrowserContext;
  let page: Page;
  let url: string;
  let records: TaskRecord[];
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'slurmpool-report-browser-'));
    // A real run: 2 emulated nodes × 2 workers, every task its own chunk, two of them throwing.
    const pool = await Pool.open({ module: new URL('../fixtures/report/tasks.mjs', import.meta.url), emulate: '2x2', log: false });
    const meta = { version: 1, command: 'slurmpool map tasks.mjs work items.jsonl', mode: pool.mode, nodes: pool.nodes.map((n) => ({ node: n.node, workers: n.workers, cpus: n.cpus })), started: Date.now() };
    records = [];
    try {
      const items = Array.from({ length: TASKS }, (_, i) => ({ i, ms: 8 + (i % 5) * 4, fail: FAILING.includes(i) }));
      for await (const r of pool.imapRecords('work', items, { chunksize: 1 })) records.push(r);
    } finally {
      await pool.close();
    }
    const results = join(dir, 'results.jsonl');
    writeFileSync(results, [JSON.stringify({ slurmpool: meta }), ...records.map((r) => JSON.stringify(r))].join('\n') + '\n');
    const out = join(dir, 'report.html');
    await writeReport(results, out);
    url = pathToFileURL(out).href;

    const { chromium } = await import('playwright-core');
    ctx = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = await ctx.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    await page.goto(url);
    await page.waitForSelector('#timeline[data-ready="1"]');
  });

  afterAll(async () => {
    await ctx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows one lane per worker, grouped under its node', async () => {
    const groups = await page.$$eval('#timeline .node-group', (gs) =>
      gs.map((g) => ({ node: g.getAttribute('data-node'), label: g.querySelector('.node-label b')?.textContent, lanes: [...g.querySelectorAll('.lane-label')].map((l) => [l.textContent, l.getAttribute('data-node')]) })),
    );
    expect(groups).toEqual([
      { node: 'emu1', label: 'emu1', lanes: [['emu1/0', 'emu1'], ['emu1/1', 'emu1']] },
      { node: 'emu2', label: 'emu2', lanes: [['emu2/0', 'emu2'], ['emu2/1', 'emu2']] },
    ]);
    // every worker that ran a task has its lane
    const ran = new Set(records.map((r) => `${r.node}/${r.worker}`));
    const labels = groups.flatMap((g) => g.lanes.map((l) => l[0]));
    for (const w of ran) expect(labels).toContain(w);
    expect(await page.getAttribute('#timeline', 'data-lanes')).toBe('4');
  });

  it('draws one bar per task', async () => {
    expect(records).toHaveLength(TASKS);
    const attrs = await page.$eval('#timeline', (t) => ({ tasks: t.getAttribute('data-tasks'), bars: t.getAttribute('data-bars'), drawn: t.getAttribute('data-drawn-bars') }));
    expect(attrs).toEqual({ tasks: String(TASKS), bars: String(TASKS), drawn: String(TASKS) });
    // each task's bar is where its record says: in its worker's lane
    for (const r of records) {
      const at = await page.evaluate((i) => (window as unknown as { slurmpoolReport: { locate(i: number): { lane: string } | null } }).slurmpoolReport.locate(i), r.index);
      expect(at?.lane).toBe(`${r.node}/${r.worker}`);
    }
  });

  it('shows a failed task as failed: red on the timeline, named on hover, listed with its error and node', async () => {
    const failed = records.filter((r) => !r.ok).map((r) => r.index).sort((a, b) => a - b);
    expect(failed).toEqual(FAILING);
    for (const index of FAILING) {
      const at = await page.evaluate((i) => (window as unknown as { slurmpoolReport: { locate(i: number): { x: number; y: number; outcome: string } | null } }).slurmpoolReport.locate(i), index);
      expect(at).toMatchObject({ outcome: 'failed' });
      // the pixel under the bar's centre has the failed colour
      const rgb = await page.evaluate(
        ({ x, y }) => {
          const cv = document.getElementById('tl-canvas') as HTMLCanvasElement;
          const r = cv.getBoundingClientRect();
          // read a copy, so the page's own canvas is not read back (Chrome would warn about it)
          const copy = document.createElement('canvas');
          copy.width = cv.width;
          copy.height = cv.height;
          const cc = copy.getContext('2d', { willReadFrequently: true })!;
          cc.drawImage(cv, 0, 0);
          const d = cc.getImageData(Math.round((x - r.left) * (cv.width / r.width)), Math.round((y - r.top) * (cv.height / r.height)), 1, 1).data;
          return [d[0], d[1], d[2]];
        },
        { x: at!.x, y: at!.y },
      );
      const want = COLORS.failed.match(/[0-9a-f]{2}/gi)!.map((h) => parseInt(h, 16));
      rgb.forEach((c, k) => expect(Math.abs(c! - want[k]!)).toBeLessThanOrEqual(2));
      await page.mouse.move(at!.x, at!.y);
      const tip = page.locator('#tip');
      await expect.poll(() => tip.isVisible()).toBe(true);
      const text = await tip.innerText();
      expect(text).toContain(`task #${index}`);
      expect(text).toMatch(/failed · \d/);
      expect(text).toContain(`RangeError: item ${index} failed on purpose`);
    }
    const rows = await page.$$eval('#failed tbody tr', (trs) => trs.map((tr) => ({ index: tr.getAttribute('data-index'), cls: tr.className, text: (tr as HTMLElement).innerText })));
    expect(rows.map((r) => Number(r.index))).toEqual(FAILING);
    for (const row of rows) {
      const r = records.find((x) => x.index === Number(row.index))!;
      expect(row.cls).toBe('failed');
      expect(row.text).toContain(`${r.node}/${r.worker}`);
      expect(row.text).toContain(`RangeError: item ${r.index} failed on purpose`);
    }
    expect(await page.locator('.legend [data-outcome="failed"] b').innerText()).toBe(String(FAILING.length));
  });

  it('hovering an ok bar names its task and duration; dragging zooms, double-click resets', async () => {
    const ok = records.find((r) => r.ok)!;
    const at = await page.evaluate((i) => (window as unknown as { slurmpoolReport: { locate(i: number): { x: number; y: number } } }).slurmpoolReport.locate(i), ok.index);
    await page.mouse.move(at.x, at.y);
    const text = await page.locator('#tip').innerText();
    expect(text).toContain(`task #${ok.index}`);
    expect(text).toContain(`ok · `);
    expect(text).toContain(`${ok.node}/${ok.worker}`);
    const box = (await page.locator('#tl-canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + 5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, box.y + 5, { steps: 4 });
    await page.mouse.up();
    expect(await page.locator('#reset-zoom').isVisible()).toBe(true);
    expect(Number(await page.getAttribute('#timeline', 'data-drawn-bars'))).toBeLessThan(TASKS);
    await page.mouse.dblclick(box.x + 10, box.y + 5);
    expect(await page.locator('#reset-zoom').isVisible()).toBe(false);
    expect(await page.getAttribute('#timeline', 'data-drawn-bars')).toBe(String(TASKS));
  });

  it('logs no console error, and no request leaves the page (only the file itself is loaded)', async () => {
    expect(consoleErrors).toEqual([]);
    expect(requests).toEqual([url]);
  });
});
