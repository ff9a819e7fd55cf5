// The options run and map share: yargs definitions, SLURMPOOL_* defaults, and one resolver into a typed value.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Options as YargsOption } from 'yargs';
import type { PoolOptions } from '../options.js';
import { parseEmulate } from '../options.js';
import { OptionError } from '../errors.js';
import { parseDuration } from './durations.js';
import { compressHostlist, readAllocation } from '../slurm/index.js';
import { CliError, EXIT } from './errors.js';
import { parseHalt, type Halt } from './halt.js';

/** Options of run and map, as yargs reads them (numbers and durations as strings, checked by resolveCommon). */
export const COMMON_OPTIONS: Record<string, YargsOption> = {
  workers: { alias: 'w', type: 'string', group: 'Workers:', describe: 'Worker slots per node [default: CPUs of the node / --cpus-per-task]' },
  'cpus-per-task': { alias: 'c', type: 'string', group: 'Workers:', describe: 'Cores each task gets to itself: ⌊cpus/N⌋ tasks at once per node, OMP_NUM_THREADS=N (over inherited values), pinned with taskset [default: 1, unpinned]' },
  'gpus-per-task': { type: 'string', group: 'Workers:', describe: 'GPUs each task gets to itself: ⌊GPUs of the node/N⌋ tasks at once per node (with the CPU limit), each with its own CUDA_VISIBLE_DEVICES; a node without N GPUs is an error [default: 0, GPUs not handed out]' },
  'keep-thread-env': { type: 'boolean', group: 'Workers:', describe: 'Keep OMP_NUM_THREADS and friends where the environment sets them, instead of pinning them to --cpus-per-task' },
  chunksize: { type: 'string', group: 'Workers:', describe: 'Tasks sent to a worker at a time [default: adaptive, about 50 ms of work]' },
  retries: { type: 'string', group: 'Workers:', describe: 'Times a task runs again after it failed (run: non-zero exit or --timeout; map: an error thrown) or its worker died; a lost node\'s tasks are re-sent regardless [default: 0 for failures, 1 for worker deaths]' },
  halt: { type: 'string', group: 'Stopping:', describe: 'Stop early as GNU parallel: now|soon,fail|success|done=N or =P% (now,fail=1: at the first failure, stopping running tasks, recorded as cancelled; soon: let them finish); the exit status is then GNU parallel\'s [default: never]' },
  timeout: { type: 'string', group: 'Workers:', describe: 'Time limit per task: 90, 90s, 15m, 2h, 1:30:00 [default: none]' },
  output: { alias: 'o', type: 'string', group: 'Results:', describe: 'Results file: one JSON line per task, and the journal --resume reads' },
  resume: { type: 'boolean', group: 'Results:', describe: 'Keep the records of tasks that succeeded in --output and run only the others' },
  overwrite: { type: 'boolean', group: 'Results:', describe: 'Start --output afresh even if it holds records' },
  report: { type: 'string', group: 'Results:', describe: 'Also write a self-contained HTML report of the run (timeline per worker, utilization, failures) to FILE' },
  'log-dir': { type: 'string', group: 'Results:', describe: 'Folder for output larger than --inline-max, one file per task in subfolders of 1,000' },
  'inline-max': { type: 'string', group: 'Results:', describe: 'Bytes of stdout/stderr kept in the record [default: 4096 with --log-dir, else 65536]' },
  emulate: { type: 'string', group: 'Where:', describe: 'Emulate an allocation on this machine: NxC (N nodes of C CPUs), or CPUs node by node (2,2,1)' },
  local: { type: 'boolean', group: 'Where:', describe: 'Use this machine only, even inside a multi-node allocation' },
  hosts: { type: 'string', group: 'Where:', describe: 'Run on these hosts over SSH: name[:cpus],…' },
  hostfile: { type: 'string', group: 'Where:', describe: 'File of hosts for SSH, one name[:cpus] a line' },
  'join-file': { type: 'string', group: 'Where:', describe: 'Let agents of other allocations join (slurmpool join FILE): write the join file here (a file, or a folder) [default with no value or with --grow: ~/.slurmpool/join-PID.json]' },
  grow: { type: 'string', group: 'Where:', describe: 'Submit up to N more nodes with sbatch while the backlog would keep them busy; cancelled when the run ends (docs/elastic.md)' },
  'grow-nodes': { type: 'string', group: 'Where:', describe: 'Nodes per job --grow submits [default: 1]' },
  'grow-sbatch': { type: 'string', group: 'Where:', describe: "sbatch options of the jobs --grow submits, in one string: '-p short -t 30 -A proj'" },
  'min-nodes': { type: 'string', group: 'Where:', describe: 'Go on with this many nodes when others fail to start [default: all]' },
  grace: { type: 'string', group: 'Stopping:', describe: 'On SIGTERM/SIGUSR1/SIGUSR2, time running tasks get to finish [default: 30s]' },
  'time-left': { type: 'string', group: 'Stopping:', describe: 'Time until the allocation ends [default: from SLURM_JOB_END_TIME or squeue]' },
  quiet: { alias: 'q', type: 'boolean', group: 'Display:', describe: 'Print only errors and failures' },
  json: { type: 'boolean', group: 'Display:', describe: 'Progress, notes and the summary as JSON' },
  'progress-every': { type: 'string', group: 'Display:', describe: 'Seconds between progress lines when stderr is not a terminal [default: 30]' },
};

