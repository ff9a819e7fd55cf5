// The run header: the first line of every results file the CLI writes, `{"slurmpool":{…}}`, saying
// what the run was (run or map, mode, job, command line, total tasks) and what defines its work
// (the task file's hash; the module, its hash, the export and the input), which --resume checks.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** What defines the work of a `run`: the task file's content. */
export interface RunWork {
  /** The task file as given ("-" for standard input). */
  taskFile: string;
  sha256: string;
}

/** What defines the work of a `map`: the module's path and content, the export, and the input. */
export interface MapWork {
  module: string;
  moduleSha256: string;
  fn: string;
  star: boolean;
  input: { file: string; sha256: string } | { range: string } | { stdin: true; sha256: string };
}

/** The `slurmpool` object of a header line. */
export interface RunHeader {
  version: 1;
  /** The subcommand that wrote the file. */
  run: 'run' | 'map';
  /** shell (commands) or call (an export). */
  kind: 'shell' | 'call';
  /** The command line as typed, quoted for a shell. */
  command: string;
  mode: string;
  jobId?: string;
  /** Tasks the run was given. */
  tasks: number;
  /** The export (map), for the report's header. */
  fn?: string;
  /** --grow: the most extra nodes, per job, and the sbatch options; each job submitted follows as a `{"slurmpool":{"event":"grow","job":…}}` line. */
  grow?: { nodes: number; nodesPerJob: number; sbatch?: string };
  /** Epoch ms when this run started (a resumed run appends its own header). */
  started: number;
  work: RunWork | MapWork;
}

/** sha256 of a string or buffer, hex. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file's content, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The header line of a results file. */
export function headerLine(h: RunHeader): string {
  return JSON.stringify({ slurmpool: h });
}

/** The `slurmpool` object of a parsed results-file line, or null when the line is not a header. */
export function headerOf(v: unknown): Record<string, unknown> | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const h = (v as Record<string, unknown>).slurmpool;
  return h !== null && typeof h === 'object' && !Array.isArray(h) ? (h as Record<string, unknown>) : null;
}

const short = (h: unknown) => (typeof h === 'string' ? h.slice(0, 12) : String(h));

function describeInput(i: unknown): string {
  if (i === null || typeof i !== 'object') return String(i);
  const o = i as Record<string, unknown>;
  if (typeof o.range === 'string') return `--range ${o.range}`;
  if (o.stdin === true) return `standard input (sha256 ${short(o.sha256)}…)`;
  return `--input ${String(o.file)} (sha256 ${short(o.sha256)}…)`;
}

/** What identifies an input: a file or standard input by its content (not its path), a range by itself. */
function inputKey(i: unknown): string {
  if (i === null || typeof i !== 'object') return String(i);
  const o = i as Record<string, unknown>;
  return typeof o.range === 'string' ? `range ${o.range}` : `content ${String(o.sha256)}`;
}

/** Why a header written by another subcommand cannot be continued by `run`, or null. */
export function kindMismatch(saved: Record<string, unknown>, run: RunHeader['run'], file: string, line: number): string | null {
  if (saved.run === undefined || saved.run === run) return null;
  return `${file} was written by \`slurmpool ${String(saved.run)}\` (${file} line ${line}); this is \`slurmpool ${run}\`: a results file continues only the kind of run that started it`;
}

/** Why a header's work identity differs from `now`'s, every difference named, or null. */
export function workMismatch(saved: Record<string, unknown>, now: Pick<RunHeader, 'run' | 'work'>, file: string, line: number): string | null {
  const where = `${file} line ${line}`;
  const w = saved.work;
  if (w === null || typeof w !== 'object') return null; // a header without a work identity (older file): the records are checked instead
  const s = w as Record<string, unknown>;
  const diffs: string[] = [];
  if (now.run === 'run') {
    const n = now.work as RunWork;
    if (s.sha256 !== n.sha256) {
      diffs.push(`the task file's content: ${String(s.taskFile)} had sha256 ${short(s.sha256)}…, ${n.taskFile} has ${short(n.sha256)}… now`);
    }
  } else {
    const n = now.work as MapWork;
    if (s.module !== n.module) diffs.push(`the module: ${String(s.module)} then, ${n.module} now`);
    else if (s.moduleSha256 !== n.moduleSha256) diffs.push(`the module's content: ${n.module} had sha256 ${short(s.moduleSha256)}…, has ${short(n.moduleSha256)}… now`);
    if (s.fn !== n.fn) diffs.push(`the export: '${String(s.fn)}' then, '${n.fn}' now`);
    if ((s.star === true) !== n.star) diffs.push(`--star: ${s.star === true ? 'on' : 'off'} then, ${n.star ? 'on' : 'off'} now`);
    if (inputKey(s.input) !== inputKey(n.input)) diffs.push(`the input: ${describeInput(s.input)} then, ${describeInput(n.input)} now`);
  }
  if (diffs.length === 0) return null;
  return `the work changed since ${file} was started (header at ${where}): ${diffs.join('; ')}`;
}
