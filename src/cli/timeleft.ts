// When the allocation ends, and whether a task started now can finish before then.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TaskRecord } from '../ordering.js';
import { formatDuration } from './durations.js';
import type { StopReason } from './feed.js';

/** The allocation's end and where that came from. */
export interface EndTime {
  at: number;
  source: string;
}

/** The first executable named `name` on PATH, or null. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** squeue's %e: "2024-05-01T12:34:56" in the local time zone; N/A, Unknown or NONE when there is no end. */
export function parseSqueueTime(s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(s.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(y, mo - 1, d, h, mi, se).getTime();
  return Number.isFinite(t) ? t : null;
}

/**
 * The allocation's end: --time-left, then SLURM_JOB_END_TIME, then `squeue -h -o %e -j $SLURM_JOB_ID`
 * (never in emulation, whose job ids squeue does not know). Null when none is known.
 */
export async function findEndTime(env: NodeJS.ProcessEnv, timeLeftMs: number | undefined, now = Date.now()): Promise<EndTime | null> {
  if (timeLeftMs !== undefined) return { at: now + timeLeftMs, source: '--time-left' };
  const e = env.SLURM_JOB_END_TIME;
  if (e && /^\d+$/.test(e)) return { at: Number(e) * 1000, source: 'SLURM_JOB_END_TIME' };
  const job = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
  if (!job || !/^\d+$/.test(job) || env.SLURMPOOL_EMULATED === '1' || !which('squeue', env)) return null;
  try {
    const { execa } = await import('execa');
    const r = await execa('squeue', ['-h', '-o', '%e', '-j', job], { env, reject: false, timeout: 5000, stdin: 'ignore' });
    const at = r.exitCode === 0 ? parseSqueueTime(String(r.stdout)) : null;
    return at === null ? null : { at, source: `squeue -j ${job}` };
  } catch {
    return null;
  }
}

/** Margin kept between the predicted end of the last task started and the allocation's end. */
export const END_MARGIN_MS = 15_000;

/**
 * Learns task durations from records, and refuses to hand out a task that would not finish before
 * the allocation ends, counting the tasks already queued ahead of it on the workers.
 */
export class TimeGate {
  private readonly recent: number[] = [];
  private sum = 0;
  private count = 0;
  private part: { key: string; ms: number; n: number } | null = null;

  constructor(
    readonly end: EndTime,
    private readonly marginMs = END_MARGIN_MS,
  ) {}

  /** Learn from a finished task (a command's own duration, or its share of its chunk's). */
  learn(r: TaskRecord, commandMs?: number): void {
    if (commandMs !== undefined) return this.sample(commandMs);
    const key = `${r.node}|${r.worker}|${r.started}|${r.ended}`;
    if (this.part && this.part.key === key) {
      this.part.n++;
      return;
    }
    this.closePart();
    this.part = { key, ms: Math.max(0, r.ended - r.started), n: 1 };
  }

  private closePart(): void {
    if (!this.part) return;
    const per = this.part.ms / this.part.n;
    for (let i = 0; i < Math.min(this.part.n, 8); i++) this.sample(per);
    this.part = null;
  }

  private sample(ms: number): void {
    this.sum += ms;
    this.count++;
    this.recent.push(ms);
    if (this.recent.length > 256) this.recent.shift();
  }

  /** A cautious duration of the next task: the larger of the mean and the 90th percentile of recent ones. */
  get taskMs(): number | null {
    this.closePart();
    if (this.count === 0) return null;
    const s = [...this.recent].sort((a, b) => a - b);
    const p90 = s[Math.min(s.length - 1, Math.floor(s.length * 0.9))] ?? 0;
    return Math.max(this.sum / this.count, p90);
  }

  /** Why not to start another task now, with `backlog` tasks handed out and unfinished on `workers` slots. */
  check(backlog: number, workers: number, now = Date.now()): StopReason | null {
    const d = this.taskMs;
    if (d === null) return null;
    const waves = Math.floor(backlog / Math.max(1, workers)) + 1;
    const finish = now + waves * d;
    if (finish <= this.end.at - this.marginMs) return null;
    const left = this.end.at - now;
    return {
      kind: 'time',
      message: `the allocation ends ${left > 0 ? `in ${formatDuration(left)}` : 'now'} (${this.end.source}) and a task takes about ${formatDuration(d)}: not starting tasks that could not finish`,
    };
  }
}
