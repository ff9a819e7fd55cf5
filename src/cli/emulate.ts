// slurmpool emulate: run a batch script as Slurm would, on this machine, with an emulated allocation.
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { constants as osConstants, hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { emulatedNodeEnv } from '../launch/emulate.js';
import { formatDuration, parseDuration, parseSlurmTime } from './durations.js';
import { CliError, EXIT } from './errors.js';
import type { Renderer } from './render.js';
import { interpreterOf, parseSbatch, parseSignalSpec } from './sbatch.js';

function positiveInt(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v).trim();
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new CliError(`${what} must be a positive whole number, got ${JSON.stringify(v)}`);
  return Number(s);
}

/** The batch environment: emulatedNodeEnv for node 0, as sbatch sets it, minus anything of an outer allocation. */
export function batchEnv(
  base: NodeJS.ProcessEnv,
  spec: { nodes: number; cpusPerNode: number },
  jobId: string,
  extra: { jobName: string; cpusPerTask?: number; ntasksPerNode?: number; endAt?: number; submitDir: string },
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith('SLURM_') || k.startsWith('SLURMD_') || ['SLURMPOOL_AGENT', 'SLURMPOOL_COORDINATOR', 'SLURMPOOL_SECRET', 'SLURMPOOL_NODE'].includes(k)) continue;
    env[k] = v;
  }
  Object.assign(env, emulatedNodeEnv(spec, 0, jobId));
  // A batch script is not a step and was not started by srun.
  delete env.SLURM_STEP_ID;
  delete env.SLURM_LAUNCH_NODE_IPADDR;
  if (extra.cpusPerTask !== undefined) env.SLURM_CPUS_PER_TASK = String(extra.cpusPerTask);
  else delete env.SLURM_CPUS_PER_TASK;
  if (extra.ntasksPerNode !== undefined) {
    env.SLURM_NTASKS_PER_NODE = String(extra.ntasksPerNode);
    env.SLURM_TASKS_PER_NODE = spec.nodes > 1 ? `${extra.ntasksPerNode}(x${spec.nodes})` : String(extra.ntasksPerNode);
    env.SLURM_NTASKS = String(extra.ntasksPerNode * spec.nodes);
    env.SLURM_NPROCS = env.SLURM_NTASKS;
  }
  env.SLURM_JOB_NAME = extra.jobName;
  env.SLURM_SUBMIT_DIR = extra.submitDir;
  env.SLURM_SUBMIT_HOST = hostname();
  env.SLURM_GTIDS = '0';
  if (extra.endAt !== undefined) env.SLURM_JOB_END_TIME = String(Math.floor(extra.endAt / 1000));
  env.SLURMPOOL_EMULATE = `${spec.nodes}x${spec.cpusPerNode}`;
  return env;
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // gone
  }
}

