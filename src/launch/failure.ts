// Why an agent process failed, in the order a user reading an sbatch log needs: its own reason first.

/** srun's own lines that say only that a task ended, never why (any order they arrive in). */
const GENERIC = [
  /^srun: error: \S+: tasks? [\d,-]+: (Exited with exit code \d+|Killed|Terminated|Aborted)/,
  /^srun: launch\/slurm: /,
  /^srun: Job step aborted/,
  /^srun: StepId=\S+ (aborted|cancelled)/i,
  /^srun: (Terminating|Cancelled|Force Terminated) /,
];

/** How specific one stderr line is: the agent's own words over srun's other words over a stack frame over srun's generic ones. */
function rank(line: string): number {
  if (GENERIC.some((re) => re.test(line))) return 0;
  if (/^\s*at /.test(line)) return 1;
  if (line.startsWith('srun: ')) return 2;
  return 3;
}

/**
 * Order the lines an agent's launcher wrote to stderr: the most specific line first (the first
 * of equal rank), the others after it in arrival order. Blank lines are dropped.
 */
export function orderStderrLines(tail: string): string[] {
  const lines = tail.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  let best = 0;
  for (let i = 1; i < lines.length; i++) if (rank(lines[i]!) > rank(lines[best]!)) best = i;
  return [lines[best]!, ...lines.slice(0, best), ...lines.slice(best + 1)];
}

/**
 * One line naming why a node's agent failed: the most specific stderr line, then how the process
 * ended (`exit`), then the rest of stderr. Undefined when nothing is known yet.
 */
export function describeFailure(exit: string | undefined, tail: string | undefined): string | undefined {
  const [first, ...rest] = orderStderrLines(tail ?? '');
  if (!exit && !first) return undefined;
  if (!first) return exit;
  if (rank(first) === 0) return [exit, first, ...rest].filter(Boolean).join('; ');
  return [first, exit, ...rest].filter(Boolean).join('; ');
}
