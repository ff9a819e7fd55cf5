// Run one shell command for a task, with the worker's pinned environment, CPU set and process group.
//
// Starting a process from a large Node process is slow (fork copies its page tables), so each worker
// thread keeps one small long-lived /bin/sh "helper", started through execa in its own session, that
// runs the commands one at a time: a command line of plain words is run by the helper itself (dash
// vforks and execs it, or runs a builtin), anything else through `/bin/sh -c`. Output goes to files in
// a node-local temporary folder; the status comes back as one line. A timeout signals the helper's
// whole process group (the command and its children; the helper traps TERM and reports); a command
// that outlives the grace is killed with SIGKILL, with its helper, which is then replaced.
import { closeSync, copyFileSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Options, ResultPromise } from 'execa';
import { PIN_CPUS_ENV, pinnedCpus } from './cpu-sets.js';
import { logFileName } from '../results/logdir.js';
import { isCommandItem, requestOfItem, splitRequest, TASK_ENVELOPE, withRequest, type TaskRequest } from '../requests.js';

/** What one shell task gives back. */
export interface CommandResult {
  command: string;
  /** The shell's `$?`: 128+N when the command was killed by signal N (then `signal` names it). Null if no status came back. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Output kept in the record: all of it when small; see stdoutFile/stderrFile for large output under a log folder. */
  stdout: string;
  stderr: string;
  /** The output was larger than the inline limit and was written to this file (SLURMPOOL_LOG_DIR). */
  stdoutFile?: string;
  stderrFile?: string;
  /**
   * Large output could not be written to the log folder (disk full, read-only, quota): the task fails
   * with this error; its output's first --inline-max bytes stay in the record.
   */
  outputError?: { message: string; code?: string };
  /** When the command started, epoch ms. */
  startedAt: number;
  durationMs: number;
  /** The CPUs the command was pinned to (SLURMPOOL_PIN_CPUS), as a list like "2-3". */
  cpus?: string;
  /** The GPUs the command was given (SLURMPOOL_TASK_GPUS: gpusPerTask or its own request), like "0,1"; "" for none in a packed run. */
  gpus?: string;
}

/** Output kept in a result record when there is no log folder; the rest is cut with a note. */
export const MAX_CAPTURE = 64 * 1024;
/** With a log folder, output up to this size stays in the record and larger output goes to a file. */
export const DEFAULT_INLINE_MAX = 4 * 1024;
/** Grace between SIGTERM and SIGKILL of a timed-out command's process group. */
export const KILL_GRACE_MS = 2000;

/** Environment variables of the worker that steer shell tasks (set by the CLI through the pool's env). */
export const SHELL_ENV = {
  /** Folder (shared by all nodes) for output above the inline limit, in subfolders by task index. */
  logDir: 'SLURMPOOL_LOG_DIR',
  /** Bytes of stdout/stderr kept in the record. */
  inlineMax: 'SLURMPOOL_INLINE_MAX',
  /** CPUs per task: pin worker slot w to its own cores [w*N, w*N+N) of the node's allowed CPUs. */
  pinCpus: PIN_CPUS_ENV,
  /** "0" runs every command through execa instead of the helper (for comparison and odd systems). */
  helper: 'SLURMPOOL_SHELL_HELPER',
} as const;

// ---------------------------------------------------------------- task ids carried with the command

const ENVELOPE = TASK_ENVELOPE;

/**
 * A command that carries its own task id (SLURMPOOL_TASK_ID), for callers whose item positions are not
 * the task ids (the CLI's --resume feeds only the unfinished tasks). NUL cannot occur in a command line.
 */
export function taskCommand(id: number, command: string, request?: TaskRequest | null): string {
  return `${ENVELOPE}${id}${ENVELOPE}${withRequest(command, request)}`;
}

