// Requests per line of a task file (#SLURMPOOL … -- cmd, JSON Lines tasks): how lines are told apart
// and read, every error naming its line, and real runs on emulated nodes whose records show that no
// node ever ran more CPUs or GPUs than it has.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTaskFile } from '../../dist/cli/input.js';
import { openTaskFile } from '../../dist/cli/taskfile.js';
import { isRequestLine, parseTaskLine, RequestScan } from '../../dist/cli/task-requests.js';
import { cleanEnv, cli, records, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());
const W = 'f line 3';

describe('telling request lines apart', () => {
  it('#SLURMPOOL then a blank (or nothing) is a request; other # lines stay comments', () => {
    expect(isRequestLine('#SLURMPOOL -c 2 -- x')).toBe(true);
    expect(isRequestLine('#SLURMPOOL\t--gpus 1 -- x')).toBe(true);
    expect(isRequestLine('#SLURMPOOL')).toBe(true);
    expect(isRequestLine('#SLURMPOOLS -c 2 -- x')).toBe(false);
    expect(isRequestLine('# SLURMPOOL -c 2 -- x')).toBe(false);
    expect(isRequestLine('#slurmpool -c 2 -- x')).toBe(false);
  });

  it('a line is a JSON task only from {": a shell brace group ({ cmd; }) stays a command', () => {
    expect(parseTaskLine('{ echo a; echo b; } > out', W)).toEqual({ command: '{ echo a; echo b; } > out', request: null });
    expect(parseTaskLine('  {"cmd": "echo hi", "cpus": 2}', W)).toEqual({ command: 'echo hi', request: { cpus: 2 } });
    expect(parseTaskLine('echo plain', W)).toEqual({ command: 'echo plain', request: null });
  });

  it('a task file counts #SLURMPOOL and JSON lines as commands, streamed or from standard input, and shows them to the scan', async () => {
    const text = '# comment\n#SLURMPOOL -c 2 -- echo a\n{"cmd": "echo b", "gpus": 1}\n#SLURMPOOLX not a request\necho c\n';
    const path = t.write('kinds.txt', text);
    const seen: [string, number][] = [];
    const f = await openTaskFile(path, (line, n) => seen.push([line, n]));
    expect(f.count).toBe(3);
    expect([0, 1, 2].map((i) => f.at(i).line)).toEqual([2, 3, 5]);
    f.close();
    expect(seen).toEqual([['#SLURMPOOL -c 2 -- echo a', 2], ['{"cmd": "echo b", "gpus": 1}', 3]]);
    expect(parseTaskFile(text, 'standard input').lines).toEqual([2, 3, 5]);
  });
});

describe('#SLURMPOOL options', () => {
  it('reads -c/--cpus/--cpus-per-task, -G/--gpus/--gpus-per-task, --timeout, --env, in both spellings; the command keeps its text', () => {
    expect(parseTaskLine('#SLURMPOOL -c 4 --gpus 1 --timeout 10m -- ./sim --n=3 "a  b"', W)).toEqual({ command: './sim --n=3 "a  b"', request: { cpus: 4, gpus: 1, timeoutMs: 600_000 } });
    expect(parseTaskLine('  #SLURMPOOL -c4 -G2 --env A=1 --env B=x=y -- echo', W)).toEqual({ command: 'echo', request: { cpus: 4, gpus: 2, env: { A: '1', B: 'x=y' } } });
    expect(parseTaskLine('#SLURMPOOL --cpus=2 --gpus-per-task=0 --cpus-per-task 3 -- echo -- x', W)).toEqual({ command: 'echo -- x', request: { cpus: 3, gpus: 0 } });
    expect(parseTaskLine('#SLURMPOOL -- echo', W)).toEqual({ command: 'echo', request: {} });
  });

  it('every mistake names the line', () => {
    const bad: [string, string][] = [
      ['#SLURMPOOL -c 4 echo', 'f line 3: a #SLURMPOOL line needs -- before its command (#SLURMPOOL -c/--cpus N, --gpus N, --timeout D, --env NAME=VALUE -- COMMAND)'],
      ['#SLURMPOOL -c 4 --', 'f line 3: no command after -- on the #SLURMPOOL line'],
      ['#SLURMPOOL -c 0 -- x', 'f line 3: -c must be a positive whole number, got "0"'],
      ['#SLURMPOOL --gpus two -- x', 'f line 3: --gpus must be a whole number ≥ 0, got "two"'],
      ['#SLURMPOOL -c -- x', 'f line 3: -c needs a value'],
      ['#SLURMPOOL --mem 4G -- x', 'f line 3: "--mem" is not a #SLURMPOOL option (-c/--cpus N, --gpus N, --timeout D, --env NAME=VALUE, then -- and the command)'],
      ['#SLURMPOOL --timeout soon -- x', 'f line 3: --timeout must be a duration like 90, 90s, 15m, 2h or 1:30:00, got "soon"'],
      ['#SLURMPOOL --env 1A=b -- x', 'f line 3: --env takes NAME=VALUE, got "1A=b"'],
    ];
    for (const [line, msg] of bad) expect(() => parseTaskLine(line, W), line).toThrow(msg);
  });
});

