// Slurm hostlist syntax (`n[01-04,07],gpu[1-2]`), expanded and compressed as Slurm 22.05's
// `scontrol show hostnames` / `scontrol show hostlist` do (src/common/hostlist.c), but strict:
// input that Slurm silently mangles (`n[1-3` becomes `n]`) is an error here.
import { SlurmpoolError } from '../errors.js';

/** At most this many names from one list: a guard against `n[0-99999999]`-style input. */
export const MAX_HOSTLIST_NAMES = 1_000_000;

/** Slurm's own limit (MAX_RANGE in hostlist.c): one range may not name more hosts than this. */
export const MAX_HOSTS_PER_RANGE = 65_536;

/** Values longer than this are clipped when quoted in an error message. */
const MAX_QUOTED = 1000;

export interface SlurmParseErrorDetails {
  /** The whole text that failed to parse (a list, a count list, a variable's value). */
  value?: string | undefined;
  /** The environment variable the value came from, when there is one. */
  variable?: string | undefined;
  /** What is wrong, without the quoted value: `range 3-1 is descending`. */
  reason: string;
  cause?: unknown;
}

/**
 * Slurm data that cannot be read: a malformed hostlist or count list, or a missing or malformed
 * `SLURM_*` variable. `variable` names the variable, `value` is the text that was read.
 */
export class SlurmParseError extends SlurmpoolError {
  override readonly code = 'ESLURMPARSE';
  readonly value: string | undefined;
  readonly variable: string | undefined;
  readonly reason: string;
  constructor(message: string, d: SlurmParseErrorDetails) {
    super('ESLURMPARSE', message, d.cause === undefined ? undefined : { cause: d.cause });
    this.value = d.value;
    this.variable = d.variable;
    this.reason = d.reason;
  }
}

/** Quote a short fragment of a value inside a reason. */
const q = (s: string): string => JSON.stringify(s);

/** Quote a value for an error message: JSON string syntax, clipped when very long. */
export function quoteValue(s: string): string {
  if (s.length <= MAX_QUOTED) return JSON.stringify(s);
  return `${JSON.stringify(s.slice(0, MAX_QUOTED))}… (${s.length} characters)`;
}

/**
 * The error for text that does not parse. With a variable: `SLURM_JOB_NODELIST="n[3-1]" is
 * malformed: range 3-1 is descending`; without: `invalid hostlist "n[3-1]": range 3-1 is descending`.
 */
export function malformed(what: string, value: string, reason: string, variable?: string): SlurmParseError {
  const message =
    variable === undefined
      ? `invalid ${what} ${quoteValue(value)}: ${reason}`
      : `${variable}=${quoteValue(value)} is malformed: ${reason}`;
  return new SlurmParseError(message, { value, variable, reason });
}

// ---- expand ----

/** Characters that separate the groups of a list (hostlist.c's `"\t, "`), outside brackets. */
function isSeparator(c: string): boolean {
  return c === ',' || c === ' ' || c === '\t';
}

/** One range of a bracket, `01-04`: numbers lo..hi, each printed at `width` (zero-padded). */
interface NumRange {
  lo: number;
  hi: number;
  width: number;
}

/** One bracket group: its ranges in order, and how many numbers they hold together. */
interface Group {
  ranges: NumRange[];
  count: number;
}

/** A name with bracket groups: literal[0] group[0] literal[1] group[1] … (one more literal than groups). */
interface Pattern {
  literals: string[];
  groups: Group[];
}

/** Split a list into its groups: separators inside brackets belong to the bracket. */
function splitGroups(s: string, fail: (reason: string) => never): string[] {
  const tokens: string[] = [];
  let start = -1;
  let open = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (open >= 0) {
      if (c === ']') open = -1;
      else if (c === '[') fail(`"[" at position ${i} is inside the bracket opened at position ${open}`);
      continue;
    }
    if (isSeparator(c)) {
      if (start >= 0) tokens.push(s.slice(start, i));
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    if (c === '[') open = i;
    else if (c === ']') fail(`"]" at position ${i} has no matching "["`);
  }
  if (open >= 0) fail(`"[" at position ${open} is never closed`);
  if (start >= 0) tokens.push(s.slice(start));
  return tokens;
}