/** The environment variable that gives an option its default: --cpus-per-task ← SLURMPOOL_CPUS_PER_TASK. */
export function envName(option: string): string {
  return `SLURMPOOL_${option.toUpperCase().replace(/-/g, '_')}`;
}

/** Options resolved: every default applied, every value checked. */
export interface Common {
  workers: number | undefined;
  cpusPerTask: number | undefined;
  gpusPerTask: number | undefined;
  keepThreadEnv: boolean;
  chunksize: number | undefined;
  retries: number | undefined;
  /** --halt; null: never. */
  halt: Halt | null;
  timeoutMs: number;
  output: string | null;
  report: string | null;
  resume: boolean;
  overwrite: boolean;
  logDir: string | null;
  inlineMax: number | undefined;
  emulate: string | undefined;
  local: boolean;
  hosts: string[] | undefined;
  minNodes: number | undefined;
  /** --join-file: true (the default file) or a path; null without it (and without --grow). */
  joinFile: true | string | null;
  /** --grow N (0: none), --grow-nodes, --grow-sbatch. */
  grow: number;
  growNodes: number;
  growSbatch: string | undefined;
  /** Where minNodes came from: `--min-nodes` or `SLURMPOOL_MIN_NODES`. */
  minNodesFrom: string;
  graceMs: number;
  timeLeftMs: number | undefined;
  quiet: boolean;
  json: boolean;
  progressEveryMs: number;
}

type Argv = Record<string, unknown>;

/** An option's value: the command line first, then SLURMPOOL_*, as a string (or boolean) with where it came from. */
function raw(argv: Argv, name: string, env: NodeJS.ProcessEnv): { v: string | boolean; from: string } | undefined {
  const a = argv[name];
  if (a !== undefined && a !== null) {
    if (Array.isArray(a)) return { v: String(a[a.length - 1]), from: `--${name}` };
    return { v: typeof a === 'boolean' ? a : String(a), from: `--${name}` };
  }
  const e = env[envName(name)];
  if (e !== undefined && e !== '') return { v: e, from: envName(name) };
  return undefined;
}

function int(argv: Argv, name: string, env: NodeJS.ProcessEnv, min: number): number | undefined {
  const r = raw(argv, name, env);
  if (r === undefined) return undefined;
  const s = String(r.v).trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new CliError(`${r.from} must be ${min === 0 ? 'a whole number ≥ 0' : 'a positive whole number'}, got ${JSON.stringify(r.v)}`);
  }
  return n;
}

function bool(argv: Argv, name: string, env: NodeJS.ProcessEnv): boolean {
  const r = raw(argv, name, env);
  if (r === undefined) return false;
  if (typeof r.v === 'boolean') return r.v;
  const s = r.v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new CliError(`${r.from} must be true or false (1/0, yes/no), got ${JSON.stringify(r.v)}`);
}

function str(argv: Argv, name: string, env: NodeJS.ProcessEnv): string | undefined {
  const r = raw(argv, name, env);
  if (r === undefined || typeof r.v === 'boolean') return undefined;
  return r.v;
}