describe('JSON tasks', () => {
  it('reads cmd, cpus, gpus, timeout (a duration or seconds) and env', () => {
    expect(parseTaskLine('{"cmd": "run.sh", "cpus": 4, "gpus": 1, "timeout": "10m", "env": {"A": "x y"}}', W)).toEqual({
      command: 'run.sh',
      request: { cpus: 4, gpus: 1, timeoutMs: 600_000, env: { A: 'x y' } },
    });
    expect(parseTaskLine('{"cmd": "a\\nb", "timeout": 1.5}', W)).toEqual({ command: 'a\nb', request: { timeoutMs: 1500 } });
  });

  it('every mistake names the line', () => {
    const bad: [string, string][] = [
      ['{"cmd": "x", "cpu": 2}', 'f line 3: "cpu" is not a field of a JSON task (cmd, cpus, gpus, timeout, env)'],
      ['{"cpus": 2}', 'f line 3: a JSON task needs "cmd", a non-empty string, got undefined'],
      ['{"cmd": "x", "cpus": 1.5}', 'f line 3: "cpus" must be a positive whole number, got 1.5'],
      ['{"cmd": "x", "gpus": -1}', 'f line 3: "gpus" must be a whole number ≥ 0, got -1'],
      ['{"cmd": "x", "timeout": true}', 'f line 3: "timeout" must be a duration ("10m", "90s") or seconds, got true'],
      ['{"cmd": "x", "env": {"A": 1}}', 'f line 3: "env"."A" must be a string, got 1'],
      ['{"cmd": "x", "env": {"A B": "1"}}', 'f line 3: "env" key "A B" is not a variable name'],
      ['{"cmd": "x", "env": {"A": "a\\u0000b"}}', 'f line 3: "env"."A" contains a NUL character; a variable cannot'],
      ['{"cmd": "a\\u0000b"}', 'f line 3: "cmd" contains a NUL character; a command cannot'],
      ['{"cmd": "x",}', 'f line 3 starts like a JSON task ({") but is not JSON'],
    ];
    for (const [line, msg] of bad) expect(() => parseTaskLine(line, W), line).toThrow(msg);
  });
});

describe('RequestScan', () => {
  it('names the first line that fits no node, with the run\'s defaults for what a line leaves out', () => {
    const s = new RequestScan('task file f');
    s.add('#SLURMPOOL -c 2 -- a', 1);
    s.add('echo plain', 2);
    s.add('#SLURMPOOL --gpus 2 -- b', 3);
    s.add('{"cmd": "c", "cpus": 3, "gpus": 1}', 7);
    expect(s.lines).toBe(3);
    const nodes = [{ node: 'n1', cpus: 4, gpus: 0 }, { node: 'n2', cpus: 2, gpus: 2 }];
    // 3 CPUs + 1 GPU: n1 has the CPUs, n2 the GPU, neither both.
    expect(s.misfit(nodes, { cpus: 1, gpus: 0 })).toBe('task file f line 7 asks for 3 CPUs and 1 GPU, more than any node has (n1: 4 CPUs, 0 GPUs; n2: 2 CPUs, 2 GPUs)');
    expect(s.misfit([...nodes, { node: 'n3', cpus: 4, gpus: 1 }], { cpus: 1, gpus: 0 })).toBeNull();
    // -c 3 as the run's default makes line 3 (2 GPUs, no -c) fit nowhere, and it comes first.
    expect(s.misfit(nodes, { cpus: 3, gpus: 0 })).toMatch(/^task file f line 3 asks for 3 CPUs and 2 GPUs/);
  });
});

/** Prints: CUDA_VISIBLE_DEVICES|OMP_NUM_THREADS|start µs|end µs, measured by the command itself. */
const REC = 's=$(date +%s%N); sleep 0.15; e=$(date +%s%N); echo "$CUDA_VISIBLE_DEVICES|$OMP_NUM_THREADS|${s%???}|${e%???}"';

