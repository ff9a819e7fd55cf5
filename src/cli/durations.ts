// Durations on the command line: ours (seconds by default) and Slurm's --time (minutes by default).
import { CliError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** "[D-]H:MM:SS", "MM:SS" → ms; null if not that shape. */
function clock(s: string): number | null {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(s);
  if (!m || (m[3] === undefined && m[1] === undefined)) return null;
  const days = Number(m[1] ?? 0);
  const parts = [m[2], m[3], m[4]].filter((x): x is string => x !== undefined).map(Number);
  // With a day: D-H, D-H:M, D-H:M:S. Without: M:S or H:M:S.
  let sec: number;
  if (m[1] !== undefined) sec = (parts[0] ?? 0) * 3600 + (parts[1] ?? 0) * 60 + (parts[2] ?? 0);
  else if (parts.length === 2) sec = parts[0]! * 60 + parts[1]!;
  else sec = parts[0]! * 3600 + parts[1]! * 60 + parts[2]!;
  return (days * 86_400 + sec) * 1000;
}

/**
 * A duration for --timeout, --grace, --time-left: "90" or "90s" (seconds), "1.5m", "2h", "1d",
 * "250ms", "MM:SS", "H:MM:SS" or "D-HH:MM:SS". Returns ms.
 */
export function parseDuration(v: string, what: string): number {
  const s = v.trim();
  const u = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(s);
  if (u) return Math.round(Number(u[1]) * UNITS[u[2] ?? 's']!);
  const c = clock(s);
  if (c !== null) return c;
  throw new CliError(`${what} must be a duration like 90, 90s, 15m, 2h or 1:30:00, got ${JSON.stringify(v)}`);
}

/**
 * Slurm's --time: "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS"; a bare number is
 * minutes, as sbatch reads it. Returns ms.
 */
export function parseSlurmTime(v: string, what: string): number {
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 60_000;
  const c = clock(s);
  if (c !== null) return c;
  throw new CliError(`${what} must be a Slurm time like 10 (minutes), 10:00, 1:00:00 or 1-00:00:00, got ${JSON.stringify(v)}`);
}

/** 75_000 → "1m15s"; 3_700_000 → "1h01m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  const h = Math.round(m / 60);
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}
