// Growing a running pool on this machine: agents join through the join file (`slurmpool join`), get
// the task module and shared data like the first ones, leave cleanly (their end time, SIGTERM), and
// a join file others could read, or a wrong secret, is refused. The Slurm side is in slurm-elastic.test.ts.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';
import { nodesWanted, shellWords } from '../dist/launch/grow.js';
import { cli, cleanEnv } from './cli/helpers.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'slurmpool-elastic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `slurmpool join FILE` as another allocation would run it, naming its node. */
function joinAs(node: string, file: string, extra: Record<string, string> = {}) {
  return cli(['join', file], { env: cleanEnv({ SLURMPOOL_NODE: node, SLURMPOOL_CPUS: '2', ...extra }), timeout: 90_000 });
}

async function until(what: string, cond: () => boolean, bound = 30_000): Promise<void> {
  const end = Date.now() + bound;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${bound} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('join file', () => {
  it('any pool can take agents from elsewhere: the file is 0600 in a 0700 folder, the late node gets the module and shared data, the file goes at close', async () => {
    const file = join(dir, 'sub', 'a.json');
    const lines: string[] = [];
    const pool = await Pool.open({ module: tasks, workers: 1, joinFile: file, bind: '127.0.0.1', log: (l) => lines.push(l) });
    expect(pool.joinFile).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    // Shared before the node joins: it must get it before its first chunk.
    const data = Float64Array.from({ length: 1000 }, (_, i) => i);
    const ref = await pool.share(data);
    const joiner = joinAs('late1', file);
    await until('the joined node is ready', () => pool.nodes.some((n) => n.node === 'late1'));
    expect(lines).toContain('node late1 joined (1 worker)');
    const out = await pool.map<{ sum: number; node: string; shared: boolean }>('sumShared', Array.from({ length: 300 }, () => ref), { chunksize: 1 });
    expect(out.every((r) => r.sum === 499_500 && r.shared)).toBe(true);
    expect(out.some((r) => r.node === 'late1')).toBe(true);
    await pool.close();
    expect(existsSync(file)).toBe(false);
    const j = await joiner;
    expect(j.exitCode, j.stderr).toBe(0);
  });

  it('a join file that group or others can read is refused, naming its mode', async () => {
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'b.json'), bind: '127.0.0.1', log: false });
    try {
      const open = join(dir, 'b-0644.json');
      copyFileSync(pool.joinFile!, open);
      chmodSync(open, 0o644);
      const r = await joinAs('x', open);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`join file ${open} has mode 0644`);
      expect(r.stderr).toContain('refusing it');
      expect(pool.nodes.map((n) => n.node)).not.toContain('x');
    } finally {
      await pool.close();
    }
  });

  it('a wrong secret is refused by the pool, and the agent says so and does not retry for ever', async () => {
    const lines: string[] = [];
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'c.json'), bind: '127.0.0.1', log: (l) => lines.push(l) });
    try {
      const forged = join(dir, 'c-forged.json');
      const info = JSON.parse(readFileSync(pool.joinFile!, 'utf8')) as { secret: string };
      writeFileSync(forged, JSON.stringify({ ...info, secret: 'f'.repeat(info.secret.length) }), { mode: 0o600 });
      const r = await joinAs('intruder', forged);
      expect(r.exitCode).toBe(4);
      expect(r.stderr).toMatch(/could not join the coordinator: .*(refused|prove|proof)/);
      expect(r.stderr).not.toContain(info.secret);
      expect(pool.nodes.map((n) => n.node)).not.toContain('intruder');
    } finally {
      await pool.close();
    }
    expect(lines.some((l) => /refus|reject/i.test(l))).toBe(true);
  });
});

describe('leaving', () => {
  /** Commands for as long as `more()` says, then ten more; at most 3,000. */
  async function* commands(more: () => boolean) {
    let tail = 10;
    for (let i = 0; i < 3000 && tail > 0; i++) {
      if (!more()) tail--;
      yield 'sleep 0.05';
      await new Promise((r) => setImmediate(r));
    }
  }

  it('an agent whose allocation ends leaves before it: queued work goes back, nothing is lost or run twice, and it is no node loss', async () => {
    const lines: string[] = [];
    const lost: string[] = [];
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'd.json'), bind: '127.0.0.1', log: (l) => lines.push(l), onNodeLost: (n) => lost.push(n) });
    // Its allocation ends in 20 s; it leaves 14 s before.
    const joiner = joinAs('ending', pool.joinFile!, { SLURM_JOB_END_TIME: String(Math.floor(Date.now() / 1000) + 20), SLURMPOOL_LEAVE_MARGIN: '14' });
    await until('the joined node is ready', () => lines.includes('node ending joined (1 worker)'));
    const left = () => lines.includes('node ending: left the pool');
    const recs = [];
    for await (const r of pool.runCommands(commands(() => !left()), { chunksize: 1 })) recs.push(r);
    await pool.close();
    const j = await joiner;
    expect(j.exitCode, j.stderr).toBe(0);
    expect(lines.some((l) => /^node ending: leaving \(its allocation ends in \d+ s\); \d+ chunk\(s\) handed back$/.test(l))).toBe(true);
    expect(left()).toBe(true);
    expect(lost).toEqual([]);
    expect(recs.every((r) => r.ok)).toBe(true);
    const idx = recs.map((r) => r.index).sort((a, b) => a - b);
    expect(idx).toEqual(Array.from({ length: idx.length }, (_, i) => i));
    expect(recs.some((r) => r.node === 'ending')).toBe(true);
    expect(pool.stats().find((s) => s.node === 'ending')?.left).toBe(true);
  });

  it('SIGTERM (scancel, walltime): the agent hands back everything it holds at once; those tasks run elsewhere, once', async () => {
    const lines: string[] = [];
    const lost: string[] = [];
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'e.json'), bind: '127.0.0.1', log: (l) => lines.push(l), onNodeLost: (n) => lost.push(n) });
    const joiner = joinAs('cancelled', pool.joinFile!);
    await until('the joined node is ready', () => pool.nodes.some((n) => n.node === 'cancelled'));
    const pid = pool.nodes.find((n) => n.node === 'cancelled')!.pid;
    const recs: { index: number; ok: boolean; node: string }[] = [];
    let signalled = false;
    const it = pool.runCommands(commands(() => !lines.includes('node cancelled: left the pool')), { chunksize: 1 });
    for await (const r of it) {
      recs.push(r);
      // Once it has run something, it is cancelled mid-run, holding a running task.
      if (!signalled && r.node === 'cancelled') {
        signalled = true;
        process.kill(pid, 'SIGTERM');
      }
    }
    await pool.close();
    const j = await joiner;
    expect(j.exitCode, j.stderr).toBe(0);
    expect(signalled).toBe(true);
    expect(lines.some((l) => /^node cancelled: leaving \(SIGTERM/.test(l))).toBe(true);
    expect(lost).toEqual([]);
    expect(recs.every((r) => r.ok)).toBe(true);
    const idx = recs.map((r) => r.index).sort((a, b) => a - b);
    expect(idx).toEqual(Array.from({ length: idx.length }, (_, i) => i));
  });
});