function duration(argv: Argv, name: string, env: NodeJS.ProcessEnv): number | undefined {
  const r = raw(argv, name, env);
  if (r === undefined) return undefined;
  return parseDuration(String(r.v), r.from);
}

/** Read --hostfile: one host a line, # comments and blank lines skipped. */
export function readHostfile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`--hostfile ${path} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message}`);
  }
  const hosts = text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  if (hosts.length === 0) throw new CliError(`--hostfile ${path} names no hosts`);
  return hosts;
}

/** Check and default the shared options; CliError (exit 2) quoting the first bad value. */
export function resolveCommon(argv: Argv, env: NodeJS.ProcessEnv = process.env): Common {
  const emulate = str(argv, 'emulate', env);
  if (emulate !== undefined) {
    try {
      parseEmulate(emulate, raw(argv, 'emulate', env)!.from);
    } catch (e) {
      throw new CliError(e instanceof OptionError ? e.message : String(e));
    }
  }
  const hostsArg = str(argv, 'hosts', env);
  const hostfile = str(argv, 'hostfile', env);
  let hosts: string[] | undefined;
  if (hostsArg !== undefined) hosts = hostsArg.split(',').map((h) => h.trim()).filter(Boolean);
  if (hostfile !== undefined) hosts = [...(hosts ?? []), ...readHostfile(hostfile)];
  if (hosts !== undefined && hosts.length === 0) throw new CliError(`--hosts names no hosts`);
  const local = bool(argv, 'local', env);
  const places = [emulate !== undefined && '--emulate', hosts !== undefined && '--hosts/--hostfile', local && '--local'].filter(Boolean);
  if (places.length > 1) throw new CliError(`${places.join(' and ')} cannot be used together`);
  const output = str(argv, 'output', env);
  const report = str(argv, 'report', env);
  const logDir = str(argv, 'log-dir', env);
  const resume = bool(argv, 'resume', env);
  const overwrite = bool(argv, 'overwrite', env);
  if (resume && overwrite) throw new CliError('--resume and --overwrite cannot be used together');
  if (resume && output === undefined) throw new CliError('--resume needs --output FILE: the results file is the journal it resumes from');
  const every = duration(argv, 'progress-every', env);
  const halt = raw(argv, 'halt', env);
  const grow = int(argv, 'grow', env, 0) ?? 0;
  const growNodes = int(argv, 'grow-nodes', env, 1) ?? 1;
  if (grow > 0 && growNodes > grow) throw new CliError(`--grow-nodes ${growNodes} is more than --grow ${grow}: no job could be submitted`);
  const jf = raw(argv, 'join-file', env);
  // With no value (or SLURMPOOL_JOIN_FILE=1): the default file.
  const yes = jf !== undefined && (jf.v === true || jf.v === '' || (jf.from !== '--join-file' && ['1', 'true', 'yes', 'on'].includes(String(jf.v).toLowerCase())));
  const no = jf === undefined || jf.v === false || (jf.from !== '--join-file' && ['0', 'false', 'no', 'off'].includes(String(jf.v).toLowerCase()));
  const joinFile = no ? null : yes ? true : resolve(String(jf.v));
  return {
    workers: int(argv, 'workers', env, 1),
    cpusPerTask: int(argv, 'cpus-per-task', env, 1),
    gpusPerTask: int(argv, 'gpus-per-task', env, 0),
    keepThreadEnv: bool(argv, 'keep-thread-env', env),
    chunksize: int(argv, 'chunksize', env, 1),
    retries: int(argv, 'retries', env, 0),
    halt: halt === undefined ? null : parseHalt(String(halt.v), halt.from),
    timeoutMs: duration(argv, 'timeout', env) ?? 0,
    output: output === undefined ? null : resolve(output),
    report: report === undefined ? null : resolve(report),
    resume,
    overwrite,
    logDir: logDir === undefined ? null : resolve(logDir),
    inlineMax: int(argv, 'inline-max', env, 0),
    emulate,
    local,
    hosts,
    minNodes: int(argv, 'min-nodes', env, 1),
    joinFile,
    grow,
    growNodes,
    growSbatch: str(argv, 'grow-sbatch', env),
    minNodesFrom: raw(argv, 'min-nodes', env)?.from ?? '--min-nodes',
    graceMs: duration(argv, 'grace', env) ?? 30_000,
    timeLeftMs: duration(argv, 'time-left', env),
    quiet: bool(argv, 'quiet', env),
    json: bool(argv, 'json', env),
    progressEveryMs: every === undefined ? 30_000 : Math.max(100, every),
  };
}

