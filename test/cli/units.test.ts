// The CLI's pure parts: durations, #SBATCH lines, task files, JSON Lines, ranges, CPU sets, plain commands, the journal.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDuration, parseSlurmTime, formatDuration } from '../../dist/cli/durations.js';
import { parseSbatch, interpreterOf, parseSignalSpec } from '../../dist/cli/sbatch.js';
import { parseJsonLines, parseRange, parseTaskFile } from '../../dist/cli/input.js';
import { compressIndices } from '../../dist/cli/render.js';
import { parseSqueueTime, TimeGate } from '../../dist/cli/timeleft.js';
import { Feed } from '../../dist/cli/feed.js';
import { formatCpuList, isPlainCommand, parseCpuList, slotCpus, splitTaskCommand, taskCommand } from '../../dist/agent/shell.js';
import { prepareResume, readJournal } from '../../dist/results/journal.js';
import { logFileName } from '../../dist/results/logdir.js';
import { tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

describe('durations', () => {
  it('reads ours in seconds and Slurm times in minutes', () => {
    expect(parseDuration('90', 'x')).toBe(90_000);
    expect(parseDuration('1.5m', 'x')).toBe(90_000);
    expect(parseDuration('250ms', 'x')).toBe(250);
    expect(parseDuration('2h', 'x')).toBe(7_200_000);
    expect(parseDuration('1:30', 'x')).toBe(90_000);
    expect(parseDuration('1:00:00', 'x')).toBe(3_600_000);
    expect(parseDuration('1-02:00:00', 'x')).toBe(93_600_000);
    expect(() => parseDuration('soon', '--grace')).toThrow('--grace must be a duration like 90, 90s, 15m, 2h or 1:30:00, got "soon"');
    expect(parseSlurmTime('10', 't')).toBe(600_000);
    expect(parseSlurmTime('10:30', 't')).toBe(630_000);
    expect(parseSlurmTime('2-12', 't')).toBe(216_000_000);
    expect(parseSlurmTime('0:04', 't')).toBe(4000);
    expect(formatDuration(75_000)).toBe('1m15s');
    expect(formatDuration(3_700_000)).toBe('1h02m');
  });
});

describe('#SBATCH lines', () => {
  it('reads the options before the first command, short and long, with = or a space', () => {
    const d = parseSbatch('#!/bin/bash\n#SBATCH -N 3\n#SBATCH --cpus-per-task=4 --ntasks-per-node 2\n#SBATCH -t 1:00:00 # comment\n#SBATCH -J my job\n#SBATCH --signal=B:USR1@120\necho hi\n#SBATCH -N 9\n');
    expect(d).toMatchObject({ nodes: 3, cpusPerTask: 4, ntasksPerNode: 2, time: '1:00:00', jobName: 'my', signal: { batchOnly: true, signal: 'SIGUSR1', beforeSec: 120 } });
    expect(parseSbatch('#!/bin/sh\n#SBATCH --nodes=2-4\n').nodes).toBe(2);
    expect(parseSignalSpec('10@30')).toEqual({ batchOnly: false, signal: 'SIGUSR1', beforeSec: 30 });
    expect(interpreterOf('#!/usr/bin/env bash\n', 'j')).toEqual(['/usr/bin/env', 'bash']);
    expect(() => interpreterOf('echo\n', 'j.sh')).toThrow(/does not look like a batch script/);
  });
});

describe('inputs', () => {
  it('task files: comments, blank lines, CRLF, line numbers', () => {
    expect(parseTaskFile('# c\r\necho a\r\n\r\n  echo b\n', 'f')).toEqual({ name: 'f', commands: ['echo a', '  echo b'], lines: [2, 4], sha256: createHash('sha256').update('# c\r\necho a\r\n\r\n  echo b\n').digest('hex') });
    expect(() => parseTaskFile('', 'task file t')).toThrow('task file t is empty: it has no commands to run');
    expect(() => parseTaskFile('#\n\n', 'task file t')).toThrow('task file t has no commands: its 2 lines are blank or # comments');
  });
  it('JSON Lines name the bad line', () => {
    expect(parseJsonLines('1\n\n"a"\n{"b":2}\n', 'in.jsonl')).toEqual({ name: 'in.jsonl', items: [1, 'a', { b: 2 }], lines: [1, 3, 4], sha256: createHash('sha256').update('1\n\n"a"\n{"b":2}\n').digest('hex') });
    expect(() => parseJsonLines('1\n2\nnope\n', 'in.jsonl')).toThrow(/^in\.jsonl line 3 is not JSON: .* \(the line: nope\)$/);
  });
  it('ranges exclude their end, like Python', () => {
    expect(parseRange('0:10')).toMatchObject({ start: 0, end: 10, step: 1, length: 10 });
    expect(parseRange('10:0:-3')).toMatchObject({ length: 4 });
    expect(() => parseRange('1:2:0')).toThrow('step cannot be 0');
    expect(() => parseRange('a:b')).toThrow('--range must look like START:END');
  });
  it('index lists compress to ranges', () => {
    expect(compressIndices([7, 3, 100, 101, 102])).toBe('3,7,100-102');
  });
});

describe('shell tasks', () => {
  it('CPU lists and the cores of each worker slot', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(formatCpuList([3, 0, 1, 2, 8])).toBe('0-3,8');
    const allowed = [0, 1, 2, 3, 4, 5, 6, 7];
    const slots = [0, 1, 2, 3].map((w) => slotCpus(allowed, w, 2));
    expect(slots).toEqual([[0, 1], [2, 3], [4, 5], [6, 7]]);
    expect(new Set(slots.flat()).size).toBe(8);
    expect(slotCpus([4, 5, 6, 7], 1, 2)).toEqual([6, 7]);
    expect(slotCpus(allowed, 0, 2, 4)).toEqual([4, 5]);
    expect(slotCpus([0, 1], 1, 2)).toEqual([0, 1]);
  });
  it('plain commands skip sh -c; anything a shell must parse does not', () => {
    for (const c of ['true', '/bin/true', './sim --n=3 in.dat', 'python3 run.py 7']) expect(isPlainCommand(c)).toBe(true);
    for (const c of ['echo $HOME', 'a | b', 'cd /tmp', 'X=1 prog', 'exit 3', 'echo "q"', 'ls *.txt', 'a; b', 'prog > out', 'export A=1']) expect(isPlainCommand(c)).toBe(false);
  });
  it('a command carries its own task id', () => {
    expect(splitTaskCommand(taskCommand(42, 'echo hi'), 0)).toEqual({ id: 42, command: 'echo hi' });
    expect(splitTaskCommand('echo hi', 5)).toEqual({ id: 5, command: 'echo hi' });
    expect(logFileName(12345, 'out')).toBe('12/12345.out');
  });
});

