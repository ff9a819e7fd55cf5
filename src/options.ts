// Every Pool option, checked and defaulted in one place.
import { existsSync, statSync } from './util/node-fs.js';
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OptionError } from './errors.js';
import { parseCountList } from './slurm/counts.js';
import { shellWords } from './launch/shell-words.js';

export type Mode = 'local' | 'emulate' | 'slurm' | 'ssh' | 'join';

export interface EmulateSpec {
  nodes: number;
  /** CPUs of every node, or of the first when `cpus` is given. */
  cpusPerNode: number;
  /** CPUs node by node, for an uneven allocation (`'2,2,1'`, or Slurm's `'2(x2),1'`). */
  cpus?: number[];
}

/** What Pool.open takes. */
export interface PoolOptions {
  /** The task module: a path (relative to the working directory) or a URL. Tasks are its exports. */
  module?: string | URL;
  /** Worker threads per node. Default: the CPUs this process (or each node's agent) may use, divided by threadsPerTask. */
  workers?: number;
  /** An export run once in each worker before any task, with initArgs. */
  initializer?: string;
  initArgs?: unknown[];
  /** Replace a worker after it has run this many tasks (checked between chunks). */
  maxTasksPerWorker?: number;
  /** Threads each task may use: sets OMP_NUM_THREADS and friends, over any inherited value. Default 1. */
  threadsPerTask?: number;
  /** Keep OMP_NUM_THREADS and friends where the environment already sets them, instead of pinning them to threadsPerTask. Default false. */
  keepThreadEnv?: boolean;
  /**
   * GPUs each task gets to itself: at most ⌊GPUs of the node / N⌋ tasks at once per node, each with its
   * own GPUs in CUDA_VISIBLE_DEVICES (docs/gpus.md). A node without that many GPUs fails the open. Default 0 (none).
   */
  gpusPerTask?: number;
  /**
   * Shell tasks bring their own requests: runCommands items `{ cmd, cpus?, gpus?, timeout?, env? }`
   * (the CLI's per-line requests). Each node gets a worker per CPU and runs at once only what its
   * CPUs and GPUs hold, first come first served with a reservation for the oldest waiting task
   * (docs/gpus.md); threadsPerTask and gpusPerTask are the requests of items that make none. Default false.
   */
  taskResources?: boolean;
  /** Times a chunk is retried after its worker died running it. Default 1. */
  retries?: number;
  /** Variables added to every task's environment on every node, over the environment the workers inherit (SSH agents get them too). */
  taskEnv?: Record<string, string>;
  /** Default per-task timeout in ms for every call; 0 = none. */
  timeout?: number;
  /** Worker heap limit in MB (resourceLimits.maxOldGenerationSizeMb); a task past it kills only its worker. */
  maxHeapMB?: number;
  /** Force a mode; default: emulate/hosts when given, slurm inside a multi-node allocation, else local. */
  mode?: Mode;
  /** Emulate an allocation on this machine: `{ nodes: 4, cpusPerNode: 2 }` or "4x2". */
  emulate?: EmulateSpec | string;
  /** SSH hosts, "name" or "name:cpus". */
  hosts?: string[];
  /**
   * Agents join from elsewhere (other allocations, a simulator): the coordinator listens and writes a
   * join file (address, port, secret; mode 0600) for them; Pool.open resolves once `nodes` agents are ready.
   */
  join?: JoinOptions;
  /**
   * Let agents of other allocations join this pool (`slurmpool join FILE` in any sbatch or salloc):
   * it listens on a second port and writes a join file (address, port, secret; mode 0600, its folder
   * 0700 when created), removed at close. `true`: ~/.slurmpool/join-<pid>.json; a path: that file, or
   * join-<pid>.json inside it when it names a folder. See docs/elastic.md.
   */
  joinFile?: true | string;
  /**
   * Grow past this allocation: submit up to `nodes` more nodes with sbatch (jobs of `nodesPerJob`)
   * while the backlog would keep them busy; they join through the join file (`joinFile` defaults to
   * true). Their jobs are cancelled (scancel) when the pool stops. See docs/elastic.md.
   */
  grow?: GrowOptions;
  /** SSH settings for `hosts` (each also from SLURMPOOL_SSH_* variables). */
  ssh?: SshOptions;
  /** Fewest nodes to go on with when some never start. Default: all of them. */
  minNodes?: number;
  /** Address the coordinator listens on (distributed modes). */
  bind?: string;
  /** Milliseconds to wait for agents to start. Default 60000. */
  startTimeout?: number;
  /** Agent heartbeat period in ms (distributed modes); sent only by an agent that said nothing else meanwhile. Default 10000. */
  heartbeatMs?: number;
  /** An agent silent this long is lost (distributed modes; a dead process or host closes its connection sooner). Default 30000. */
  lostAfterMs?: number;
  /** Run a copy of a straggling chunk on an idle worker once nothing else waits (not for shell commands). Default true. */
  speculate?: boolean;
  /** Where log lines go: a function, or false for none. Default: stderr in distributed modes. */
  log?: ((line: string) => void) | false;
  /** Called when a node's agent is lost after the pool opened (the CLI writes it into the results file for the report). */
  onNodeLost?: (node: string, reason: string, at: number) => void;
  /**
   * Where the Slurm allocation (SLURM_*) and SLURMPOOL_* settings are read from. Default process.env.
   * Agents, srun and worker threads run with process.env, these laid over it (never instead of it:
   * PATH and the rest stay); variables meant for the tasks belong in taskEnv.
   */
  env?: NodeJS.ProcessEnv;
  /** How long `await using` waits for calls still pending when the block ends before it terminates them (ms). Default 5000. */
  disposeTimeout?: number;
  /** Abort opening: Pool.open rejects with an AbortError and stops what it started. */
  signal?: AbortSignal;
  /** The Python interpreter for a .py task module on every node (SLURMPOOL_PYTHON); default $VIRTUAL_ENV/bin/python, else python3 on PATH. */
  python?: string;
}