describe('slurmpool run with requests per line (2 emulated nodes of 4 CPUs, GPUs 0,1)', () => {
  it('mixed requests: at no moment does a node run more CPUs or GPUs than it has, or a GPU twice', async () => {
    const lines: string[] = [];
    const asks: [number, number][] = [];
    for (let i = 0; i < 30; i++) {
      const cpus = i % 7 === 3 ? 4 : 1 + (i % 3);
      const gpus = i % 7 === 3 ? 2 : i % 4 === 1 ? 1 : 0;
      asks.push([cpus, gpus]);
      if (i % 5 === 0) lines.push(JSON.stringify({ cmd: REC, cpus, gpus }));
      else if (i % 5 === 4 && cpus === 1 && gpus === 0) lines.push(REC); // the run's defaults: 1 CPU, no GPU
      else lines.push(`#SLURMPOOL -c ${cpus} --gpus ${gpus} -- ${REC}`);
    }
    const tasks = t.write('mixed.txt', `${lines.join('\n')}\n`);
    const out = t.path('mixed.jsonl');
    const r = await cli(['run', tasks, '--emulate', '2x4', '-o', out, '-q'], { env: cleanEnv({ CUDA_VISIBLE_DEVICES: '0,1' }) });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out);
    expect(recs).toHaveLength(30);
    const ran = recs.map((rec) => {
      const [cvd, omp, s, e] = String(rec.stdout).trim().split('|');
      const [cpus, gpus] = asks[rec.index]!;
      expect(rec.command).toBe(REC);
      expect(rec.gpus, 'the record names the GPUs the command saw').toBe(cvd);
      expect(omp, `line ${String(rec.line)}`).toBe(String(cpus));
      const held = cvd === '' ? [] : cvd!.split(',');
      expect(held, `line ${String(rec.line)}`).toHaveLength(gpus);
      return { node: String(rec.node), cpus, gpus: held, start: Number(s), end: Number(e) };
    });
    const over: string[] = [];
    for (const a of ran) {
      const now = ran.filter((b) => b.node === a.node && b.start <= a.start && a.start < b.end);
      const c = now.reduce((sum, b) => sum + b.cpus, 0);
      const g = now.flatMap((b) => b.gpus);
      if (c > 4 || new Set(g).size !== g.length || g.length > 2) over.push(`${a.node} at ${a.start}: ${c} CPUs, GPUs ${g.join(',')}`);
    }
    expect(over).toEqual([]);
  });

  it('a line larger than every node stops the run before any task, naming the line; nothing is recorded', async () => {
    const tasks = t.write('big.txt', `touch ${t.path('ran')}\n#SLURMPOOL -c 2 --gpus 3 -- touch ${t.path('ran')}\n`);
    const out = t.path('big.jsonl');
    const r = await cli(['run', tasks, '--emulate', '2x4', '-o', out], { env: cleanEnv({ CUDA_VISIBLE_DEVICES: '0,1' }) });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain(`task file ${tasks} line 2 asks for 2 CPUs and 3 GPUs, more than any node has (emu`);
    expect(records(out)).toEqual([]);
    expect(() => writeFileSync(t.path('ran'), '', { flag: 'wx' })).not.toThrow(); // no task created it
  });

  it('a bad request line stops the run before any node starts, naming the line (exit 2)', async () => {
    const tasks = t.write('bad.txt', 'echo fine\n#SLURMPOOL --gpus -- echo\n');
    const r = await cli(['run', tasks, '--emulate', '1x2']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain(`task file ${tasks} line 2: --gpus needs a value`);
    expect(String(r.stderr)).not.toContain('emulate mode');
  });

  it('--resume keeps the records of request lines and runs the failed ones again; a line\'s own --timeout wins', async () => {
    const tasks = t.write('resume.txt', `#SLURMPOOL -c 2 -- echo one\n#SLURMPOOL --timeout 200ms -- sleep 3\n{"cmd": "echo three"}\n`);
    const out = t.path('resume.jsonl');
    const first = await cli(['run', tasks, '--emulate', '1x2', '-o', out, '-q', '--timeout', '1m']);
    expect(first.exitCode).toBe(1);
    const recs = records(out);
    expect(recs.map((x) => [x.line, x.ok, x.command]).sort()).toEqual([[1, true, 'echo one'], [2, false, 'sleep 3'], [3, true, 'echo three']]);
    expect(recs.find((x) => x.line === 2)!.timedOut).toBe(true);
    const again = await cli(['run', tasks, '--emulate', '1x2', '-o', out, '-q', '--resume']);
    expect(again.exitCode).toBe(1);
    const after = records(out);
    // Lines 1 and 3 kept as they were; line 2 ran again (and timed out again under its own limit).
    expect(after.filter((x) => x.line !== 2).map((x) => x.started).sort()).toEqual(recs.filter((x) => x.line !== 2).map((x) => x.started).sort());
    const line2 = after.filter((x) => x.line === 2);
    expect(line2).toHaveLength(1);
    expect(line2[0]!.started).not.toBe(recs.find((x) => x.line === 2)!.started);
    expect(line2[0]!.timedOut).toBe(true);
  });
});