/** Parse the inside of one bracket, `01-04,07`. */
function parseGroup(body: string, fail: (reason: string) => never): Group {
  if (body === '') fail('empty brackets "[]"');
  const ranges: NumRange[] = [];
  let count = 0;
  for (const range of body.split(',')) {
    if (range === '') fail(`empty range in ${q(`[${body}]`)}`);
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) fail(`range ${q(range)} in ${q(`[${body}]`)} is not a number N or a range N-M`);
    const loText = m[1] ?? '';
    const lo = toNumber(loText, fail);
    const hi = m[2] === undefined ? lo : toNumber(m[2], fail);
    if (lo > hi) fail(`range ${range} is descending`);
    if (hi - lo + 1 > MAX_HOSTS_PER_RANGE) {
      fail(`range ${range} names ${hi - lo + 1} hosts, more than Slurm's limit of ${MAX_HOSTS_PER_RANGE} per range`);
    }
    count += hi - lo + 1;
    if (count > MAX_HOSTLIST_NAMES) tooMany(fail);
    // Slurm pads every number of a range to the width of the range's low bound as written.
    ranges.push({ lo, hi, width: loText.length });
  }
  return { ranges, count };
}

function tooMany(fail: (reason: string) => never): never {
  return fail(`it names more than ${MAX_HOSTLIST_NAMES} hosts`);
}

function toNumber(digits: string, fail: (reason: string) => never): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n)) fail(`number ${digits} is too large`);
  return n;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Parse one group of a list (no top-level separators, brackets balanced and not nested). */
function parsePattern(token: string, fail: (reason: string) => never): Pattern {
  const literals: string[] = [];
  const groups: Group[] = [];
  let pos = 0;
  for (;;) {
    const open = token.indexOf('[', pos);
    if (open < 0) break;
    const close = token.indexOf(']', open);
    literals.push(token.slice(pos, open));
    groups.push(parseGroup(token.slice(open + 1, close), fail));
    pos = close + 1;
  }
  const tail = token.slice(pos);
  if (groups.length > 0 && tail !== '') {
    fail(`text ${q(tail)} follows the last "]" in ${q(token)} (Slurm 22.05 allows brackets only at the end of a name)`);
  }
  literals.push(tail);
  return { literals, groups };
}

/**
 * The order in which Slurm 22.05 varies the groups of `a[..]b[..]c[..]`, outermost first: the
 * last group always varies fastest; the others, from the second-to-last (slowest) to the first.
 * So `rack[1-2]-n[1-2]` is rack1-n1, rack1-n2, rack2-n1, rack2-n2, and `a[1-2]b[1-2]c[1-2]`
 * starts a1b1c1, a1b1c2, a2b1c1, a2b1c2, a1b2c1. (hostlist.c's _push_range_list recurses on
 * the prefix's last bracket.)
 */
function nestingOrder(k: number): number[] {
  const order: number[] = [];
  for (let g = k - 2; g >= 0; g--) order.push(g);
  order.push(k - 1);
  return order;
}

function expandPattern(p: Pattern, out: string[]): void {
  const order = nestingOrder(p.groups.length);
  const chosen: string[] = new Array<string>(p.groups.length).fill('');
  const emit = (): void => {
    let name = p.literals[0] ?? '';
    for (let g = 0; g < p.groups.length; g++) name += (chosen[g] ?? '') + (p.literals[g + 1] ?? '');
    out.push(name);
  };
  const walk = (depth: number): void => {
    const g = order[depth];
    if (g === undefined) {
      emit();
      return;
    }
    for (const r of p.groups[g]?.ranges ?? []) {
      for (let n = r.lo; n <= r.hi; n++) {
        chosen[g] = pad(n, r.width);
        walk(depth + 1);
      }
    }
  };
  walk(0);
}

/**
 * Expand a Slurm hostlist into its host names, in Slurm's order, duplicates kept:
 * `n[01-03,07],gpu1` → n01, n02, n03, n07, gpu1. Throws SlurmParseError for malformed lists;
 * `variable` names the environment variable the list came from, for the message.
 */
