// Count lists as Slurm writes SLURM_JOB_CPUS_PER_NODE and SLURM_TASKS_PER_NODE.
import { describe, expect, it } from 'vitest';
import { MAX_COUNT_ENTRIES, SlurmParseError, formatCountList, parseCountList } from '../../dist/slurm/index.js';

function thrown(fn: () => unknown): SlurmParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SlurmParseError);
    return e as SlurmParseError;
  }
  throw new Error('expected a SlurmParseError, nothing was thrown');
}

describe('parseCountList', () => {
  const cases: Array<[string, number[]]> = [
    ['40', [40]],
    ['1', [1]],
    ['0', [0]],
    ['2(x3),1', [2, 2, 2, 1]],
    ['1(x3)', [1, 1, 1]],
    ['2,1', [2, 1]],
    ['2,1(x2)', [2, 1, 1]],
    ['4(x2),2(x3)', [4, 4, 2, 2, 2]],
    ['4(x2),1', [4, 4, 1]],
    ['1(x1)', [1]],
    ['36(x2),72,36(x3)', [36, 36, 72, 36, 36, 36]],
    ['007', [7]],
    ['1(x01)', [1]],
    ['128(x1000)', Array<number>(1000).fill(128)],
  ];
  it.each(cases)('%j', (text, counts) => {
    expect(parseCountList(text)).toEqual(counts);
  });

  const bad: Array<[string, string]> = [
    ['', 'it is empty'],
    ['2(x3', 'item "2(x3" is not a count N or a repeated count N(xM)'],
    ['2,', 'item 2 of 2 is empty'],
    [',2', 'item 1 of 2 is empty'],
    ['2,,1', 'item 2 of 3 is empty'],
    ['x', 'item "x" is not a count N or a repeated count N(xM)'],
    ['-1', 'item "-1" is not a count N or a repeated count N(xM)'],
    ['1.5', 'item "1.5" is not a count N or a repeated count N(xM)'],
    [' 2', 'item " 2" is not a count N or a repeated count N(xM)'],
    ['2 ', 'item "2 " is not a count N or a repeated count N(xM)'],
    ['2(3)', 'item "2(3)" is not a count N or a repeated count N(xM)'],
    ['2(x)', 'item "2(x)" is not a count N or a repeated count N(xM)'],
    ['2(x3)x', 'item "2(x3)x" is not a count N or a repeated count N(xM)'],
    ['(x3)', 'item "(x3)" is not a count N or a repeated count N(xM)'],
    ['2(X3)', 'item "2(X3)" is not a count N or a repeated count N(xM)'],
    ['2(x-1)', 'item "2(x-1)" is not a count N or a repeated count N(xM)'],
    ['2(x0)', 'item "2(x0)" repeats its count 0 times; at least 1 expected'],
    ['99999999999999999999', 'number 99999999999999999999 is too large'],
    ['1(x99999999999999999999)', 'number 99999999999999999999 is too large'],
    ['1(x1000001)', 'it has more than 1000000 entries'],
    ['1(x600000),1(x400001)', 'it has more than 1000000 entries'],
  ];
  it.each(bad)('rejects %j', (text, reason) => {
    const e = thrown(() => parseCountList(text));
    expect(e.message).toBe(`invalid count list ${JSON.stringify(text)}: ${reason}`);
    expect(e.reason).toBe(reason);
    expect(e.value).toBe(text);
    expect(e.variable).toBeUndefined();
    expect(e.code).toBe('ESLURMPARSE');
    expect(e.name).toBe('SlurmParseError');
  });

  it('names the variable when given one', () => {
    const e = thrown(() => parseCountList('2(x3', 'SLURM_JOB_CPUS_PER_NODE'));
    expect(e.message).toBe(
      'SLURM_JOB_CPUS_PER_NODE="2(x3" is malformed: item "2(x3" is not a count N or a repeated count N(xM)',
    );
    expect(e.variable).toBe('SLURM_JOB_CPUS_PER_NODE');
    expect(thrown(() => parseCountList('', 'SLURM_TASKS_PER_NODE')).message).toBe(
      'SLURM_TASKS_PER_NODE="" is malformed: it is empty',
    );
  });

  it(`allows exactly ${MAX_COUNT_ENTRIES} entries`, () => {
    expect(parseCountList(`1(x${MAX_COUNT_ENTRIES})`)).toHaveLength(MAX_COUNT_ENTRIES);
  });
});

describe('formatCountList', () => {
  const cases: Array<[number[], string]> = [
    [[], ''],
    [[40], '40'],
    [[2, 2, 2, 1], '2(x3),1'],
    [[1, 1, 1], '1(x3)'],
    [[2, 1], '2,1'],
    [[4, 4, 2, 2, 2], '4(x2),2(x3)'],
    [[1, 2, 1], '1,2,1'],
    [[0, 0], '0(x2)'],
  ];
  it.each(cases)('%j', (counts, text) => {
    expect(formatCountList(counts)).toBe(text);
    if (counts.length > 0) expect(parseCountList(text)).toEqual(counts);
  });

  it.each([[[-1]], [[1.5]], [[NaN]], [[2, Infinity]]])('rejects %j', (counts) => {
    expect(() => formatCountList(counts)).toThrow(RangeError);
    expect(() => formatCountList(counts)).toThrow(/^counts\[\d\] must be a non-negative integer, got /);
  });
});
