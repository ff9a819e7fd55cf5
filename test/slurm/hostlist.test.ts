// Hostlist expand/compress against a table of cases; every expected value below was checked
// against Slurm 22.05.8's `scontrol show hostnames` / `scontrol show hostlist` (see scontrol.test.ts
// for the live comparison).
import { describe, expect, it } from 'vitest';
import {
  MAX_HOSTLIST_NAMES,
  MAX_HOSTS_PER_RANGE,
  SlurmParseError,
  compressHostlist,
  expandHostlist,
} from '../../dist/slurm/index.js';

/** The SlurmParseError that fn throws (fails the test if it throws nothing or something else). */
function thrown(fn: () => unknown): SlurmParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SlurmParseError);
    return e as SlurmParseError;
  }
  throw new Error('expected a SlurmParseError, nothing was thrown');
}

const r = (prefix: string, lo: number, hi: number, width = 0): string[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => prefix + String(lo + i).padStart(width, '0'));

describe('expandHostlist', () => {
  const cases: Array<[string, string[]]> = [
    ['', []],
    ['n1', ['n1']],
    ['n', ['n']],
    ['n1,n2', ['n1', 'n2']],
    ['n[1-3]', ['n1', 'n2', 'n3']],
    ['n[01-04,07]', ['n01', 'n02', 'n03', 'n04', 'n07']],
    ['n[1-3],gpu[1-2]', ['n1', 'n2', 'n3', 'gpu1', 'gpu2']],
    ['gpu[09-10],n[1-3]', ['gpu09', 'gpu10', 'n1', 'n2', 'n3']],
    ['n[1]', ['n1']],
    ['n[1-1]', ['n1']],
    ['n[001]', ['n001']],
    ['n[7,3,5]', ['n7', 'n3', 'n5']],
    ['n[3,1-2]', ['n3', 'n1', 'n2']],
    ['n[1-3,3,3]', ['n1', 'n2', 'n3', 'n3', 'n3']],
    ['n[1-2],n[2-3]', ['n1', 'n2', 'n2', 'n3']],
    // The width of a range is the width of its low bound as written.
    ['n[008-11]', ['n008', 'n009', 'n010', 'n011']],
    ['n[8-011]', ['n8', 'n9', 'n10', 'n11']],
    ['n[01-2]', ['n01', 'n02']],
    ['n[1-02]', ['n1', 'n2']],
    ['n[9-11]', ['n9', 'n10', 'n11']],
    ['n[98-101]', ['n98', 'n99', 'n100', 'n101']],
    ['n[0-3]', ['n0', 'n1', 'n2', 'n3']],
    ['n[00-02]', ['n00', 'n01', 'n02']],
    ['n[099-100,0100]', ['n099', 'n100', 'n0100']],
    ['n[1,01,001]', ['n1', 'n01', 'n001']],
    // An empty prefix, digits and dashes in prefixes.
    ['[1-3]', ['1', '2', '3']],
    ['[07-09]', ['07', '08', '09']],
    ['node-1-[1-2]', ['node-1-1', 'node-1-2']],
    ['n3-1', ['n3-1']],
    ['c1.example.org', ['c1.example.org']],
    ['a_b[1-2]', ['a_b1', 'a_b2']],
    // Several bracket groups: the last varies fastest, then the others from the first to the second-to-last.
    ['rack[1-2]-n[1-3]', ['rack1-n1', 'rack1-n2', 'rack1-n3', 'rack2-n1', 'rack2-n2', 'rack2-n3']],
    ['x[1-3][4-5]', ['x14', 'x15', 'x24', 'x25', 'x34', 'x35']],
    ['n[1-2]-[3-4]', ['n1-3', 'n1-4', 'n2-3', 'n2-4']],
    ['r[01-02]n[7,9]', ['r01n7', 'r01n9', 'r02n7', 'r02n9']],
    [
      'a[1-2]b[1-2]c[1-2]',
      ['a1b1c1', 'a1b1c2', 'a2b1c1', 'a2b1c2', 'a1b2c1', 'a1b2c2', 'a2b2c1', 'a2b2c2'],
    ],
    [
      'a[1-2]b[1-2]c[1-2]d[1-2]',
      [
        'a1b1c1d1', 'a1b1c1d2', 'a2b1c1d1', 'a2b1c1d2', 'a1b2c1d1', 'a1b2c1d2', 'a2b2c1d1', 'a2b2c1d2',
        'a1b1c2d1', 'a1b1c2d2', 'a2b1c2d1', 'a2b1c2d2', 'a1b2c2d1', 'a1b2c2d2', 'a2b2c2d1', 'a2b2c2d2',
      ],
    ],
    // Separators: comma, space and tab outside brackets; empty groups are skipped, as Slurm does.
    ['n1 n2', ['n1', 'n2']],
    ['n1\tn2', ['n1', 'n2']],
    ['n[1-3],,m', ['n1', 'n2', 'n3', 'm']],
    [',n1,', ['n1']],
    ['n[1-2] ,x', ['n1', 'n2', 'x']],
    // Order and duplicates are kept.
    ['n3,n1,n2', ['n3', 'n1', 'n2']],
    ['a,b,a', ['a', 'b', 'a']],
    ['n[0-65535]', r('n', 0, 65535)],
  ];
  it.each(cases)('%j', (input, names) => {
    expect(expandHostlist(input)).toEqual(names);
  });

  it('expands a list of every shape in one go', () => {
    expect(expandHostlist('n[01-02],gpu1,rack[1-2]-c[9-10],x')).toEqual([
      'n01', 'n02', 'gpu1', 'rack1-c9', 'rack1-c10', 'rack2-c9', 'rack2-c10', 'x',
    ]);
  });
});