export interface JoinOptions {
  /** Agents to wait for before Pool.open resolves. */
  nodes: number;
  /** Where to write the join file. Default: ~/.slurmpool/join-<pid>.json. */
  file?: string;
}

export interface GrowOptions {
  /** Extra nodes at most, across the jobs out at a time (pending or running). */
  nodes: number;
  /** Nodes per submitted job. Default 1. */
  nodesPerJob?: number;
  /** More sbatch options, as one string split like a shell would (`'-p short -t 30 -A proj'`). */
  sbatch?: string;
  /**
   * Tasks not finished yet, when the calls' inputs cannot say (an iterable of unknown length);
   * Infinity for an endless one. Default: counted from the pending calls' inputs.
   */
  backlog?: () => number;
  /** Called with each job submitted (its id, nodes, when). */
  onSubmit?: (job: { id: string; nodes: number; at: number }) => void;
}

export interface SshOptions {
  /** Default 22 (SLURMPOOL_SSH_PORT). */
  port?: number;
  /** Default: this user (SLURMPOOL_SSH_USER); `user@host` in a host entry wins. */
  user?: string;
  /** Private key file; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa, and the agent at SSH_AUTH_SOCK (SLURMPOOL_SSH_KEY). */
  identityFile?: string;
  /** Default ~/.ssh/known_hosts (SLURMPOOL_SSH_KNOWN_HOSTS). */
  knownHosts?: string;
  /** Add unknown host keys to knownHosts on first use instead of refusing them (SLURMPOOL_SSH_ACCEPT_NEW=1). Changed keys are always refused. */
  acceptNewHostKeys?: boolean;
  /** node binary on the hosts; default: the same path as here (SLURMPOOL_REMOTE_NODE). */
  remoteNode?: string;
  /** slurmpool's cli/main.js on the hosts; default: the same path as here (SLURMPOOL_REMOTE_CLI). */
  remoteCli?: string;
}

