// --halt as GNU parallel reads it: when to stop a run early (now: kill running tasks; soon: let them
// finish, start no more), on how many (or what share of) failed, succeeded or finished tasks, and
// the exit status the run then ends with.
import { CliError } from './errors.js';

export interface Halt {
  /** now: running tasks are stopped (recorded as cancelled); soon: they finish. */
  when: 'now' | 'soon';
  why: 'fail' | 'success' | 'done';
  /** A count, or a percentage of the run's tasks when `percent`. */
  n: number;
  percent: boolean;
  /** As given, for messages. */
  text: string;
}

/** GNU parallel's numeric forms: 1 = soon,fail=1; 2 = now,fail=1; -1 = soon,success=1; -2 = now,success=1; 1-99% = soon,fail=N%. */
const LEGACY: Record<string, string> = { '1': 'soon,fail=1', '2': 'now,fail=1', '-1': 'soon,success=1', '-2': 'now,success=1' };

/** Parse --halt; null for never (or 0). `from` names the option or variable in errors. */
export function parseHalt(v: string, from = '--halt'): Halt | null {
  const text = v.trim();
  if (text === 'never' || text === '0') return null;
  let s = LEGACY[text] ?? text;
  if (/^\d+(\.\d+)?%$/.test(s)) s = `soon,fail=${s}`;
  const m = /^(now|soon),(fail|success|done)=(\d+(?:\.\d+)?)(%?)$/.exec(s);
  const bad = () =>
    new CliError(
      `${from} must be WHEN,WHY=N or WHEN,WHY=P% (WHEN: now or soon; WHY: fail, success or done), or never, got ${JSON.stringify(v)}`,
      undefined,
      'e.g. --halt now,fail=1 (stop at the first failure, stopping running tasks), --halt soon,fail=10% (start no more once 10% failed), --halt now,success=1',
    );
  if (!m) throw bad();
  const n = Number(m[3]);
  const percent = m[4] === '%';
  if (!(n > 0) || (percent && n > 100) || (!percent && !Number.isInteger(n))) throw bad();
  return { when: m[1] as Halt['when'], why: m[2] as Halt['why'], n, percent, text };
}

/** Counts of final outcomes so far. */
export interface Outcomes {
  failed: number;
  succeeded: number;
}

/** Whether the halt condition holds after these outcomes, for a run of `total` tasks. */
export function haltReached(h: Halt, k: Outcomes, total: number): boolean {
  const count = h.why === 'fail' ? k.failed : h.why === 'success' ? k.succeeded : k.failed + k.succeeded;
  if (count === 0) return false;
  return h.percent ? count * 100 >= h.n * total : count >= h.n;
}

/**
 * GNU parallel's exit status for a run that halted: success → 0; fail=1 → the failing command's own
 * exit status; fail=P% → the percentage of tasks that failed; otherwise the number of failed tasks
 * (at most 101).
 */
export function haltExitCode(h: Halt, k: Outcomes, total: number, lastExit: number | null): number {
  if (h.why === 'success') return 0;
  if (h.why === 'fail' && !h.percent && h.n === 1) return lastExit !== null && lastExit > 0 && lastExit < 256 ? lastExit : 1;
  if (h.percent) return Math.min(100, Math.max(k.failed > 0 ? 1 : 0, Math.floor((k.failed * 100) / Math.max(1, total))));
  return Math.min(101, k.failed);
}

/** How a halt is described: "--halt now,fail=1: 1 task failed". */
export function describeHalt(h: Halt, k: Outcomes): string {
  const what = h.why === 'fail' ? `${k.failed} failed` : h.why === 'success' ? `${k.succeeded} succeeded` : `${k.failed + k.succeeded} finished`;
  return `--halt ${h.text}: ${what}; ${h.when === 'now' ? 'stopping the running tasks (recorded as cancelled)' : 'not starting more tasks, waiting for the running ones'}`;
}
