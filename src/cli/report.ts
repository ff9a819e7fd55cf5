// slurmpool report and slurmpool status: the HTML report of a results file, and a run's progress per node.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderStatus, StatusTracker, writeReport } from '../report/index.js';
import { CliError, EXIT } from './errors.js';
import type { Renderer } from './render.js';

function resultsPath(args: Record<string, unknown>): string {
  const p = String(args.results ?? '');
  if (!p) throw new CliError('give the results file (the --output of run or map)');
  const abs = resolve(p);
  if (!existsSync(abs)) throw new CliError(`results file ${p} does not exist`);
  return abs;
}

/** slurmpool report RESULTS [-o FILE]: one self-contained HTML file. */
export async function reportCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const input = resultsPath(args);
  const out = typeof args.out === 'string' && args.out ? resolve(args.out) : input.replace(/(\.jsonl?|\.ndjson)?$/, '.html');
  const w = await writeReport(input, out, undefined, { onWarning: (t) => r.warn(t) });
  const c = w.model.counts;
  if (r.kind === 'json') process.stdout.write(`${JSON.stringify({ event: 'report', path: w.path, bytes: w.bytes, tasks: c.tasks, failed: c.failed })}\n`);
  else r.note(`report: ${w.path} (${Math.round(w.bytes / 1024)} KB, ${c.tasks} tasks, ${c.failed} failed)`);
  return EXIT.ok;
}

/** slurmpool status RESULTS [--watch SECONDS]: done, failed and rate per node, from the results file. */
export async function statusCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const input = resultsPath(args);
  const tracker = new StatusTracker(input);
  const watch = args.watch === undefined ? 0 : Number(args.watch);
  if (!Number.isFinite(watch) || watch < 0) throw new CliError(`--watch must be a number of seconds, got ${JSON.stringify(args.watch)}`);
  for (;;) {
    const s = await tracker.poll();
    if (r.kind === 'json') process.stdout.write(`${JSON.stringify(s)}\n`);
    else process.stdout.write(`${renderStatus(s)}\n`);
    if (!watch) return EXIT.ok;
    await new Promise((res) => setTimeout(res, watch * 1000));
  }
}