/** The Pool options for these settings; `extraEnv` reaches every task's environment. */
export function poolOptions(c: Common, extraEnv: Record<string, string>, log: ((line: string) => void) | false): PoolOptions {
  // extraEnv goes to the tasks through the agents' configuration, so that it reaches SSH hosts too.
  const o: PoolOptions = { env: process.env, taskEnv: extraEnv, log };
  if (c.workers !== undefined) o.workers = c.workers;
  if (c.cpusPerTask !== undefined) o.threadsPerTask = c.cpusPerTask;
  if (c.keepThreadEnv) o.keepThreadEnv = true;
  if (c.gpusPerTask) o.gpusPerTask = c.gpusPerTask;
  if (c.retries !== undefined) o.retries = c.retries;
  if (c.timeoutMs > 0) o.timeout = c.timeoutMs;
  if (c.emulate !== undefined) o.emulate = c.emulate;
  if (c.hosts !== undefined) o.hosts = c.hosts;
  if (c.local) o.mode = 'local';
  if (c.minNodes !== undefined) o.minNodes = c.minNodes;
  if (c.joinFile !== null) o.joinFile = c.joinFile;
  if (c.grow > 0) o.grow = { nodes: c.grow, nodesPerJob: c.growNodes, ...(c.growSbatch !== undefined ? { sbatch: c.growSbatch } : {}) };
  return o;
}

/** How many nodes a run with these settings starts, and what they are, in words; null when unknown before starting. */
export function plannedNodes(c: Common, env: NodeJS.ProcessEnv): { count: number; what: string } | null {
  if (c.local) return { count: 1, what: 'this machine (--local)' };
  if (c.emulate !== undefined) {
    const spec = parseEmulate(c.emulate, 'emulate');
    return { count: spec.nodes, what: `the emulated allocation ${c.emulate}` };
  }
  if (c.hosts !== undefined) return { count: c.hosts.length, what: `the hosts named (${c.hosts.join(', ')})` };
  if (env.SLURMPOOL_AGENT === '1') return { count: 1, what: 'this node (inside an agent)' };
  const job = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (!job) return { count: 1, what: 'this machine (not inside a Slurm allocation)' };
  let alloc;
  try {
    alloc = readAllocation(env);
  } catch {
    return null; // malformed SLURM_* variables: Pool.open names them
  }
  if (!alloc) return null;
  return { count: alloc.nodes.length, what: `Slurm job ${alloc.jobId}'s allocation (${compressHostlist(alloc.nodes)})` };
}

/**
 * Refuse node counts the run cannot meet: --min-nodes (or SLURMPOOL_MIN_NODES) above the nodes it
 * starts, and SLURMPOOL_NODES, which is not a setting (slurmpool uses every node it is given).
 */
export function checkNodeCounts(c: Common, env: NodeJS.ProcessEnv): void {
  const planned = plannedNodes(c, env);
  const asked = env.SLURMPOOL_NODES;
  if (asked !== undefined && asked !== '') {
    const more = planned && /^\d+$/.test(asked.trim()) && Number(asked) > planned.count ? `, and ${asked.trim()} is more than the ${planned.count} node${planned.count === 1 ? '' : 's'} of ${planned.what}` : '';
    throw new CliError(
      `SLURMPOOL_NODES=${JSON.stringify(asked)} is not a slurmpool setting: slurmpool runs on every node it is given${planned ? ` (here ${planned.count}: ${planned.what})` : ''}${more}`,
      EXIT.usage,
      'ask Slurm for the nodes (sbatch -N), and use --min-nodes / SLURMPOOL_MIN_NODES for how many must start; unset SLURMPOOL_NODES',
    );
  }
  if (c.minNodes !== undefined && planned && c.minNodes > planned.count) {
    throw new CliError(`${c.minNodesFrom} ${c.minNodes} is more than the ${planned.count} node${planned.count === 1 ? '' : 's'} of ${planned.what}: it could never be met`);
  }
}