describe('a joined node', () => {
  it('reports a command that killed itself with SIGTERM as failed (after holding it a moment), when no leave follows', async () => {
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'k.json'), bind: '127.0.0.1', log: false });
    const joiner = joinAs('killer', pool.joinFile!);
    try {
      await until('the joined node is ready', () => pool.nodes.some((n) => n.node === 'killer'));
      const recs = [];
      for await (const r of pool.runCommands(Array.from({ length: 8 }, () => 'kill -TERM $$'), { chunksize: 1 })) recs.push(r);
      expect(recs.length).toBe(8);
      expect(recs.some((r) => r.node === 'killer')).toBe(true);
      expect(recs.every((r) => !r.ok && (r.value as { signal: string }).signal === 'SIGTERM')).toBe(true);
    } finally {
      await pool.close();
    }
    expect((await joiner).exitCode).toBe(0);
  });
});

describe('the CLI', () => {
  it('slurmpool run --join-file takes agents from elsewhere while it runs; the file is removed at the end', async () => {
    const d = mkdtempSync(join(dir, 'cli-'));
    const out = join(d, 'results.jsonl');
    // Each command takes 0.1 s until DONE exists, then none: the run lasts until the joined node has worked.
    const done = join(d, 'DONE');
    const tasksFile = join(d, 'tasks.txt');
    writeFileSync(tasksFile, Array.from({ length: 400 }, () => `test -e ${done} || sleep 0.1`).join('\n') + '\n');
    const run = cli(['run', tasksFile, '-o', out, '--workers', '1', '--join-file', `${d}/`], { env: cleanEnv({ SLURMPOOL_BIND: '127.0.0.1' }), timeout: 90_000 });
    let file = '';
    await until('the join file', () => {
      file = readdirSync(d).find((f) => f.startsWith('join-')) ?? '';
      return file !== '';
    });
    const joiner = joinAs('clijoin', join(d, file));
    await until('a record from the joined node', () => existsSync(out) && readFileSync(out, 'utf8').includes('"node":"clijoin"'), 60_000);
    writeFileSync(done, '');
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await joiner).exitCode).toBe(0);
    const recs = readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as { index: number; node: string });
    expect(recs.map((x) => x.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(recs.some((x) => x.node === 'clijoin')).toBe(true);
    expect(readdirSync(d).filter((f) => f.startsWith('join-'))).toEqual([]);
  });

  it('an allocation that ends more than 24.8 days away (Slurm gives a job without a limit a year) does not stop the run at once', async () => {
    const r = await cli(['run', '-', '--time-left', '365d', '--workers', '1', '--json'], { input: 'true\ntrue\n' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain('not starting more tasks');
  });

  it('refuses --grow-nodes above --grow', async () => {
    const r = await cli(['run', '-', '--grow', '1', '--grow-nodes', '2'], { input: 'true\n' });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--grow-nodes 2 is more than --grow 1: no job could be submitted');
  });
});

describe('grow: the estimate rule', () => {
  it('no job before any task finished, none when the work ends before a job could start, up to the most useful', () => {
    const base = { workers: 2, nodes: 1 };
    expect(nodesWanted({ ...base, backlog: 100, taskMs: null }, 10_000, 2)).toBe(0);
    // 30 tasks of 1 s on 2 workers: 15 s of work, a job starts in 10 s: 8 tasks left then, 4 nodes' worth.
    expect(nodesWanted({ ...base, backlog: 30, taskMs: 1000 }, 10_000, 8)).toBe(4);
    expect(nodesWanted({ ...base, backlog: 30, taskMs: 1000 }, 10_000, 2)).toBe(2);
    // 20 tasks: done by the time a job starts.
    expect(nodesWanted({ ...base, backlog: 20, taskMs: 1000 }, 10_000, 2)).toBe(0);
    expect(nodesWanted({ ...base, backlog: Infinity, taskMs: 1000 }, 10_000, 3)).toBe(3);
  });

  it('sbatch options are split as a shell would', () => {
    expect(shellWords(`-p short  --constraint='a&b' -J "my job" x\\ y`)).toEqual(['-p', 'short', '--constraint=a&b', '-J', 'my job', 'x y']);
    expect(() => shellWords(`-J 'open`)).toThrow(/unbalanced/);
  });
});
