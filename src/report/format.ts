// Numbers, durations and times as the report and `slurmpool status` print them.

/** 1,234,567 */
export function num(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

/** A duration: 0.42 ms, 12 ms, 3.25 s, 4m 05s, 10h 03m. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 0) return `-${duration(-ms)}`;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** An epoch-ms time in UTC: 2025-11-26 05:47:03 UTC. */
export function utc(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** 0.873 → 87.3% */
export function pct(share: number, digits = 1): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(digits)}%` : '–';
}

/** A rate with sensible precision: 0.052, 3.4, 1,234. */
export function rate(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n === 0) return '0';
  if (n >= 100) return num(n);
  if (n >= 10) return n.toFixed(1);
  if (n >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}