export interface ResolvedOptions {
  moduleUrl: string | null;
  modulePath: string | null;
  workers: number;
  workersGiven: boolean;
  initializer: string | null;
  initArgs: unknown[];
  maxTasksPerWorker: number;
  threadsPerTask: number;
  keepThreadEnv: boolean;
  gpusPerTask: number;
  taskResources: boolean;
  onNodeLost: ((node: string, reason: string, at: number) => void) | null;
  retries: number;
  taskEnv: Record<string, string>;
  timeout: number;
  maxHeapMB: number;
  mode: Mode | null;
  emulate: EmulateSpec | null;
  hosts: string[] | null;
  join: JoinOptions | null;
  joinFile: true | string | null;
  grow: GrowOptions | null;
  ssh: SshOptions;
  minNodes: number;
  bind: string | null;
  startTimeout: number;
  heartbeatMs: number;
  lostAfterMs: number;
  speculate: boolean;
  log: ((line: string) => void) | null;
  logGiven: boolean;
  env: NodeJS.ProcessEnv;
  disposeTimeout: number;
  python: string | null;
}

const MODES: readonly Mode[] = ['local', 'emulate', 'slurm', 'ssh', 'join'];

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A whole number in [min, ∞), or the default; the message quotes the bad value. */
export function intOption(name: string, v: unknown, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
    throw new OptionError(`options.${name} must be ${what}, got ${show(v)}`);
  }
  return v;
}

/** Parse "4x2" (nodes x CPUs per node), or CPUs node by node as Slurm writes them: "2,2,1" or "2(x2),1" (an uneven allocation). */
export function parseEmulate(v: unknown, where = 'options.emulate'): EmulateSpec {
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*[xX]\s*(\d+)\s*$/.exec(v);
    if (m) v = { nodes: Number(m[1]), cpusPerNode: Number(m[2]) };
    else if (/^\s*\d+(\(x\d+\))?(\s*,\s*\d+(\(x\d+\))?)*\s*$/.test(v)) v = { cpus: parseCountList(v.replace(/\s+/g, ''), where) };
    else throw new OptionError(`${where} must look like NODESxCPUS (e.g. "4x2") or list CPUs node by node (e.g. "2,2,1" or "2(x2),1"), got ${show(v)}`);
  }
  if (typeof v === 'object' && v !== null && Array.isArray((v as { cpus?: unknown }).cpus)) {
    const list = (v as { cpus: unknown[] }).cpus;
    if (list.length < 1 || list.length > 256) throw new OptionError(`${where}.cpus must list from 1 to 256 nodes, got ${list.length}`);
    list.forEach((c, i) => {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > 1024) throw new OptionError(`${where}.cpus[${i}] must be an integer from 1 to 1024, got ${show(c)}`);
    });
    const cpus = list as number[];
    return { nodes: cpus.length, cpusPerNode: cpus[0]!, cpus };
  }
  if (typeof v !== 'object' || v === null) throw new OptionError(`${where} must be { nodes, cpusPerNode } or "NxC", got ${show(v)}`);
  const o = v as Record<string, unknown>;
  const nodes = o.nodes;
  const cpus = o.cpusPerNode;
  if (typeof nodes !== 'number' || !Number.isInteger(nodes) || nodes < 1 || nodes > 256) {
    throw new OptionError(`${where}.nodes must be an integer from 1 to 256, got ${show(nodes)}`);
  }
  if (typeof cpus !== 'number' || !Number.isInteger(cpus) || cpus < 1 || cpus > 1024) {
    throw new OptionError(`${where}.cpusPerNode must be an integer from 1 to 1024, got ${show(cpus)}`);
  }
  return { nodes, cpusPerNode: cpus };
}