/** Undo taskCommand; a plain command keeps the id it was given. A malformed request inside is thrown. */
export function splitTaskCommand(item: string, id: number): { id: number; command: string; request?: TaskRequest } {
  let rest = item;
  let n = id;
  if (item.startsWith(ENVELOPE)) {
    const end = item.indexOf(ENVELOPE, 1);
    const k = Number(item.slice(1, end));
    if (end < 0 || !Number.isInteger(k)) return { id, command: item };
    n = k;
    rest = item.slice(end + 1);
  }
  const { command, request } = splitRequest(rest);
  return request ? { id: n, command, request } : { id: n, command };
}

/** A shell item: a command line (maybe in an envelope), or the object form `{ cmd, cpus, gpus, timeout, env }`. */
function readShellItem(item: unknown, id: number): { id: number; command: string; request?: TaskRequest } {
  if (isCommandItem(item)) return { id, ...requestOfItem(item) };
  return splitTaskCommand(String(item), id);
}

/** A shell item's time limit: its own request's, else the call's. */
export function timeoutOf(item: unknown, callMs: number): number {
  try {
    return readShellItem(item, 0).request?.timeoutMs ?? callMs;
  } catch {
    return callMs;
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export NAME='value' …` for a script run by `sh -c`: a task's own variables, through the worker's long-lived shell. */
function exportLine(env: Record<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new Error(`${JSON.stringify(k)} is not a valid environment variable name`);
    parts.push(`${k}='${v.replace(/'/g, `'\\''`)}'`);
  }
  return parts.length ? `export ${parts.join(' ')}\n` : '';
}

// ---------------------------------------------------------------- CPU sets

export { allowedCpus, formatCpuList, parseCpuList, pinnedCpus, slotCpus } from './cpu-sets.js';

// ---------------------------------------------------------------- output

interface OutputOptions {
  logDir: string | null;
  inlineMax: number;
}

const madeDirs = new Set<string>();

function readHead(fd: number, bytes: number): string {
  const buf = Buffer.allocUnsafe(bytes);
  let got = 0;
  while (got < bytes) {
    const n = readSync(fd, buf, got, bytes - got, got);
    if (n <= 0) break;
    got += n;
  }
  return buf.subarray(0, got).toString('utf8');
}

/** A captured stream: small output into the record, large output to the log folder or cut. */
function takeOutput(file: string, id: number, stream: 'out' | 'err', o: OutputOptions): { text: string; file?: string; error?: { message: string; code?: string } } {
  // Most commands print little or nothing: one stat decides, without opening the file.
  if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) === 0) return { text: '' };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return { text: '' };
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { text: '' };
    if (size <= o.inlineMax) return { text: readHead(fd, size) };
    if (o.logDir) {
      const dest = join(o.logDir, logFileName(id, stream));
      const dir = dirname(dest);
      try {
        if (!madeDirs.has(dir)) {
          mkdirSync(dir, { recursive: true });
          madeDirs.add(dir);
        }
        copyFileSync(file, dest);
      } catch (e) {
        // Disk full, read-only, quota: the task fails saying so, keeping the head of its output; no half file is left.
        try {
          rmSync(dest, { force: true });
        } catch {
          // nothing to remove
        }
        const code = (e as NodeJS.ErrnoException).code;
        const head = readHead(fd, Math.min(size, o.inlineMax));
        const message = `cannot write its std${stream} (${size} bytes) to ${dest}: ${(e as Error).message}`;
        return { text: `${head}\n[slurmpool: ${size - Buffer.byteLength(head)} more bytes lost: ${message}]`, error: { message, ...(code ? { code } : {}) } };
      }
      return { text: '', file: dest };
    }
    const keep = Math.min(size, MAX_CAPTURE);
    const text = readHead(fd, keep);
    return { text: size > keep ? `${text}\n[slurmpool: ${size - keep} more bytes not kept; use --log-dir to keep large output]` : text };
  } finally {
    closeSync(fd);
  }
}

