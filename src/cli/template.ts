// Command templates as GNU parallel writes them: `slurmpool run 'CMD {}' ::: a b c :::: args.txt`.
// The arguments after ::: / :::: are split off before yargs sees the command line (yargs would read
// them, and the command's own -flags, as options); the template and its input sources then become a
// TaskSource like a task file's, whose commands are expanded when the feed asks for them.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { Options as YargsOption } from 'yargs';
import { CliError } from './errors.js';
import type { TaskSource } from './taskfile.js';

/** The separators GNU parallel puts before input sources: arguments, files of arguments, and their linked (+) forms. */
const SEPARATORS = new Set([':::', '::::', ':::+', '::::+']);

/** A command template and the sources its arguments come from, as typed. */
export interface TemplateArgs {
  /** The command words before the first separator, joined with spaces ('' when none: the arguments are the commands). */
  command: string;
  /** Each separator and the words after it, in order. */
  groups: { sep: string; words: string[] }[];
}

/**
 * Split `run [options] COMMAND… ::: ARGS… [:::: FILES…]…`: the options stay for yargs, the command
 * words (from the first word that is not an option, or after `--`) and the sources are taken out.
 * Options must come before the command, as with GNU parallel: a word after the command is its own.
 * Returns null when the command line has no separator (a task file run).
 */
export function splitTemplateArgv(argv: readonly string[], options: Record<string, YargsOption>): { argv: string[]; template: TemplateArgs } | null {
  const first = argv.findIndex((a) => SEPARATORS.has(a));
  if (first < 0) return null;
  const run = argv.findIndex((a) => !a.startsWith('-'));
  if (run < 0 || run > first || argv[run] !== 'run') return null;
  // Which options take a value (the next word), by long name and alias.
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type === 'boolean') continue;
    takesValue.add(`--${name}`);
    for (const a of [o.alias ?? []].flat()) takesValue.add(a.length === 1 ? `-${a}` : `--${a}`);
  }
  const head = argv.slice(0, first);
  const kept: string[] = [];
  let cmdAt = head.length;
  for (let p = 0; p < head.length; p++) {
    const a = head[p]!;
    if (p <= run) {
      kept.push(a);
      continue;
    }
    if (a === '--') {
      cmdAt = p + 1;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      cmdAt = p;
      break;
    }
    kept.push(a);
    // `-c 4`, `--workers 2`, and a cluster of short flags ending in one that takes a value (`-qc 4`).
    const last = /^-[a-zA-Z]{2,}$/.test(a) ? `-${a[a.length - 1]}` : a;
    if (!a.includes('=') && takesValue.has(last) && p + 1 < head.length) kept.push(head[++p]!);
  }
  const groups: TemplateArgs['groups'] = [];
  for (const a of argv.slice(first)) {
    if (SEPARATORS.has(a)) groups.push({ sep: a, words: [] });
    else groups[groups.length - 1]!.words.push(a);
  }
  return { argv: kept, template: { command: head.slice(cmdAt).join(' '), groups } };
}

/** Quote a word for /bin/sh as GNU parallel does: bare when only [-_.+a-zA-Z0-9/], else in single quotes. */
export function quoteArg(s: string): string {
  if (/[^-_.+a-z0-9/]/i.test(s)) {
    let q = `'${s.replace(/'/g, `'"'"'`)}'`;
    if (q.startsWith("''")) q = q.slice(2);
    if (q.endsWith("''")) q = q.slice(0, -2);
    return q;
  }
  return s === '' ? "''" : s;
}