/** Run the script with its #SBATCH defaults (command-line options win); resolves with its exit status. */
export async function emulateCommand(args: Record<string, unknown>, r: Renderer): Promise<number> {
  const after = ((args['--'] as unknown[]) ?? []).map(String);
  const rest = ((args.args as unknown[]) ?? []).map(String);
  let script: string;
  if (args.script !== undefined) {
    script = String(args.script);
    rest.push(...after);
  } else if (after.length > 0) {
    script = after.shift()!;
    rest.push(...after);
  } else throw new CliError('give the batch script to run: slurmpool emulate [options] -- ./job.sbatch [args…]');
  let text: string;
  try {
    if (statSync(script).isDirectory()) throw new CliError(`${script} is a directory, not a batch script`);
    text = readFileSync(script, 'utf8');
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError((e as NodeJS.ErrnoException).code === 'ENOENT' ? `batch script ${script} does not exist` : `batch script ${script} cannot be read: ${(e as Error).message}`);
  }
  const interp = interpreterOf(text, script);
  const d = parseSbatch(text);
  const nodes = positiveInt(args.nodes, '--nodes') ?? d.nodes ?? 1;
  const perNodeTasks = d.ntasksPerNode ?? (d.ntasks ? Math.ceil(d.ntasks / nodes) : 1);
  const cpusPerNode = positiveInt(args['cpus-per-node'], '--cpus-per-node') ?? (d.cpusPerTask ?? 1) * perNodeTasks;
  if (nodes > 256) throw new CliError(`emulation runs at most 256 nodes, got ${nodes}`);
  const timeText = args.time !== undefined ? String(args.time) : d.time;
  const limitMs = timeText === undefined || /^(unlimited|infinite)$/i.test(timeText) ? undefined : parseSlurmTime(timeText, args.time !== undefined ? '--time' : '#SBATCH --time');
  const killWaitMs = args['kill-wait'] === undefined ? 30_000 : parseDuration(String(args['kill-wait']), '--kill-wait');
  const signal = args.signal !== undefined ? parseSignalSpec(String(args.signal)) : d.signal;
  const jobId = String(process.pid);
  const started = Date.now();
  const endAt = limitMs === undefined ? undefined : started + limitMs;
  const env = batchEnv(process.env, { nodes, cpusPerNode }, jobId, {
    jobName: d.jobName ?? basename(script),
    ...(d.cpusPerTask !== undefined ? { cpusPerTask: Math.min(d.cpusPerTask, cpusPerNode) } : {}),
    ...(d.ntasksPerNode !== undefined ? { ntasksPerNode: d.ntasksPerNode } : {}),
    ...(endAt !== undefined ? { endAt } : {}),
    submitDir: process.cwd(),
  });
  r.note(
    `emulated batch job ${jobId}: ${nodes} node${nodes === 1 ? '' : 's'} × ${cpusPerNode} CPU${cpusPerNode === 1 ? '' : 's'} (${env.SLURM_JOB_NODELIST})${limitMs !== undefined ? `, time limit ${formatDuration(limitMs)}` : ''}${d.seen.length ? `; from #SBATCH: ${d.seen.join(' ')}` : ''}`,
  );
  const [cmd, ...cmdArgs] = interp;
  const child = spawn(cmd!, [...cmdArgs, resolve(script), ...rest], { env, stdio: 'inherit', detached: true });
  const timers: NodeJS.Timeout[] = [];
  let killTimer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const endGroup = (sig: NodeJS.Signals) => {
    signalGroup(child.pid, sig);
    if (!killTimer) killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), killWaitMs);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGUSR1' || sig === 'SIGUSR2') {
      // scancel --batch --signal: the batch shell only.
      if (child.pid) process.kill(child.pid, sig);
    } else endGroup(sig === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
  };
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  for (const s of forwarded) process.on(s, onSignal);
  if (limitMs !== undefined) {
    timers.push(
      setTimeout(() => {
        timedOut = true;
        process.stderr.write(`slurmstepd: error: *** JOB ${jobId} ON emu1 CANCELLED AT ${new Date().toISOString().slice(0, 19)} DUE TO TIME LIMIT ***\n`);
        endGroup('SIGTERM');
      }, limitMs),
    );
    if (signal) {
      if (signal.beforeSec * 1000 >= limitMs) r.warn(`--signal ${signal.signal}@${signal.beforeSec} is due before the job starts (time limit ${formatDuration(limitMs)}): it is sent at once`);
      if (signal.batchOnly) {
        timers.push(
          setTimeout(() => {
            if (child.pid) {
              try {
                process.kill(child.pid, signal.signal as NodeJS.Signals);
              } catch {
                // the script has ended
              }
            }
          }, Math.max(0, limitMs - signal.beforeSec * 1000)),
        );
      } else r.warn(`--signal=${signal.signal}@${signal.beforeSec} goes to job steps in Slurm; emulation has none, so only B: (the batch shell) is delivered`);
    }
  } else if (signal) r.warn(`--signal needs a time limit (--time) to be delivered`);
  const status = await new Promise<number>((res) => {
    child.once('error', (e) => {
      r.error(new CliError(`cannot run ${script} with ${cmd}: ${e.message}`));
      res(EXIT.usage);
    });
    child.once('exit', (code, sig) => res(code ?? 128 + ((sig && (osConstants.signals as Record<string, number>)[sig]) || 15)));
  });
  for (const t of timers) clearTimeout(t);
  clearTimeout(killTimer);
  for (const s of forwarded) process.off(s, onSignal);
  // The job is over: whatever it left running goes, as Slurm ends every process of a finished job.
  signalGroup(child.pid, 'SIGKILL');
  if (timedOut) r.note(`job ${jobId} reached its time limit after ${formatDuration(Date.now() - started)}`);
  return status;
}