function cut(s: string): string {
  return s.length > MAX_CAPTURE ? `${s.slice(0, MAX_CAPTURE)}\n[slurmpool: ${s.length - MAX_CAPTURE} more characters not kept]` : s;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The signal a shell status of 128+N stands for. */
function signalOf(status: number): string | null {
  return status > 128 ? (SIGNAL_NAMES.get(status - 128) ?? null) : null;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

let execaMod: typeof import('execa') | undefined;

// ---------------------------------------------------------------- the helper

/** Builtins that would change the helper's own state if it ran them: such lines go through `sh -c`. */
const STATEFUL = new Set(
  (
    'alias bg break builtin caller cd chdir command compgen complete continue declare dirs disown enable eval exec exit export ' +
    'fc fg getopts hash history jobs let local logout mapfile popd pushd read readarray readonly return select set shift shopt ' +
    'source suspend times trap type typeset ulimit umask unalias unset wait . if then else elif fi case esac for while until do done in function time coproc'
  ).split(' '),
);
const PLAIN_WORDS = /^[A-Za-z0-9_./:,+@%-]+(?:[ \t]+[A-Za-z0-9_./:,+@%=-]+)*$/;

/** True if a command line is plain words (no quoting, expansion, redirection or operators): the helper runs it without `sh -c`. */
export function isPlainCommand(command: string): boolean {
  const c = command.trim();
  if (!PLAIN_WORDS.test(c)) return false;
  const first = c.split(/[ \t]/, 1)[0]!;
  return !STATEFUL.has(first);
}

// The helper. $1: folder for the output files; $2: CPU list to pin to ("" for none). Requests on stdin:
// task id, mode (s: plain words run directly; c: `sh -c`), line count, the lines. Replies on stdout:
// R (ready), W message (warning), X status. The watchdog kills the whole group when fd 3 closes
// (the worker thread or its process is gone), so no command outlives its agent.
const HELPER = `d=$1; cpus=$2
trap ':' TERM INT HUP USR1 USR2
( trap '' TERM INT HUP USR1 USR2; IFS= read -r _ <&3; rm -rf "$d"; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &
exec 3<&-
if [ -n "$cpus" ]; then
  if command -v taskset >/dev/null 2>&1; then
    taskset -cp "$cpus" $$ >/dev/null 2>&1 || echo "W taskset could not pin to CPUs $cpus; commands run unpinned"
  else
    echo "W taskset not found; commands are not pinned to CPUs $cpus"
  fi
fi
echo R
while IFS= read -r id && IFS= read -r m && IFS= read -r n; do
  c=; i=0
  while [ "$i" -lt "$n" ]; do
    IFS= read -r l || l=
    if [ "$i" -eq 0 ]; then c=$l; else c="$c
$l"; fi
    i=$((i+1))
  done
  SLURMPOOL_TASK_ID=$id; export SLURMPOOL_TASK_ID
  if [ "$m" = s ]; then
    set -f; $c </dev/null >"$d/out" 2>"$d/err"; s=$?; set +f
  else
    /bin/sh -c "$c" </dev/null >"$d/out" 2>"$d/err"; s=$?
  fi
  echo "X $s"
done
`;

interface Outcome {
  status: number | null;
  /** Set when the helper itself died (killed after a timeout, or by someone else). */
  helperSignal: string | null;
}

/** One long-lived /bin/sh per worker thread that runs its commands. */
class Helper {
  private child!: ResultPromise;
  readonly dir: string;
  private buf = '';
  private onLine: ((line: string) => void) | null = null;
  private exited = false;
  private exitSignal: string | null = null;
  private readonly warnings: string[] = [];
  private stderrTail = '';

  private constructor(
    readonly cpus: string | null,
    private readonly log: (line: string) => void,
  ) {
    this.dir = mkdtempSync(join(process.env.TMPDIR || tmpdir(), 'slurmpool-sh-'));
  }

  get alive(): boolean {
    return !this.exited;
  }

  static async start(env: Record<string, string>, cpus: string | null, log: (line: string) => void): Promise<Helper> {
    execaMod ??= await import('execa');
    const h = new Helper(cpus, log);
    const opts: Options = {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env,
      extendEnv: false,
      buffer: false,
      reject: false,
      cleanup: false,
    };
    h.child = execaMod.execa('/bin/sh', ['-c', HELPER, 'sh', h.dir, cpus ?? ''], opts);
    h.child.catch(() => undefined);
    h.child.stdout!.setEncoding('utf8');
    h.child.stdout!.on('data', (d: string) => h.data(d));
    h.child.stderr!.setEncoding('utf8');
    h.child.stderr!.on('data', (d: string) => (h.stderrTail = (h.stderrTail + d).slice(-2000)));
    h.child.stdin!.on('error', () => undefined);
    h.watch()?.on('error', () => undefined);
    h.child.once('exit', (_code: number | null, sig: NodeJS.Signals | null) => {
      h.exited = true;
      h.exitSignal = sig;
      h.onLine?.('');
    });
    h.child.once('error', () => {
      h.exited = true;
      h.onLine?.('');
    });
    const first = await h.nextLine();
    if (first !== 'R') {
      h.close();
      throw new Error(`the shell helper did not start (${h.stderrTail.trim() || 'no output'})`);
    }
    return h;
  }

  private data(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.startsWith('W ')) {
        this.warnings.push(line.slice(2));
        this.log(line.slice(2));
        continue;
      }
      const f = this.onLine;
      this.onLine = null;
      f?.(line);
    }
  }

  private nextLine(): Promise<string> {
    return new Promise((resolve) => {
      if (this.exited) return resolve('');
      this.onLine = resolve;
    });
  }

  /** The pipe on fd 3 that the helper's watchdog reads: closing it kills the helper's group. */
  private watch(): Duplex | undefined {
    return (this.child.stdio as readonly unknown[])[3] as Duplex | undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Run one command; resolves with its status, or with the helper's death. */
  async run(id: number, command: string, onStart: () => void): Promise<Outcome> {
    const lines = command.split('\n');
    const mode = isPlainCommand(command) ? 's' : 'c';
    const reply = this.nextLine();
    this.child.stdin!.write(`${id}\n${mode}\n${lines.length}\n${lines.join('\n')}\n`);
    onStart();
    const line = await reply;
    const m = /^X (\d+)$/.exec(line);
    if (m) return { status: Number(m[1]), helperSignal: null };
    this.exited = true;
    killGroup(this.child.pid, 'SIGKILL');
    return { status: null, helperSignal: this.exitSignal ?? 'SIGKILL' };
  }

  close(): void {
    this.exited = true;
    try {
      this.child.stdin?.end();
      this.watch()?.destroy();
    } catch {
      // already closed
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let helper: Helper | null = null;
let helperFailed = false;
let haveSh: boolean | undefined;
let cachedCpus: { worker: number; cpus: string | null } | undefined;

function outputOptions(env: Record<string, string>): OutputOptions {
  const logDir = env[SHELL_ENV.logDir] || null;
  const n = Number(env[SHELL_ENV.inlineMax]);
  const inlineMax = Number.isInteger(n) && n >= 0 ? Math.min(n, MAX_CAPTURE) : logDir ? DEFAULT_INLINE_MAX : MAX_CAPTURE;
  return { logDir, inlineMax };
}

/** Run `command` through /bin/sh; never throws for a failing command, only reports it. */
export async function runShell(
  item: unknown,
  taskId: number,
  worker: number,
  env: Record<string, string>,
  timeoutMs: number,
  /** Variables the agent gave this chunk (its GPUs, thread counts for its CPUs), under the task's own. */
  overlay?: Record<string, string>,
): Promise<CommandResult> {
  const { id, command, request } = readShellItem(item, taskId);
  const extra = overlay || request?.env ? { ...overlay, ...request?.env } : null;
  if (request?.timeoutMs !== undefined) timeoutMs = request.timeoutMs;
  // One worker thread serves one slot: its CPU set and /bin/sh are looked up once.
  if (cachedCpus === undefined || cachedCpus.worker !== worker) cachedCpus = { worker, cpus: pinnedCpus(env, worker) };
  const cpus = cachedCpus.cpus;
  haveSh ??= existsSync('/bin/sh');
  if (env[SHELL_ENV.helper] !== '0' && !helperFailed && haveSh) {
    try {
      if (!helper || !helper.alive) {
        helper?.close();
        const helperEnv: Record<string, string> = { ...env, SLURMPOOL_WORKER: String(worker) };
        if (cpus) helperEnv.SLURMPOOL_TASK_CPUS = cpus;
        helper = await Helper.start(helperEnv, cpus, (line) => process.stderr.write(`slurmpool: worker ${worker}: ${line}\n`));
      }
    } catch (e) {
      helperFailed = true;
      process.stderr.write(`slurmpool: worker ${worker}: ${(e as Error).message}; running commands through execa instead\n`);
    }
    if (helper && !helperFailed) return withGpus(await runWithHelper(helper, id, command, timeoutMs, cpus, outputOptions(env), extra), env, extra);
  }
  return withGpus(await runWithExeca(id, command, worker, extra ? { ...env, ...extra } : env, timeoutMs, cpus), env, extra);
}

/** Say in the result which GPUs the command had, when slurmpool gave it some (or, packed, none). */
function withGpus(r: CommandResult, env: Record<string, string>, extra: Record<string, string> | null): CommandResult {
  const gpus = extra?.SLURMPOOL_TASK_GPUS ?? env.SLURMPOOL_TASK_GPUS;
  if (gpus !== undefined) r.gpus = gpus;
  return r;
}

async function runWithHelper(h: Helper, id: number, command: string, timeoutMs: number, cpus: string | null, o: OutputOptions, extra: Record<string, string> | null): Promise<CommandResult> {
  // The helper's environment is the slot's; a task's own variables are exported in its `sh -c`.
  const script = extra ? exportLine(extra) + command : command;
  const startedAt = Date.now();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let killer: NodeJS.Timeout | undefined;
  const r = await h.run(id, script, () => {
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        killGroup(h.pid, 'SIGTERM');
        killer = setTimeout(() => killGroup(h.pid, 'SIGKILL'), KILL_GRACE_MS);
      }, timeoutMs);
    }
  });
  clearTimeout(timer);
  clearTimeout(killer);
  const durationMs = Date.now() - startedAt;
  const out = takeOutput(join(h.dir, 'out'), id, 'out', o);
  const err = takeOutput(join(h.dir, 'err'), id, 'err', o);
  if (!h.alive) {
    h.close();
    if (helper === h) helper = null;
  }
  const result: CommandResult = {
    command,
    exitCode: r.status,
    signal: r.status === null ? r.helperSignal : signalOf(r.status),
    timedOut,
    stdout: out.text,
    stderr: err.text,
    startedAt,
    durationMs,
  };
  if (out.file) result.stdoutFile = out.file;
  if (err.file) result.stderrFile = err.file;
  const outputError = out.error ?? err.error;
  if (outputError) result.outputError = outputError;
  if (cpus) result.cpus = cpus;
  return result;
}

/** One execa per command: the way before the helper, kept for systems without /bin/sh and for comparison. */
async function runWithExeca(id: number, command: string, worker: number, env: Record<string, string>, timeoutMs: number, cpus: string | null): Promise<CommandResult> {
  execaMod ??= await import('execa');
  const startedAt = Date.now();
  const childEnv: Record<string, string> = { ...env, SLURMPOOL_TASK_ID: String(id), SLURMPOOL_WORKER: String(worker) };
  if (cpus) childEnv.SLURMPOOL_TASK_CPUS = cpus;
  const opts: Options = {
    shell: '/bin/sh',
    reject: false,
    detached: true,
    stdin: 'ignore',
    env: childEnv,
    extendEnv: true,
    stripFinalNewline: false,
  };
  const child = cpus && existsSync('/usr/bin/taskset') ? execaMod.execa('taskset', ['-c', cpus, '/bin/sh', '-c', command], { ...opts, shell: false }) : execaMod.execa(command, opts);
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let killer: NodeJS.Timeout | undefined;
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      killer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
  }
  const r = await child;
  clearTimeout(timer);
  clearTimeout(killer);
  const result: CommandResult = {
    command,
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    timedOut,
    stdout: cut(String(r.stdout ?? '')),
    stderr: cut(String(r.stderr ?? '')),
    startedAt,
    durationMs: Date.now() - startedAt,
  };
  if (cpus) result.cpus = cpus;
  return result;
}
