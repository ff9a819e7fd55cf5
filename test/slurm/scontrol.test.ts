// expandHostlist / compressHostlist against the real `scontrol show hostnames` / `show hostlist`
// (Debian's slurm-wlm 22.05) on seeded generated lists. All commands go to one scontrol process
// through its stdin, so the whole comparison costs a few scontrol starts.
//
// Network rule: scontrol never runs without SLURM_CONF pointing at the file written below; without
// a config, Slurm's clients try a DNS SRV lookup for a configless controller.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlurmParseError, compressHostlist, expandHostlist } from '../../dist/slurm/index.js';

const dir = mkdtempSync(join(tmpdir(), 'slurmpool-scontrol-'));
const SLURM_CONF = join(dir, 'slurm.conf');
writeFileSync(
  SLURM_CONF,
  [
    'ClusterName=t',
    'SlurmctldHost=localhost(127.0.0.1)',
    'NodeName=n1 NodeAddr=127.0.0.1 CPUs=1',
    'PartitionName=p Nodes=n1 Default=YES',
    '',
  ].join('\n'),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', SLURM_CONF, LANG: 'C' };
const INSTALL = 'apt-get update && apt-get install -y --no-install-recommends slurm-wlm munge';

function scontrol(args: string[], input?: string): { stdout: string; stderr: string } {
  const r = spawnSync('scontrol', args, {
    env: ENV,
    input,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.signal) throw new Error(`scontrol ${args.join(' ')} was killed by ${r.signal} (timeout?)`);
  return { stdout: r.stdout, stderr: r.stderr };
}

function slurmVersion(): string | null {
  try {
    return scontrol(['--version']).stdout.trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

const version = slurmVersion();

type Kind = 'hostnames' | 'hostlist';
interface Answer {
  /** Output lines (`hostnames`: one name a line; `hostlist`: one line). */
  lines: string[];
  /** scontrol printed `Invalid hostlist: <arg>` and nothing on stdout. */
  invalid: boolean;
}

/**
 * Run many `show hostnames|hostlist ARG` commands in one scontrol, read from its stdin. After each
 * command a marker command (`show hostnames @@END<i>@@`, which echoes the marker) splits stdout.
 * Lines starting `scontrol: ` are its prompt with the echoed command. ARG must not contain white space.
 */
function batch(cmds: ReadonlyArray<readonly [Kind, string]>): Answer[] {
  const input = cmds.map(([kind, arg], i) => `show ${kind} ${arg}\nshow hostnames @@END${i}@@\n`).join('');
  const { stdout, stderr } = scontrol([], input);
  const invalid = new Set(
    stderr
      .split('\n')
      .filter((l) => l.startsWith('Invalid hostlist: '))
      .map((l) => l.slice('Invalid hostlist: '.length)),
  );
  const answers: Answer[] = [];
  let lines: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('scontrol:')) continue;
    if (line === `@@END${answers.length}@@`) {
      const arg = cmds[answers.length]?.[1] ?? '';
      answers.push({ lines, invalid: lines.length === 0 && invalid.has(arg) });
      lines = [];
    } else if (line !== '') {
      lines.push(line);
    }
  }
  if (answers.length !== cmds.length) {
    throw new Error(`scontrol answered ${answers.length} of ${cmds.length} commands; stderr: ${stderr.slice(0, 2000)}`);
  }
  return answers;
}

/** mulberry32: a small seeded PRNG, so every run checks the same lists. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(0x5eed2205);
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const padTo = (n: number, width: number): string => String(n).padStart(width, '0');

const PREFIXES = ['n', 'gpu', 'node-', 'rack1-n', 'r01c', 'a.b', '', 'x_'];

/** A number as written in a range: sometimes zero-padded, sometimes wider than needed. */
function written(n: number): string {
  return padTo(n, pick([0, 0, 0, 2, 3, 4]));
}

/** The inside of a bracket: 1-4 numbers or ranges, unordered, overlapping, padded. */
function rangeList(maxSpan: number): string {
  const parts: string[] = [];
  for (let i = int(1, 4); i > 0; i--) {
    const lo = int(0, 120);
    parts.push(rand() < 0.4 ? written(lo) : `${written(lo)}-${written(lo + int(0, maxSpan))}`);
  }
  return parts.join(',');
}

/** One group of a list: a plain name, `prefix[ranges]`, or a name with several brackets. */
function group(): string {
  const roll = rand();
  if (roll < 0.25) return rand() < 0.2 ? pick(['login', 'head', 'c1.example.org']) : pick(PREFIXES) + written(int(0, 150));
  if (roll < 0.75) return `${pick(PREFIXES)}[${rangeList(12)}]`;
  const parts = [pick(['rack', 'r', 'a', 'x', ''])];
  for (let g = int(2, 3); g > 0; g--) parts.push(`[${rangeList(2)}]`, g > 1 ? pick(['-n', 'c', '', '.', '-5-']) : '');
  return parts.join('');
}

/** A generated hostlist of 1-5 groups. */
function expression(): string {
  return Array.from({ length: int(1, 5) }, group).join(',');
}

/** A generated list of names: ascending runs, jumps back, duplicates, padding mixes, names without digits. */
function nameList(): string[] {
  const names: string[] = [];
  let prev = int(0, 200);
  const prefix = pick(PREFIXES);
  for (let i = int(1, 40); i > 0; i--) {
    const roll = rand();
    prev = roll < 0.6 ? prev + 1 : roll < 0.7 ? prev : roll < 0.8 ? Math.max(prev - int(1, 5), 0) : int(0, 200);
    if (rand() < 0.05) names.push(pick(['login', 'head']));
    else names.push((rand() < 0.85 ? prefix : pick(PREFIXES)) + padTo(prev, pick([0, 0, 0, 0, 2, 3])));
  }
  return names;
}

/** A malformed list, made from a valid one: each kind is rejected by Slurm 22.05 too. */
function broken(): string {
  const lo = int(1, 50);
  const hi = lo + int(1, 9);
  const p = pick(PREFIXES);
  const kind = int(0, 4);
  const bad =
    kind === 0
      ? `${p}[${hi}-${lo}]`
      : kind === 1
        ? `${p}[${lo}-${hi}]${pick(['-ib', 'x', '.eth0', '0'])}`
        : kind === 2
          ? `${p}[${lo},,${hi}]`
          : kind === 3
            ? `${p}[]`
            : `${p}[${lo}-${hi}-${hi}]`;
  const list = [expression(), bad, expression()];
  return list.slice(int(0, 1), int(2, 3)).join(',');
}

// Lists that Slurm 22.05 accepts and mangles, or reads leniently, and that expandHostlist rejects.
// Slurm's answer is recorded so that a change in Slurm shows up here.
const LENIENT_IN_SLURM: Array<[string, string[]]> = [
  ['n[1-3', ['n]']],
  ['x,n[1-3', ['x', 'n]']],
  ['a[1-2]b[', ['a[1-2]b]']],
  ['n]1', ['n]1']],
  ['a]b[1-2]', ['a]b1', 'a]b2']],
  ['n[1-]', ['n1']],
  ['n[+1]', ['n01']],
  ['n[99999999999999999999]', ['n18446744073709551615']],
];

// Lists that Slurm 22.05 rejects with `Invalid hostlist`, as expandHostlist does.
const REJECTED: string[] = [
  'n[3-1]',
  'gpu[1-2]-ib',
  'a[1-3]b',
  'n1,n[1-2]x,m',
  'n[]',
  '[]',
  'n[]x',
  'n[1,,2]',
  'n[,1]',
  'n[-1]',
  'n[a]',
  'n[0x1]',
  'n[1x2]',
  'n[1-2-3]',
  'n[1--2]',
  'n[1-2]]',
  'a[[1-2]]',
  'a[1-2[3]]',
  'n[0-65536]',
];

const FIXED: string[] = [
  'n[01-04,07]',
  'rack[1-2]-n[1-3]',
  'a[1-2]b[1-2]c[1-2]',
  'a[1-2]b[1-2]c[1-2]d[1-2]',
  'x[1-3][4-5]',
  'n[1-2]-[3-4]',
  'a[1-2]5[3-4]',
  'n3,n1,n2',
  'n1,n01',
  'n01,n1',
  'n[008-11]',
  'n[8-011]',
  'n[099-100,0100]',
  'n[1-3,3,3]',
  'n[1-2],n[2-3]',
  '[1-3]',
  'n[1-3],,m',
  'n3-1',
];

// Slurm's largest range (64 Ki hosts), asked without the names (reading a 450 KB line takes scontrol seconds).
const BIGGEST = 'n[0-65535]';

if (version === null && process.env.CI === 'true') {
  describe('scontrol', () => {
    it('is installed (CI requires slurm-wlm)', () => {
      expect.fail(`slurm-wlm is missing: scontrol is not on PATH, so expandHostlist/compressHostlist cannot be compared with Slurm. Install it: ${INSTALL}`);
    });
  });
} else if (version === null) {
  describe.skip(`scontrol is not installed: comparison with Slurm skipped (install slurm-wlm: ${INSTALL})`, () => {
    it('compares with scontrol', () => {});
  });
}

describe.skipIf(version === null)(`against ${version ?? 'scontrol'}`, () => {
  const expressions = [...FIXED, ...Array.from({ length: 200 }, expression)];
  const nameLists = Array.from({ length: 200 }, nameList);
  const broken50 = Array.from({ length: 50 }, broken);

  // Everything Slurm is asked goes in one batch, sent before the tests below.
  const cmds: Array<[Kind, string]> = [];
  const ask = (kind: Kind, arg: string): number => cmds.push([kind, arg]) - 1;
  let ours: string[][] = [];
  let exprAsk: Array<{ hostnames: number; hostlist: number; namesHostlist: number }> = [];
  let listAsk: Array<{ hostlist: number; readBack: number }> = [];
  let rejectedAsk: number[] = [];
  let lenientAsk: number[] = [];
  let biggestAsk: number[] = [];
  let answers: Answer[] = [];
  const answer = (i: number | undefined): Answer => {
    const a = answers[i ?? -1];
    if (a === undefined) throw new Error(`no answer from scontrol for command ${i}`);
    return a;
  };

  beforeAll(() => {
    ours = expressions.map((x) => expandHostlist(x));
    exprAsk = expressions.map((x, i) => ({
      hostnames: ask('hostnames', x),
      hostlist: ask('hostlist', x),
      namesHostlist: ask('hostlist', (ours[i] ?? []).join(',')),
    }));
    listAsk = nameLists.map((names) => ({
      hostlist: ask('hostlist', names.join(',')),
      readBack: ask('hostnames', compressHostlist(names)),
    }));
    rejectedAsk = [...REJECTED, ...broken50].map((x) => ask('hostnames', x));
    lenientAsk = LENIENT_IN_SLURM.map(([x]) => ask('hostnames', x));
    biggestAsk = [ask('hostnames', BIGGEST), ask('hostlist', BIGGEST)];
    answers = batch(cmds);
  }, 120_000);

  it('runs Slurm 22.05 (the version these expectations were recorded with)', () => {
    expect(version).toMatch(/^slurm(-wlm)? 22\.05\./);
    expect(answers).toHaveLength(cmds.length);
  });

  it(`expands ${expressions.length} lists as scontrol show hostnames does`, () => {
    expressions.forEach((x, i) => {
      const a = answer(exprAsk[i]?.hostnames);
      expect(a.invalid, x).toBe(false);
      expect(ours[i], x).toEqual(a.lines);
    });
  });

  it('compresses their names as scontrol show hostlist does, text for text', () => {
    expressions.forEach((x, i) => {
      const names = ours[i] ?? [];
      const slurm = answer(exprAsk[i]?.namesHostlist).lines.join('\n');
      expect(compressHostlist(names), x).toBe(slurm);
      expect(expandHostlist(compressHostlist(names)), x).toEqual(names);
    });
  });

  it("reads back Slurm's own compressed form of each list", () => {
    expressions.forEach((x, i) => {
      const slurm = answer(exprAsk[i]?.hostlist).lines.join('\n');
      expect(expandHostlist(slurm), `${x} -> ${slurm}`).toEqual(ours[i]);
    });
  });

  it(`compresses ${nameLists.length} unordered, duplicated, padded name lists as scontrol does`, () => {
    nameLists.forEach((names, i) => {
      const ask = listAsk[i];
      const text = compressHostlist(names);
      expect(text, names.join(',')).toBe(answer(ask?.hostlist).lines.join('\n'));
      // Slurm expands our text to the same names, and so do we.
      expect(answer(ask?.readBack).lines, text).toEqual(names);
      expect(expandHostlist(text), text).toEqual(names);
    });
  });

  it(`rejects the ${REJECTED.length + broken50.length} malformed lists that Slurm rejects`, () => {
    [...REJECTED, ...broken50].forEach((x, i) => {
      expect(answer(rejectedAsk[i]), x).toEqual({ lines: [], invalid: true });
      expect(() => expandHostlist(x), x).toThrow(SlurmParseError);
    });
  });

  it('rejects lists that Slurm mangles or reads leniently (Slurm answers as recorded)', () => {
    LENIENT_IN_SLURM.forEach(([x, slurm], i) => {
      expect(answer(lenientAsk[i]).lines, x).toEqual(slurm);
      expect(() => expandHostlist(x), x).toThrow(SlurmParseError);
    });
  });

  it(`expands and compresses Slurm's largest range, ${BIGGEST}`, () => {
    const names = expandHostlist(BIGGEST);
    expect(names).toHaveLength(65_536);
    expect(names).toEqual(answer(biggestAsk[0]).lines);
    expect(compressHostlist(names)).toBe(answer(biggestAsk[1]).lines.join('\n'));
  });

  it('splits on spaces and tabs and skips empty groups, as scontrol does', () => {
    const list = 'n[1-2] x\tn[01-02],,y ,';
    const slurm = scontrol(['show', 'hostnames', list]).stdout.trim().split('\n');
    expect(slurm).toEqual(['n1', 'n2', 'x', 'n01', 'n02', 'y']);
    expect(expandHostlist(list)).toEqual(slurm);
    expect(scontrol(['show', 'hostlist', list]).stdout.trim()).toBe(compressHostlist(slurm));
  });
});