describe('the journal', () => {
  it('keeps one record per task, drops failures, bad lines and a torn tail, and says so', () => {
    const f = t.write('j.jsonl', [
      '{"index":0,"ok":true,"v":1}',
      '{"index":1,"ok":false}',
      'garbage',
      '{"index":2,"ok":true}',
      '{"index":2,"ok":true}',
      '{"index":1,"ok":true}',
      '{"index":3,"ok":true,"v":"cut',
    ].join('\n'));
    const j = readJournal(f)!;
    expect(j.torn).toEqual({ line: 7, bytes: 29 });
    expect(j.bad).toEqual([{ line: 3, why: expect.stringMatching(/^not JSON/) }]);
    const s = prepareResume(f);
    expect([...s.done].sort()).toEqual([0, 1, 2]);
    expect(s.notes.join('\n')).toMatch(/j\.jsonl line 3 is not JSON.*dropped/);
    expect(s.notes.join('\n')).toContain('j.jsonl line 7 is incomplete (torn write, 29 bytes); that task will run again');
    const after = readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l).index);
    expect(after.sort()).toEqual([0, 1, 2]);
  });
  it('truncates only a torn tail when nothing else needs dropping', () => {
    const f = t.write('torn.jsonl', '{"index":0,"ok":true}\n{"index":1,"o');
    prepareResume(f);
    expect(readFileSync(f, 'utf8')).toBe('{"index":0,"ok":true}\n');
    writeFileSync(f, '');
    expect(prepareResume(f).done.size).toBe(0);
  });
  it('keeps run headers in place when it rewrites the file, and never counts them as records', () => {
    const h1 = '{"slurmpool":{"version":1,"run":"run","tasks":2}}';
    const h2 = '{"slurmpool":{"version":1,"run":"run","tasks":2,"jobId":"8"}}';
    const f = t.write('headers.jsonl', `${h1}\n{"index":0,"ok":false}\n${h2}\n{"index":1,"ok":true}\n`);
    const j = readJournal(f)!;
    expect(j.headers.map((h) => h.line)).toEqual([1, 3]);
    expect(j.bad).toEqual([]);
    const s = prepareResume(f);
    expect(s.failedBefore).toEqual([0]);
    expect(readFileSync(f, 'utf8')).toBe(`${h1}\n${h2}\n{"index":1,"ok":true}\n`);
  });
});

describe('walltime', () => {
  it('squeue end times are local', () => {
    expect(parseSqueueTime('2030-01-02T03:04:05')).toBe(new Date(2030, 0, 2, 3, 4, 5).getTime());
    expect(parseSqueueTime('N/A')).toBeNull();
  });
  it('starts no task that cannot finish before the end, counting the tasks queued ahead of it', () => {
    const now = 1_000_000;
    const g = new TimeGate({ at: now + 100_000, source: 'test' }, 10_000);
    expect(g.check(0, 2, now)).toBeNull();
    const rec = { index: 0, ok: true, node: 'n', worker: 0, started: 0, ended: 0, attempts: 1 };
    for (let i = 0; i < 5; i++) g.learn(rec, 20_000);
    expect(g.check(0, 2, now)).toBeNull();
    expect(g.check(6, 2, now)).toBeNull();
    expect(g.check(8, 2, now)).toMatchObject({ kind: 'time' });
    expect(g.check(0, 2, now + 75_000)).toMatchObject({ kind: 'time' });
  });
  it('the feed hands out only unfinished tasks and maps positions back', () => {
    const f = new Feed(6, new Set([0, 2, 3]), (i: number) => `t${i}`);
    expect(f.pending).toBe(3);
    expect([...f]).toEqual(['t1', 't4', 't5']);
    expect([0, 1, 2].map((p) => f.originalIndex(p))).toEqual([1, 4, 5]);
    const g = new Feed(10, new Set(), (i: number) => i);
    const it = g[Symbol.iterator]();
    it.next();
    g.stop({ kind: 'SIGTERM', message: '' });
    expect(it.next().done).toBe(true);
  });
});