/** Resolve a module option to a file URL, checking the file exists. */
export function resolveModule(m: unknown, cwd = process.cwd()): { url: string; path: string } {
  let path: string;
  if (m instanceof URL) {
    if (m.protocol !== 'file:') throw new OptionError(`options.module must be a file: URL or a path, got ${show(m.href)}`);
    path = fileURLToPath(m);
  } else if (typeof m === 'string' && m.length > 0) {
    path = m.startsWith('file:') ? fileURLToPath(m) : isAbsolute(m) ? m : resolve(cwd, m);
  } else {
    throw new OptionError(`options.module must be a path or a file URL to an ES module, got ${show(m)}`);
  }
  if (!existsSync(path)) {
    throw new OptionError(`options.module ${show(m instanceof URL ? m.href : m)} does not exist (looked for ${path})`);
  }
  if (!statSync(path).isFile()) throw new OptionError(`options.module ${show(m instanceof URL ? m.href : m)} is not a file (${path})`);
  if (/\.[cm]?ts$/.test(path) && !typeStripping()) {
    throw new OptionError(
      `options.module ${show(m instanceof URL ? m.href : m)} is TypeScript, and this Node (${process.version}) cannot run .ts files: ` +
        'type stripping needs Node ≥ 22.18 or ≥ 23.6 (22.6 to 22.17 with --experimental-strip-types). Compile it to .js, or run a newer Node',
    );
  }
  return { url: pathToFileURL(path).href, path };
}

/** Whether this Node runs .ts modules (type stripping on: `process.features.typescript`, Node ≥ 22.10). */
function typeStripping(): boolean {
  const ts = (process.features as { typescript?: unknown }).typescript;
  if (ts === 'strip' || ts === 'transform') return true;
  // Node 22.6 to 22.9 had the flags before process.features.typescript.
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((f) => f === '--experimental-strip-types' || f === '--experimental-transform-types');
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new OptionError(`${name} must be an integer, got ${show(v)}`);
  return n;
}

/** Every key of PoolOptions, to refuse unknown ones (a typo such as `wokers` must not be ignored). */
export const POOL_OPTION_KEYS = [
  'module', 'workers', 'initializer', 'initArgs', 'maxTasksPerWorker', 'threadsPerTask', 'gpusPerTask', 'taskResources', 'retries', 'taskEnv', 'timeout',
  'maxHeapMB', 'mode', 'emulate', 'hosts', 'ssh', 'minNodes', 'bind', 'startTimeout', 'heartbeatMs', 'lostAfterMs',
  'speculate', 'log', 'env', 'disposeTimeout', 'signal', 'join', 'keepThreadEnv', 'onNodeLost', 'python', 'joinFile', 'grow',
] as const satisfies readonly (keyof PoolOptions)[];

/** Every key of SshOptions. */
export const SSH_OPTION_KEYS = ['port', 'user', 'identityFile', 'knownHosts', 'acceptNewHostKeys', 'remoteNode', 'remoteCli'] as const satisfies readonly (keyof SshOptions)[];

/** Every key of MapOptions (map, starmap, imap, imapUnordered, apply's options). */
export const MAP_OPTION_KEYS = ['chunksize', 'timeout', 'signal'] as const satisfies readonly (keyof MapOptions)[];

/** Every key of RecordOptions (imapRecords, runCommands). */
export const RECORD_OPTION_KEYS = [...MAP_OPTION_KEYS, 'skip', 'star', 'retryFailed'] as const;

