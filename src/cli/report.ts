// slurmpool report and slurmpool status: the HTML report of a results file, and a run's progress per node.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderStatus, reportFromFile, StatusTracker, writeModel } from '../report/index.js';
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
  // Skipped lines are told after the file is known to be a results file: a text file would print one per line.
  const warnings: string[] = [];
  let moreWarnings = 0;
  const model = await reportFromFile(input, undefined, { onWarning: (t) => (warnings.length < WARNINGS_SHOWN ? warnings.push(t) : moreWarnings++) });
  const c = model.counts;
  if (c.records === 0) {
    const shown = String(args.results);
    if (warnings.length > 0) {
      const m = /^(.*?):(\d+): (.*?)(; skipped|; ignored)?$/.exec(warnings[0]!);
      const where = m ? `${shown} line ${m[2]}: ${m[3]}` : warnings[0]!;
      throw new CliError(`${shown} is not a results file: no line of it is a task record (${where})`, EXIT.usage, 'give the --output file of slurmpool run or map (JSON Lines, one record per task)');
    }
    throw new CliError(`${shown} holds no task records${model.header.command ? ` yet (its run: ${model.header.command})` : statSync(input).size === 0 ? ' (it is empty)' : ''}: nothing to report`);
  }
  for (const w of warnings) r.warn(w);
  if (moreWarnings) r.warn(`… and ${moreWarnings} more lines skipped`);
  const w = await writeModel(model, out);
  const mode = model.header.mode ? `, ${model.header.mode} mode` : '';
  if (r.kind === 'json') process.stdout.write(`${JSON.stringify({ event: 'report', path: w.path, bytes: w.bytes, tasks: c.tasks, failed: c.failed, mode: model.header.mode ?? null })}\n`);
  else r.note(`report: ${w.path} (${Math.round(w.bytes / 1024)} KB, ${c.tasks} tasks, ${c.failed} failed${mode})`);
  return EXIT.ok;
}

/** Skipped lines printed by `report`; the rest are counted. */
const WARNINGS_SHOWN = 20;

/** slurmpool status RESULTS [--watch SECONDS]: done, failed and rate per node, from the results file. */
export async function statusCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const input = resultsPath(args);
  const tracker = new StatusTracker(input);
  const watch = args.watch === undefined ? 0 : Number(args.watch);
  if (!Number.isFinite(watch) || watch < 0) throw new CliError(`--watch must be a number of seconds, got ${JSON.stringify(args.watch)}`);
  for (;;) {
    const s = await tracker.poll();
    if (s.done === 0 && s.warnings.length > 0 && Object.keys(s.meta).length === 0) {
      const m = /^(.*?):(\d+): (.*?)(; skipped)?$/.exec(s.warnings[0]!);
      throw new CliError(`${String(args.results)} is not a results file: no line of it is a task record (${m ? `${String(args.results)} line ${m[2]}: ${m[3]}` : s.warnings[0]})`);
    }
    if (r.kind === 'json') process.stdout.write(`${JSON.stringify(s)}\n`);
    else process.stdout.write(`${renderStatus(s)}\n`);
    if (!watch) return EXIT.ok;
    await new Promise((res) => setTimeout(res, watch * 1000));
  }
}
