// Slurm's per-node count lists, as in SLURM_JOB_CPUS_PER_NODE and SLURM_TASKS_PER_NODE:
// `40` (one node), `2(x3),1` (three nodes with 2, one with 1).
import { MAX_HOSTLIST_NAMES, malformed } from './hostlist.js';

/** At most this many entries from one count list (one per node, as for hostlists). */
export const MAX_COUNT_ENTRIES = MAX_HOSTLIST_NAMES;

/**
 * Expand a Slurm count list into one number per node: `2(x3),1` → [2, 2, 2, 1], `40` → [40].
 * Throws SlurmParseError for malformed text; `variable` names the environment variable the
 * text came from, for the message (`SLURM_JOB_CPUS_PER_NODE="2(x3" is malformed: …`).
 */
export function parseCountList(s: string, variable?: string): number[] {
  const fail: (reason: string) => never = (reason) => {
    throw malformed('count list', s, reason, variable);
  };
  if (s === '') fail('it is empty');
  const out: number[] = [];
  const items = s.split(',');
  for (const [i, item] of items.entries()) {
    if (item === '') fail(`item ${i + 1} of ${items.length} is empty`);
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(item);
    if (!m) fail(`item "${item}" is not a count N or a repeated count N(xM)`);
    const count = safe(m[1] ?? '', fail);
    const repeat = m[2] === undefined ? 1 : safe(m[2], fail);
    if (repeat < 1) fail(`item "${item}" repeats its count ${repeat} times; at least 1 expected`);
    if (out.length + repeat > MAX_COUNT_ENTRIES) fail(`it has more than ${MAX_COUNT_ENTRIES} entries`);
    for (let r = 0; r < repeat; r++) out.push(count);
  }
  return out;
}

function safe(digits: string, fail: (reason: string) => never): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n)) fail(`number ${digits} is too large`);
  return n;
}

/** The inverse of parseCountList, as Slurm writes it: [2, 2, 2, 1] → `2(x3),1`. */
export function formatCountList(counts: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < counts.length; ) {
    const c = counts[i] as number;
    if (!Number.isSafeInteger(c) || c < 0) throw new RangeError(`counts[${i}] must be a non-negative integer, got ${c}`);
    let j = i + 1;
    while (j < counts.length && counts[j] === c) j++;
    parts.push(j - i > 1 ? `${c}(x${j - i})` : `${c}`);
    i = j;
  }
  return parts.join(',');
}
