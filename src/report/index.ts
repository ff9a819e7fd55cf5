// The run report: results file → model → one self-contained HTML file; and the live status of a running job.
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { renderReport, type RenderOptions } from './html.js';
import { ReportBuilder, type ModelOptions, type ReportModel } from './model.js';
import { scanResults } from './read.js';
import type { RunMeta } from './records.js';

export { renderReport, COLORS, type RenderOptions } from './html.js';
export { ReportBuilder, buildReport, buildReportSync, type ModelOptions, type ReportModel, type Lane, type NodeSummary, type Bars, type Timeline, type Utilization, type TaskRow, type Header, type Counts } from './model.js';
export { readResults, scanResults, type ResultLine, type ReadOptions } from './read.js';
export { OUTCOMES, normalizeRecord, metaOf, type Outcome, type RunMeta, type MetaNode, type NormRecord } from './records.js';
export { StatusTracker, statusFromResults, renderStatus, type RunStatus, type NodeProgress, type StatusOptions } from './status.js';

export interface WriteReportOptions extends ModelOptions, RenderOptions {
  /** Called for each skipped line of the results file (`file:line: why`). */
  onWarning?: (text: string) => void;
}

/** What writeReport wrote. */
export interface WrittenReport {
  path: string;
  bytes: number;
  model: ReportModel;
}

/** The model of a results file (JSON Lines, streamed); `meta` fills in what the file's metadata lines do not say. */
export async function reportFromFile(resultsPath: string, meta?: RunMeta, options?: WriteReportOptions): Promise<ReportModel> {
  const builder = new ReportBuilder(options);
  const warn = (w: string) => {
    builder.warn(w);
    options?.onWarning?.(w);
  };
  await scanResults(resultsPath, (l) => builder.addParsed(l), { onWarning: warn });
  return builder.finish(meta);
}

/** Read a results file and write its HTML report to `outPath` (atomically: a sibling file renamed over). */
export async function writeReport(resultsPath: string, outPath: string, meta?: RunMeta, options?: WriteReportOptions): Promise<WrittenReport> {
  const model = await reportFromFile(resultsPath, meta, options);
  return writeModel(model, outPath, options);
}

/** Render a model (from a ReportBuilder fed during a run) and write it to `outPath` atomically. */
export async function writeModel(model: ReportModel, outPath: string, options?: RenderOptions): Promise<WrittenReport> {
  const html = renderReport(model, options);
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, html, { mode: 0o666 }); // less the umask, as any tool's output
    await rename(tmp, outPath);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  return { path: outPath, bytes: Buffer.byteLength(html), model };
}
