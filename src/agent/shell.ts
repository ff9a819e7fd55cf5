// Run one shell command for a task, in its own process group, with the worker's pinned environment.
import type { Options } from 'execa';

/** What one shell task gives back. */
export interface CommandResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Output kept in a result record; the rest is cut with a note. */
export const MAX_CAPTURE = 64 * 1024;
/** Grace between SIGTERM and SIGKILL of a timed-out command's process group. */
export const KILL_GRACE_MS = 2000;

let execaMod: typeof import('execa') | undefined;

function cut(s: string): string {
  return s.length > MAX_CAPTURE ? `${s.slice(0, MAX_CAPTURE)}\n[slurmpool: ${s.length - MAX_CAPTURE} more characters not kept]` : s;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Run `command` through /bin/sh; never throws for a failing command, only reports it. */
export async function runShell(
  command: string,
  taskId: number,
  worker: number,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<CommandResult> {
  execaMod ??= await import('execa');
  const t0 = Date.now();
  const opts: Options = {
    shell: '/bin/sh',
    reject: false,
    detached: true,
    stdin: 'ignore',
    env: { ...env, SLURMPOOL_TASK_ID: String(taskId), SLURMPOOL_WORKER: String(worker) },
    extendEnv: true,
    stripFinalNewline: false,
  };
  const child = execaMod.execa(command, opts);
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
  return {
    command,
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    timedOut,
    stdout: cut(String(r.stdout ?? '')),
    stderr: cut(String(r.stderr ?? '')),
    durationMs: Date.now() - t0,
  };
}