describe('expandHostlist errors', () => {
  const cases: Array<[string, string]> = [
    ['n[3-1]', 'range 3-1 is descending'],
    ['n[1-3,5-4]', 'range 5-4 is descending'],
    ['n[1-3', '"[" at position 1 is never closed'],
    ['x,n[1-3', '"[" at position 3 is never closed'],
    ['n[1', '"[" at position 1 is never closed'],
    ['[', '"[" at position 0 is never closed'],
    ['a[1-2]b[', '"[" at position 7 is never closed'],
    ['n]1', '"]" at position 1 has no matching "["'],
    [']', '"]" at position 0 has no matching "["'],
    ['n[1-2]]', '"]" at position 6 has no matching "["'],
    ['a]b[1-2]', '"]" at position 1 has no matching "["'],
    ['a[[1-2]]', '"[" at position 2 is inside the bracket opened at position 1'],
    ['a[1-2[3]]', '"[" at position 5 is inside the bracket opened at position 1'],
    ['gpu[1-2]-ib', 'text "-ib" follows the last "]" in "gpu[1-2]-ib" (Slurm 22.05 allows brackets only at the end of a name)'],
    ['a[1-3]b', 'text "b" follows the last "]" in "a[1-3]b" (Slurm 22.05 allows brackets only at the end of a name)'],
    ['n1,n[1-2]x,m', 'text "x" follows the last "]" in "n[1-2]x" (Slurm 22.05 allows brackets only at the end of a name)'],
    ['n[]', 'empty brackets "[]"'],
    ['[]', 'empty brackets "[]"'],
    ['n[]x', 'empty brackets "[]"'],
    ['n[1,,2]', 'empty range in "[1,,2]"'],
    ['n[,1]', 'empty range in "[,1]"'],
    ['n[1,]', 'empty range in "[1,]"'],
    ['n[1-]', 'range "1-" in "[1-]" is not a number N or a range N-M'],
    ['n[-1]', 'range "-1" in "[-1]" is not a number N or a range N-M'],
    ['n[a]', 'range "a" in "[a]" is not a number N or a range N-M'],
    ['n[0x1]', 'range "0x1" in "[0x1]" is not a number N or a range N-M'],
    ['n[1x2]', 'range "1x2" in "[1x2]" is not a number N or a range N-M'],
    ['n[1-2-3]', 'range "1-2-3" in "[1-2-3]" is not a number N or a range N-M'],
    ['n[1--2]', 'range "1--2" in "[1--2]" is not a number N or a range N-M'],
    ['n[ 1]', 'range " 1" in "[ 1]" is not a number N or a range N-M'],
    ['n[+1]', 'range "+1" in "[+1]" is not a number N or a range N-M'],
    ['n[1 - 2]', 'range "1 - 2" in "[1 - 2]" is not a number N or a range N-M'],
    ['n[1 ,2]', 'range "1 " in "[1 ,2]" is not a number N or a range N-M'],
    ['n[99999999999999999999]', 'number 99999999999999999999 is too large'],
    ['n[1-99999999999999999999]', 'number 99999999999999999999 is too large'],
    ['n[0-65536]', "range 0-65536 names 65537 hosts, more than Slurm's limit of 65536 per range"],
    ['a[0-9999]b[0-9999]', 'it names more than 1000000 hosts'],
    ['n[0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000,0-60000]', 'it names more than 1000000 hosts'],
  ];
  it.each(cases)('%j', (input, reason) => {
    const e = thrown(() => expandHostlist(input));
    expect(e.message).toBe(`invalid hostlist ${JSON.stringify(input)}: ${reason}`);
    expect(e.name).toBe('SlurmParseError');
    expect(e.code).toBe('ESLURMPARSE');
    expect(e.reason).toBe(reason);
    expect(e.value).toBe(input);
    expect(e.variable).toBeUndefined();
    expect(e).toBeInstanceOf(Error);
  });

  it('names the variable when given one', () => {
    const e = thrown(() => expandHostlist('n[3-1]', 'SLURM_JOB_NODELIST'));
    expect(e.message).toBe('SLURM_JOB_NODELIST="n[3-1]" is malformed: range 3-1 is descending');
    expect(e.variable).toBe('SLURM_JOB_NODELIST');
    expect(e.value).toBe('n[3-1]');
    expect(e.reason).toBe('range 3-1 is descending');
  });

  it('caps the total over all groups of a list, before expanding any', () => {
    const list = Array.from({ length: 16 }, (_, i) => `g${i}[0-65535]`).join(',');
    expect(thrown(() => expandHostlist(list)).reason).toBe(`it names more than ${MAX_HOSTLIST_NAMES} hosts`);
    expect(thrown(() => expandHostlist('a[1-2],b[0-999]c[0-999]')).reason).toBe(`it names more than ${MAX_HOSTLIST_NAMES} hosts`);
    expect(MAX_HOSTS_PER_RANGE).toBe(65_536);
  });

  it('clips a very long list when quoting it', () => {
    const list = `${'n1,'.repeat(500)}n[2-1]`;
    expect(thrown(() => expandHostlist(list)).message).toBe(
      `invalid hostlist ${JSON.stringify(list.slice(0, 1000))}… (${list.length} characters): range 2-1 is descending`,
    );
  });

  it('quotes control characters as JSON does', () => {
    expect(thrown(() => expandHostlist('n[1\n]')).message).toBe(
      'invalid hostlist "n[1\\n]": range "1\\n" in "[1\\n]" is not a number N or a range N-M',
    );
  });
});