/** GNU parallel's replacement strings' edits of an argument. */
const EDITS: Record<string, (s: string) => string> = {
  '': (s) => s,
  '.': (s) => s.replace(/\.[^/.]*$/, ''),
  '/': (s) => s.replace(/^.*\//s, ''),
  // Perl's File::Basename::dirname, which GNU parallel uses, agrees with Node's posix dirname.
  '//': (s) => posix.dirname(s),
  '/.': (s) => s.replace(/^.*\//s, '').replace(/\.[^/.]*$/, ''),
};

/** {}, {.}, {/}, {//}, {/.}, the same with a 1-based source number ({2}, {2.}, …), and {#}. */
const REPLACEMENT = /\{(?:(#)|(\d*)(\.|\/\/|\/\.|\/)?)\}/g;

/** A template compiled once: literal text and the replacements between it. */
export interface Template {
  /** The template as given. */
  text: string;
  /** Whether it holds a replacement string (else the arguments are appended, quoted). */
  replaces: boolean;
  expand(args: readonly string[], seq: number): string;
}

export function compileTemplate(text: string): Template {
  type Part = string | { seq: true } | { n: number; edit: (s: string) => string };
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(REPLACEMENT)) {
    parts.push(text.slice(last, m.index));
    if (m[1]) parts.push({ seq: true });
    else parts.push({ n: m[2] ? Number(m[2]) : 0, edit: EDITS[m[3] ?? '']! });
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  const replaces = parts.length > 1;
  return {
    text,
    replaces,
    expand(args, seq) {
      if (text === '') return args.join(' '); // no command: the arguments are the commands
      if (!replaces) return `${text} ${args.map(quoteArg).join(' ')}`;
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') out += p;
        else if ('seq' in p) out += String(seq);
        else if (p.n === 0) out += args.map((a) => quoteArg(p.edit(a))).join(' ');
        else if (p.n <= args.length) out += quoteArg(p.edit(args[p.n - 1]!));
        // a source number past the last source: nothing, as GNU parallel
      }
      return out;
    },
  };
}

/** Commands one template may make: each is expanded once up front to hash the work (--resume's check). */
export const MAX_COMMANDS = 100_000_000;

/** One input source: its arguments and how to name it in messages. */
interface Source {
  name: string;
  args: string[];
}

/** Lines of an argument file (:::: FILE, - for standard input): one argument a line, blank lines included, as GNU parallel. */
function argumentLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function readArgFile(path: string, stdin: () => string): Source {
  if (path === '-') return { name: ':::: - (standard input)', args: argumentLines(stdin()) };
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`argument file ${path} (after ::::) ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(e as Error).message}`}`);
  }
  if (st.isDirectory()) throw new CliError(`argument file ${path} (after ::::) is a directory, not a file`);
  return { name: `argument file ${path}`, args: argumentLines(readFileSync(path, 'utf8')) };
}

/**
 * The jobs of a template: the cartesian product of the sources, the first varying slowest; a source
 * after :::+ or ::::+ is linked to the one before it (its n-th argument goes with their n-th; the
 * longer is cut to the shorter, as GNU parallel 20221122 does).
 */
export function templateSource(t: TemplateArgs, readStdin: () => string): TaskSource & { template: Template } {
  const template = compileTemplate(t.command);
  if (t.command.includes('\0')) throw new CliError('the command template contains a NUL byte; a command line cannot');
  /** Groups of linked sources: each row of a group is one argument of each of its sources. */
  const groups: Source[][] = [];
  let stdinUsed = false;
  const stdin = () => {
    if (stdinUsed) throw new CliError(':::: - (standard input) may be given only once');
    stdinUsed = true;
    return readStdin();
  };
  for (const g of t.groups) {
    if (g.words.length === 0) throw new CliError(`${g.sep} is followed by no ${g.sep.startsWith('::::') ? 'file' : 'argument'}`, undefined, "arguments follow ::: (run 'echo {}' ::: a b c), files of arguments follow :::: (run 'echo {}' :::: args.txt)");
    const sources: Source[] = g.sep.startsWith('::::') ? g.words.map((w) => readArgFile(w, stdin)) : [{ name: `${g.sep} ${g.words.slice(0, 3).join(' ')}${g.words.length > 3 ? ' …' : ''}`, args: g.words }];
    sources.forEach((s, k) => {
      if (s.args.some((a) => a.includes('\0'))) throw new CliError(`${s.name} holds a NUL byte; an argument cannot`);
      // :::+ links its source to the one before; :::: FILE FILE2 are separate sources unless linked.
      if (g.sep.endsWith('+') && k === 0) {
        if (groups.length === 0) throw new CliError(`${g.sep} links to the source before it, and there is none`);
        groups[groups.length - 1]!.push(s);
      } else groups.push([s]);
    });
  }
  const rows = groups.map((g) => Math.min(...g.map((s) => s.args.length)));
  let count = 1;
  for (const r of rows) count *= r;
  if (count === 0) {
    const empty = groups.flat().find((s) => s.args.length === 0);
    throw new CliError(`${empty?.name ?? 'an input source'} has no arguments: there is nothing to run`);
  }
  if (!Number.isSafeInteger(count) || count > MAX_COMMANDS) {
    throw new CliError(`the input sources combine into ${count > 1e6 ? count.toExponential(2) : count} commands, more than ${MAX_COMMANDS.toLocaleString('en-US')}: split the run, or write a task file`);
  }
  const argsOf = (i: number): string[] => {
    const digits: number[] = new Array<number>(rows.length);
    let rest = i;
    for (let g = rows.length - 1; g >= 0; g--) {
      digits[g] = rest % rows[g]!;
      rest = Math.floor(rest / rows[g]!);
    }
    const args: string[] = [];
    groups.forEach((g, k) => {
      for (const s of g) args.push(s.args[digits[k]!]!);
    });
    return args;
  };
  const at = (i: number) => {
    if (!(i >= 0 && i < count)) throw new RangeError(`the template has ${count} commands; there is no command ${i}`);
    return { command: template.expand(argsOf(i), i + 1), line: i + 1 };
  };
  // The work's identity for --resume: every command this template makes, in order.
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(`${at(i).command}\n`);
  return { name: `the template ${quoteArg(t.command)}`, count, sha256: hash.digest('hex'), at, close: () => undefined, template };
}
