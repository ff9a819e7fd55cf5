// Emulation: real agent processes over real loopback TCP, each with a node's SLURM_* environment.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';

const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

/** Every process's command line on this machine, as `ps` shows them to every user. */
function allCommandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone
    }
  }
  return out;
}

describe('emulation', () => {
  it('maps over 3x2 emulated nodes; results record 3 node names; every node sees its own SLURM_* environment', async () => {
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, emulate: '3x2', log: (l) => logs.push(l) });
    expect(pool.mode).toBe('emulate');
    expect(pool.nodes.map((n) => n.node).sort()).toEqual(['emu1', 'emu2', 'emu3']);
    expect(pool.workers).toBeGreaterThanOrEqual(3);
    expect(logs.join('\n')).toMatch(/emulate mode: 3 nodes/);
    const names = await pool.map<string>('envOf', Array(30).fill('SLURMD_NODENAME'), { chunksize: 1 });
    expect(new Set(names)).toEqual(new Set(['emu1', 'emu2', 'emu3']));
    expect(await pool.map('envOf', ['SLURM_JOB_NODELIST', 'SLURM_CPUS_ON_NODE', 'SLURM_JOB_NUM_NODES'], { chunksize: 3 })).toEqual(['emu[1-3]', '2', '3']);
    // the results themselves are right
    const xs = Array.from({ length: 1000 }, (_, i) => i);
    expect(await pool.map('square', xs)).toEqual(xs.map((x) => x * x));
  });

  it('the job secret reaches agents only on their standard input: never argv, never an environment, never a task', async () => {
    await using pool = await Pool.open({ module: tasks, emulate: '2x1', log: false });
    const secrets = await pool.map('envOf', ['SLURMPOOL_SECRET', 'SLURMPOOL_SECRET'], { chunksize: 1 });
    expect(secrets).toEqual([null, null]);
    // Not even in the agent process's initial environment, which a task can read from /proc.
    const environs = await pool.map<string>('procEnviron', [1, 2], { chunksize: 1 });
    for (const e of environs) {
      expect(e).toContain('SLURMPOOL_SECRET_STDIN=1');
      expect(e).not.toMatch(/SLURMPOOL_SECRET=/);
      expect(e).not.toMatch(/[0-9a-f]{64}/);
    }
    const agents = allCommandLines().filter((c) => c.includes('cli/main.js agent'));
    expect(agents.length).toBeGreaterThanOrEqual(2);
    for (const c of agents) expect(c).not.toMatch(/[0-9a-f]{64}/);
  });

  it('an agent killed mid-map: its chunks re-run elsewhere, every result exactly once, and the node gets a new agent', async () => {
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, emulate: '3x1', log: (l) => logs.push(l), lostAfterMs: 2000 });
    const victim = pool.nodes.find((n) => n.node === 'emu2')!;
    const items = Array.from({ length: 60 }, (_, i) => ({ ms: 40, v: i }));
    const p = pool.map<number>('sleepThen', items, { chunksize: 1 });
    setTimeout(() => process.kill(victim.pid, 'SIGKILL'), 300);
    const out = await p;
    expect(out).toEqual(items.map((x) => x.v));
    expect(logs.join('\n')).toMatch(/node emu2: agent lost .*re-dispatched/);
    // The node is not given up: its agent is started again (restart 1 of 3) and joins.
    const t0 = Date.now();
    while (pool.nodes.length < 3 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    expect(logs.join('\n')).toMatch(/node emu2: its agent died \(agent exited with SIGKILL\); starting it again \(restart 1 of 3\)/);
    expect(pool.nodes.map((n) => n.node).sort()).toEqual(['emu1', 'emu2', 'emu3']);
    expect(pool.nodes.find((n) => n.node === 'emu2')!.pid).not.toBe(victim.pid);
  });

  it('a module that fails to load on the nodes fails Pool.open, naming the nodes and the error', async () => {
    await expect(Pool.open({ module: new URL('./fixtures/broken.mjs', import.meta.url), emulate: '2x1', log: false })).rejects.toThrow(/of 2 node\(s\) could not start \(need 2\):\n  emu\d: SyntaxError/);
  });
});