describe('compressHostlist', () => {
  const cases: Array<[string[], string]> = [
    [[], ''],
    [['n1'], 'n1'],
    [['n'], 'n'],
    [['n1', 'n2', 'n3'], 'n[1-3]'],
    [['n01', 'n02', 'n03', 'n04', 'n07'], 'n[01-04,07]'],
    [['n3', 'n1', 'n2'], 'n[3,1-2]'],
    [['n1', 'n3'], 'n[1,3]'],
    [['n1', 'n2', 'n3', 'n3', 'n3'], 'n[1-3,3,3]'],
    [['n1', 'n2', 'n2', 'n3'], 'n[1-2,2-3]'],
    [['n3', 'n2', 'n1'], 'n[3,2,1]'],
    [['a', 'b', 'a'], 'a,b,a'],
    [['a', 'a'], 'a,a'],
    [['n1', 'm1', 'n2'], 'n1,m1,n2'],
    [['n1', 'n2', 'm1', 'n3'], 'n[1-2],m1,n3'],
    [['n', 'n1', 'n2'], 'n,n[1-2]'],
    [['n1', 'n2', 'n'], 'n[1-2],n'],
    // Padding: ranges join only where one width prints every number as written.
    [['n1', 'n01'], 'n[1,01]'],
    [['n01', 'n1'], 'n[01,1]'],
    [['n9', 'n10', 'n11'], 'n[9-11]'],
    [['n09', 'n10'], 'n[09-10]'],
    [['n8', 'n09'], 'n[8,09]'],
    [['n099', 'n100', 'n0100'], 'n[099-100,0100]'],
    [['n98', 'n99', 'n100', 'n101'], 'n[98-101]'],
    [['n008', 'n009', 'n010', 'n011'], 'n[008-011]'],
    [['n0', 'n1'], 'n[0-1]'],
    [['n00', 'n01'], 'n[00-01]'],
    [['n0', 'n00'], 'n[0,00]'],
    [['n001'], 'n001'],
    [['n1', 'n01', 'n099', 'n100', 'n0100', 'n8', 'n09', 'a', 'a', 'n9', 'n10'], 'n[1,01,099-100,0100,8,09],a,a,n[9-10]'],
    // Prefixes end before the trailing digits; names of digits only have an empty prefix.
    [['1', '2', '3'], '[1-3]'],
    [['07', '08'], '[07-08]'],
    [['5'], '5'],
    [['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2'], 'rack1-n[1-2],rack2-n[1-2]'],
    [['x14', 'x15', 'x24', 'x25'], 'x[14-15,24-25]'],
    [['n1-3', 'n1-4', 'n2-3'], 'n1-[3-4],n2-3'],
    [['c1.example.org', 'c2.example.org'], 'c1.example.org,c2.example.org'],
    [['gpu09', 'gpu10', 'n1'], 'gpu[09-10],n1'],
    // A number too large to hold exactly stays a plain name (Slurm would print 18446744073709551615).
    [['n99999999999999999999', 'n1'], 'n99999999999999999999,n1'],
  ];
  it.each(cases)('%j', (names, text) => {
    expect(compressHostlist(names)).toBe(text);
    expect(expandHostlist(text)).toEqual(names);
  });

  it('compresses n0..n65535 to n[0-65535]', () => {
    expect(compressHostlist(r('n', 0, 65535))).toBe('n[0-65535]');
  });

  it('compresses what expandHostlist gives back to the same names', () => {
    for (const list of ['n[01-04,07]', 'rack[1-2]-n[1-3]', 'a[1-2]b[1-2]c[1-2]', 'n[8-011],n[099-100,0100]', 'x,y,x']) {
      const names = expandHostlist(list);
      expect(expandHostlist(compressHostlist(names))).toEqual(names);
    }
  });

  const bad: Array<[string, string]> = [
    ['', 'invalid host name "": it is empty'],
    ['a,b', 'invalid host name "a,b": it contains ","'],
    ['n[1]', 'invalid host name "n[1]": it contains "["'],
    ['n]', 'invalid host name "n]": it contains "]"'],
    ['a b', 'invalid host name "a b": it contains white space'],
    ['a\tb', 'invalid host name "a\\tb": it contains white space'],
    ['a\n', 'invalid host name "a\\n": it contains white space'],
  ];
  it.each(bad)('rejects the name %j', (name, message) => {
    const e = thrown(() => compressHostlist(['n1', name]));
    expect(e.message).toBe(message);
    expect(e.code).toBe('ESLURMPARSE');
    expect(e.value).toBe(name);
  });
});

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

describe('round trip', () => {
  it('expand(compress(names)) gives the names back, for 2000 seeded lists', () => {
    const rand = prng(20250522);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const prefixes = ['n', 'gpu', 'rack1-n', 'r01c', '', 'a.b', 'x-'];
    for (let t = 0; t < 2000; t++) {
      const names: string[] = [];
      const len = Math.floor(rand() * 30);
      let prev = Math.floor(rand() * 120);
      for (let i = 0; i < len; i++) {
        // Mostly ascending runs, sometimes a jump back, a duplicate or a name without digits.
        const roll = rand();
        const n = roll < 0.6 ? prev + 1 : roll < 0.7 ? prev : roll < 0.8 ? Math.max(prev - 3, 0) : Math.floor(rand() * 120);
        prev = n;
        const width = pick([0, 0, 0, 2, 3]);
        names.push(rand() < 0.05 ? pick(['login', 'head', 'x']) : pick(prefixes) + String(n).padStart(width, '0'));
      }
      const text = compressHostlist(names);
      expect(expandHostlist(text), text).toEqual(names);
    }
  });
});