export function expandHostlist(s: string, variable?: string): string[] {
  const fail: (reason: string) => never = (reason) => {
    throw malformed('hostlist', s, reason, variable);
  };
  const patterns = splitGroups(s, fail).map((t) => parsePattern(t, fail));
  let total = 0;
  for (const p of patterns) {
    total += p.groups.reduce((n, g) => n * g.count, 1);
    if (total > MAX_HOSTLIST_NAMES) tooMany(fail);
  }
  const out: string[] = [];
  for (const p of patterns) {
    if (p.groups.length === 0) out.push(p.literals[0] ?? '');
    else expandPattern(p, out);
  }
  return out;
}

// ---- compress ----

/** hostlist.c's hostrange: prefix plus lo..hi printed at `width`, or one name without a number. */
interface HostRange {
  prefix: string;
  lo: number;
  hi: number;
  width: number;
  /** A name without a usable numeric suffix: `prefix` is the whole name. */
  single: boolean;
}

function digitCount(n: number): number {
  return String(n).length;
}

/** How many zeros `n` gets when printed at `width`. */
function zerosAt(n: number, width: number): number {
  return Math.max(width - digitCount(n), 0);
}

/**
 * hostlist.c's _width_equiv: can numbers printed at `a.width` and `b.width` share one width
 * without changing how `a.lo` or `b.lo` print? If so, make the widths equal (as Slurm does).
 */
function unifyWidths(a: HostRange, b: HostRange): boolean {
  if (a.width === b.width) return true;
  const aSame = zerosAt(a.lo, a.width) === zerosAt(a.lo, b.width);
  const bSame = zerosAt(b.lo, b.width) === zerosAt(b.lo, a.width);
  if (!aSame && !bSame) return false;
  if (!aSame) b.width = a.width;
  else a.width = b.width;
  return true;
}

function checkName(name: string): void {
  let reason: string | undefined;
  if (name === '') reason = 'it is empty';
  else if (/[,[\]]/.test(name)) reason = `it contains ${q(/[,[\]]/.exec(name)?.[0] ?? '')}`;
  else if (/\s/.test(name)) reason = 'it contains white space';
  if (reason !== undefined) {
    throw new SlurmParseError(`invalid host name ${quoteValue(name)}: ${reason}`, { value: name, reason });
  }
}

function toRange(name: string): HostRange {
  const m = /^(.*?)(\d+)$/.exec(name);
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(n)) return { prefix: name, lo: 0, hi: 0, width: 0, single: true };
  return { prefix: m[1] ?? '', lo: n, hi: n, width: (m[2] ?? '').length, single: false };
}

/** Would Slurm put these two ranges in one bracket? Same prefix, both numbered. */
function sameBracket(a: HostRange, b: HostRange | undefined): boolean {
  return b !== undefined && !a.single && !b.single && a.prefix === b.prefix;
}

function numberText(r: HostRange): string {
  return r.lo < r.hi ? `${pad(r.lo, r.width)}-${pad(r.hi, r.width)}` : pad(r.lo, r.width);
}

/**
 * Compress host names into Slurm's hostlist syntax, keeping their order and duplicates, exactly
 * as `scontrol show hostlist` does: n3,n1,n2 → `n[3,1-2]`; n1,n2,n3 → `n[1-3]`.
 * `expandHostlist(compressHostlist(names))` gives `names` back.
 */
export function compressHostlist(names: readonly string[]): string {
  const ranges: HostRange[] = [];
  for (const name of names) {
    checkName(name);
    const r = toRange(name);
    const tail = ranges[ranges.length - 1];
    // hostlist_push_range: extend the last range when r continues it at a compatible width.
    if (tail !== undefined && sameBracket(tail, r) && tail.hi === r.lo - 1 && unifyWidths(tail, r)) {
      tail.hi = r.hi;
    } else {
      ranges.push(r);
    }
  }
  // hostlist_ranged_string: consecutive ranges with one prefix share one bracket.
  const parts: string[] = [];
  for (let i = 0; i < ranges.length; ) {
    const first = ranges[i] as HostRange;
    if (first.single) {
      parts.push(first.prefix);
      i++;
      continue;
    }
    const nums = [numberText(first)];
    let j = i + 1;
    for (let r = ranges[j]; r !== undefined && sameBracket(first, r); r = ranges[++j]) nums.push(numberText(r));
    const bracket = nums.length > 1 || first.hi > first.lo;
    parts.push(bracket ? `${first.prefix}[${nums.join(',')}]` : `${first.prefix}${nums[0] ?? ''}`);
    i = j;
  }
  return parts.join(',');
}