describe('the coordinator port under a connection flood', () => {
  it('1,500 idle connections during a map: each dropped at the handshake deadline, logged as a summary, results unaffected, memory bounded', async () => {
    const { connect } = await import('node:net');
    const logs: string[] = [];
    const pool = await Pool.open({ module: tasks, emulate: '2x1', log: (l) => logs.push(l) });
    try {
      const { port } = pool.address!;
      const rss0 = process.memoryUsage().rss;
      const socks: import('node:net').Socket[] = [];
      const t0 = Date.now();
      for (let i = 0; i < 1500 && Date.now() - t0 < 20_000; i++) {
        const s = connect({ host: '127.0.0.1', port });
        s.on('error', () => undefined);
        socks.push(s);
        // one at a time, so that the kernel's accept backlog never drops a SYN (its retries back off for minutes)
        await new Promise((r) => {
          s.once('connect', r);
          s.once('close', r);
        });
      }
      const closed = Promise.all(socks.map((s) => (s.closed ? undefined : new Promise((r) => s.on('close', r)))));
      const xs = Array.from({ length: 2000 }, (_, i) => i);
      expect(await pool.map('square', xs, { chunksize: 10 })).toEqual(xs.map((x) => x * x));
      // Every idle connection is closed by the coordinator at the 5 s handshake deadline.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 20_000))]);
      const grew = process.memoryUsage().rss - rss0;
      expect(socks.filter((s) => !s.destroyed && !s.closed)).toHaveLength(0);
      expect(grew).toBeLessThan(150 * 1024 * 1024);
      expect(await pool.map('square', [7])).toEqual([49]);
      await pool.close();
      // 20 lines one by one, then summaries that count the rest: 1,500 in all, not 1,500 lines.
      const one = logs.filter((l) => l.startsWith('rejected connection from 127.0.0.1:'));
      const counted = logs.filter((l) => /^rejected \d+ more connection/.test(l)).reduce((n, l) => n + Number(/^rejected (\d+)/.exec(l)![1]), 0);
      expect(one.length).toBeLessThanOrEqual(40);
      expect(one.length + counted).toBe(socks.length);
    } finally {
      await pool.terminate();
    }
  });
});

describe('large values over TCP', () => {
  it('items and results of several MB cross as frame attachments, byte for byte', async () => {
    await using pool = await Pool.open({ module: tasks, emulate: '2x1', log: false });
    const bufs = [Buffer.alloc(3_000_000, 1), Buffer.alloc(70_000, 2), Buffer.from('small')];
    const back = await pool.map<Buffer>('identity', bufs, { chunksize: 1 });
    expect(back.map((b) => [Buffer.isBuffer(b), b.length, b[0]])).toEqual([[true, 3_000_000, 1], [true, 70_000, 2], [true, 5, 115]]);
    expect(Buffer.compare(back[0]!, bufs[0]!)).toBe(0);
  });
});

describe('a task that kills its own agent', () => {
  it('the node gets a new agent, the item is retried, every result comes back exactly once', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const marker = join(mkdtempSync(join(tmpdir(), 'sp-kill-')), 'm');
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, emulate: '2x1', log: (l) => logs.push(l) });
    const items = Array.from({ length: 20 }, (_, i) => ({ v: i, marker: i === 7 ? marker : '' }));
    const recs: { index: number; ok: boolean; value?: unknown; attempts: number; redispatched?: boolean }[] = [];
    for await (const r of pool.imapRecords('killOwnProcess', items, { chunksize: 1 })) recs.push(r);
    recs.sort((a, b) => a.index - b.index);
    expect(recs.map((r) => r.value)).toEqual(items.map((x) => x.v));
    // The item whose task killed its agent ran again on a node: a re-dispatch, not a retry after a worker death.
    expect(recs[7]).toMatchObject({ ok: true, attempts: 2, redispatched: true });
    expect(recs.filter((r) => r.redispatched).every((r) => r.attempts >= 2)).toBe(true);
    // The restart follows the agent's exit, which may be seen after the map ended: wait for the node to be back.
    const t0 = Date.now();
    while (pool.nodes.length < 2 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    expect(pool.nodes.length).toBe(2);
    expect(logs.join('\n')).toMatch(/its agent died .*starting it again \(restart 1 of 3\)/);
  });
});

describe('a silent node', () => {
  it('an agent that stops answering (SIGSTOP: connection open, no bytes) is declared lost by heartbeat; its chunks re-run, results exactly once', async () => {
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, emulate: '3x1', log: (l) => logs.push(l), heartbeatMs: 200, lostAfterMs: 1500, speculate: false });
    const victim = pool.nodes.find((n) => n.node === 'emu3')!;
    const items = Array.from({ length: 45 }, (_, i) => ({ ms: 60, v: i }));
    const t0 = Date.now();
    const p = pool.map<number>('sleepThen', items, { chunksize: 1 });
    let stoppedAt = 0;
    setTimeout(() => {
      stoppedAt = Date.now();
      process.kill(victim.pid, 'SIGSTOP');
    }, 300);
    try {
      expect(await p).toEqual(items.map((x) => x.v));
    } finally {
      process.kill(victim.pid, 'SIGKILL');
    }
    const line = logs.find((l) => l.startsWith('node emu3: agent lost'));
    expect(line).toMatch(/no message for \d+ s \(heartbeat timeout\)/);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(stoppedAt).toBeGreaterThan(0);
  });
});