/** Edit distance between two short strings (Levenshtein). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The valid name closest to a misspelt one, if any is close: same letters in another case first, then the fewest edits. */
export function nearest(name: string, valid: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = valid.find((v) => v.toLowerCase() === lower);
  if (sameCase) return sameCase;
  const prefix = lower.length >= 3 ? valid.find((v) => v.toLowerCase().startsWith(lower)) : undefined;
  if (prefix) return prefix;
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = distance(lower, v.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = v;
    }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Refuse keys that are not options, naming the nearest valid one. `where` is e.g. "options" or "map
 * options"; `elsewhere` names options that belong to another place (a call's `chunksize` given to Pool.open).
 */
export function checkKeys(o: object, valid: readonly string[], where: string, elsewhere?: { keys: readonly string[]; where: string }): void {
  for (const key of Object.keys(o)) {
    if ((valid as readonly string[]).includes(key)) continue;
    const near = nearest(key, valid);
    if (near) throw new OptionError(`${where}.${key} is not an option; did you mean ${near}?`);
    const other = elsewhere && nearest(key, elsewhere.keys);
    if (other) throw new OptionError(`${where}.${key} is not an option; ${other} is an option of ${elsewhere.where}`);
    throw new OptionError(`${where}.${key} is not an option (valid: ${valid.join(', ')})`);
  }
}

/** Check and default every option; throws OptionError quoting the first bad value. */
export function resolveOptions(o: PoolOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new OptionError(`Pool.open takes an options object, got ${show(o)}`);
  checkKeys(o, POOL_OPTION_KEYS, 'options', { keys: RECORD_OPTION_KEYS, where: 'each call (map, imap, …), not of Pool.open' });
  const env = o.env ?? process.env;
  const mod = o.module === undefined ? null : resolveModule(o.module);
  const threadsPerTask = intOption('threadsPerTask', o.threadsPerTask ?? envInt(env, 'SLURMPOOL_THREADS_PER_TASK'), 1, 1);
  const workersIn = o.workers ?? envInt(env, 'SLURMPOOL_WORKERS');
  const workers = intOption('workers', workersIn, Math.max(1, Math.floor(availableParallelism() / threadsPerTask)), 1);
  if (o.initializer !== undefined && (typeof o.initializer !== 'string' || o.initializer === '')) {
    throw new OptionError(`options.initializer must be the name of an export, got ${show(o.initializer)}`);
  }
  if (o.initializer !== undefined && !mod) throw new OptionError(`options.initializer ${show(o.initializer)} needs options.module`);
  if (o.initArgs !== undefined && !Array.isArray(o.initArgs)) throw new OptionError(`options.initArgs must be an array, got ${show(o.initArgs)}`);
  if (o.mode !== undefined && !MODES.includes(o.mode)) {
    throw new OptionError(`options.mode must be one of ${MODES.join(', ')}, got ${show(o.mode)}`);
  }
  const emuIn = o.emulate ?? (env.SLURMPOOL_EMULATE ? env.SLURMPOOL_EMULATE : undefined);
  const emulate = emuIn === undefined ? null : parseEmulate(emuIn, o.emulate !== undefined ? 'options.emulate' : 'SLURMPOOL_EMULATE');
  let hosts: string[] | null = null;
  if (o.hosts !== undefined) {
    if (!Array.isArray(o.hosts) || o.hosts.length === 0 || o.hosts.some((h) => typeof h !== 'string' || h.trim() === '')) {
      throw new OptionError(`options.hosts must be a non-empty array of "host" or "host:cpus" strings, got ${show(o.hosts)}`);
    }
    hosts = o.hosts.map((h) => h.trim());
  }
  if (o.taskEnv !== undefined && (typeof o.taskEnv !== 'object' || o.taskEnv === null || Object.values(o.taskEnv).some((v) => typeof v !== 'string'))) {
    throw new OptionError(`options.taskEnv must be an object of string values, got ${show(o.taskEnv)}`);
  }
  if (o.ssh !== undefined && (typeof o.ssh !== 'object' || o.ssh === null)) throw new OptionError(`options.ssh must be an object, got ${show(o.ssh)}`);
  if (o.ssh !== undefined) checkKeys(o.ssh, SSH_OPTION_KEYS, 'options.ssh');
  if (o.ssh?.port !== undefined) intOption('ssh.port', o.ssh.port, 22, 1);
  if (o.log !== undefined && o.log !== false && typeof o.log !== 'function') {
    throw new OptionError(`options.log must be a function or false, got ${show(o.log)}`);
  }
  if (o.env !== undefined && (typeof o.env !== 'object' || o.env === null)) throw new OptionError(`options.env must be an object of variables, got ${show(o.env)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new OptionError(`options.signal must be an AbortSignal, got ${show(o.signal)}`);
  if (o.onNodeLost !== undefined && typeof o.onNodeLost !== 'function') throw new OptionError(`options.onNodeLost must be a function, got ${show(o.onNodeLost)}`);
  if (o.keepThreadEnv !== undefined && typeof o.keepThreadEnv !== 'boolean') throw new OptionError(`options.keepThreadEnv must be a boolean, got ${show(o.keepThreadEnv)}`);
  if (o.taskResources !== undefined && typeof o.taskResources !== 'boolean') throw new OptionError(`options.taskResources must be a boolean, got ${show(o.taskResources)}`);
  if (o.speculate !== undefined && typeof o.speculate !== 'boolean') throw new OptionError(`options.speculate must be a boolean, got ${show(o.speculate)}`);
  if (o.bind !== undefined && (typeof o.bind !== 'string' || o.bind === '')) throw new OptionError(`options.bind must be an address, got ${show(o.bind)}`);
  if (o.python !== undefined && (typeof o.python !== 'string' || o.python === '')) throw new OptionError(`options.python must be the path or name of a Python interpreter, got ${show(o.python)}`);
  return {
    moduleUrl: mod?.url ?? null,
    modulePath: mod?.path ?? null,
    workers,
    workersGiven: workersIn !== undefined,
    initializer: o.initializer ?? null,
    initArgs: o.initArgs ?? [],
    maxTasksPerWorker: intOption('maxTasksPerWorker', o.maxTasksPerWorker, 0, 1),
    threadsPerTask,
    keepThreadEnv: o.keepThreadEnv ?? (env.SLURMPOOL_KEEP_THREAD_ENV === '1'),
    gpusPerTask: intOption('gpusPerTask', o.gpusPerTask ?? envInt(env, 'SLURMPOOL_GPUS_PER_TASK'), 0, 0),
    taskResources: o.taskResources ?? false,
    onNodeLost: typeof o.onNodeLost === 'function' ? o.onNodeLost : null,
    retries: intOption('retries', o.retries ?? envInt(env, 'SLURMPOOL_RETRIES'), 1, 0),
    taskEnv: o.taskEnv ?? {},
    timeout: intOption('timeout', o.timeout, 0, 0),
    maxHeapMB: intOption('maxHeapMB', o.maxHeapMB, 0, 1),
    mode: o.mode ?? null,
    emulate,
    hosts,
    join: o.join === undefined ? null : checkJoin(o.join),
    joinFile: checkJoinFile(o.joinFile, o.grow !== undefined),
    grow: o.grow === undefined ? null : checkGrow(o.grow),
    ssh: o.ssh ?? {},
    minNodes: intOption('minNodes', o.minNodes, 0, 1),
    bind: o.bind ?? env.SLURMPOOL_BIND ?? null,
    startTimeout: intOption('startTimeout', o.startTimeout, 60_000, 1),
    heartbeatMs: intOption('heartbeatMs', o.heartbeatMs, 10_000, 10),
    lostAfterMs: intOption('lostAfterMs', o.lostAfterMs, 30_000, 50),
    speculate: o.speculate ?? true,
    log: o.log === false ? null : (o.log ?? ((line: string) => process.stderr.write(`slurmpool: ${line}\n`))),
    logGiven: o.log !== undefined,
    env,
    disposeTimeout: intOption('disposeTimeout', o.disposeTimeout, 5000, 0),
    python: o.python ?? null,
  };
}

function checkJoin(j: unknown): JoinOptions {
  if (typeof j !== 'object' || j === null) throw new OptionError(`options.join must be { nodes, file? }, got ${show(j)}`);
  const o = j as Record<string, unknown>;
  checkKeys(o, ['nodes', 'file'], 'options.join');
  const nodes = intOption('join.nodes', o.nodes, 0, 1);
  if (o.nodes === undefined) throw new OptionError('options.join.nodes is required: how many agents Pool.open waits for');
  if (o.file !== undefined && (typeof o.file !== 'string' || o.file === '')) throw new OptionError(`options.join.file must be a path, got ${show(o.file)}`);
  return { nodes, ...(typeof o.file === 'string' ? { file: o.file } : {}) };
}

function checkJoinFile(v: unknown, growing: boolean): true | string | null {
  if (v === undefined || v === false) return growing ? true : null;
  if (v === true) return true;
  if (typeof v !== 'string' || v === '') throw new OptionError(`options.joinFile must be true or a path (a file, or a folder for join-<pid>.json), got ${show(v)}`);
  return v;
}

function checkGrow(g: unknown): GrowOptions {
  if (typeof g !== 'object' || g === null) throw new OptionError(`options.grow must be { nodes, nodesPerJob?, sbatch? }, got ${show(g)}`);
  const o = g as Record<string, unknown>;
  checkKeys(o, ['nodes', 'nodesPerJob', 'sbatch', 'backlog', 'onSubmit'], 'options.grow');
  if (o.nodes === undefined) throw new OptionError('options.grow.nodes is required: how many extra nodes the pool may ask Slurm for');
  const nodes = intOption('grow.nodes', o.nodes, 0, 1);
  const nodesPerJob = intOption('grow.nodesPerJob', o.nodesPerJob, 1, 1);
  if (nodesPerJob > nodes) throw new OptionError(`options.grow.nodesPerJob (${nodesPerJob}) is more than options.grow.nodes (${nodes}): no job could be submitted`);
  if (o.sbatch !== undefined && typeof o.sbatch !== 'string') throw new OptionError(`options.grow.sbatch must be a string of sbatch options, got ${show(o.sbatch)}`);
  if (typeof o.sbatch === 'string') {
    try {
      shellWords(o.sbatch);
    } catch (e) {
      throw new OptionError(`options.grow.sbatch: ${(e as Error).message}`);
    }
  }
  if (o.backlog !== undefined && typeof o.backlog !== 'function') throw new OptionError(`options.grow.backlog must be a function, got ${show(o.backlog)}`);
  if (o.onSubmit !== undefined && typeof o.onSubmit !== 'function') throw new OptionError(`options.grow.onSubmit must be a function, got ${show(o.onSubmit)}`);
  return { nodes, nodesPerJob, ...(typeof o.sbatch === 'string' ? { sbatch: o.sbatch } : {}), ...(o.backlog ? { backlog: o.backlog as () => number } : {}), ...(o.onSubmit ? { onSubmit: o.onSubmit as GrowOptions['onSubmit'] & object } : {}) };
}

/** Per-call options of map, starmap, imap, imapUnordered (and apply, through applyWith). */
export interface MapOptions {
  /** Items per chunk; default: about 4 chunks per worker for a known length, adaptive otherwise. */
  chunksize?: number;
  /** Per-task timeout in ms for this call (overrides the pool's). */
  timeout?: number;
  /** Abort the call: it rejects (or its iterator throws) with an AbortError at once, and its chunks are cancelled. */
  signal?: AbortSignal;
}

/** Options of imapRecords and runCommands. */
export interface RecordOptions extends MapOptions {
  /** Input indices already finished (resume): not run, no record. */
  skip?: ReadonlySet<number>;
  /** Items are argument arrays (starmap). */
  star?: boolean;
  /**
   * Times a failed task runs again before its failure is final: a command's non-zero exit or timeout
   * (runCommands), an error the task threw (imapRecords). Worker deaths count against the same budget;
   * node losses do not. Default 0.
   */
  retryFailed?: number;
}

/** Check a call's options (map and the rest, or the record calls with `records`); the pool's timeout is the default. */
export function resolveMapOptions(o: MapOptions | RecordOptions | undefined, poolTimeout: number, records = false): { chunksize: number; timeout: number; retryFailed: number } {
  if (o === undefined) return { chunksize: 0, timeout: poolTimeout, retryFailed: 0 };
  if (typeof o !== 'object' || o === null) throw new OptionError(`map options must be an object, got ${show(o)}`);
  checkKeys(o, records ? RECORD_OPTION_KEYS : MAP_OPTION_KEYS, records ? 'record options' : 'map options');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new OptionError(`map options.signal must be an AbortSignal, got ${show(o.signal)}`);
  const chunksize = intOption('chunksize', o.chunksize, 0, 1);
  const timeout = intOption('timeout', o.timeout, poolTimeout, 0);
  const retryFailed = records ? intOption('retryFailed', (o as RecordOptions).retryFailed, 0, 0) : 0;
  return { chunksize, timeout, retryFailed };
}
