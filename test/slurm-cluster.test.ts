// The Pool across a real Slurm cluster: agents started with srun, one per node.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterOrSkip, readOut, sbatch, waitJob } from './helpers/slurm.js';

const root = resolve(import.meta.dirname, '..');
const cluster = clusterOrSkip();

/** Run `body` (after an import of Pool) as a Node script under sbatch; the job must complete; returns its JSON line. */
async function runJob<T>(sbatchArgs: string[], body: string): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'slurmpool-sb-'));
  const out = join(dir, 'out.txt');
  const job = join(dir, 'job.mjs');
  writeFileSync(job, `import { Pool } from ${JSON.stringify(join(root, 'dist/index.js'))};\n${body}`);
  const id = sbatch([...sbatchArgs, `--chdir=${root}`, `--output=${out}`, `--wrap=exec ${process.execPath} ${job}`]);
  const end = await waitJob(id, 90_000);
  const text = readOut(out);
  expect(end.state, text).toBe('COMPLETED');
  return JSON.parse(text.split('\n').find((l) => l.startsWith('{'))!) as T;
}

describe.skipIf(cluster.skip)(`Pool under Slurm ${cluster.why}`, () => {
  it('maps across 3 nodes from an sbatch script: right result, tasks on every node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-sb-'));
    const out = join(dir, 'out.txt');
    const id = sbatch(['-N3', `--chdir=${root}`, `--output=${out}`, 'scripts/slurm/pool-map.sbatch', '2000000']);
    const end = await waitJob(id, 90_000);
    const text = readOut(out);
    expect(end.state, text).toBe('COMPLETED');
    const line = text.split('\n').find((l) => l.startsWith('{'));
    expect(line, text).toBeDefined();
    const r = JSON.parse(line!) as { mode: string; nodes: string[]; primes: number; tasksPerNode: Record<string, number> };
    expect(r.mode).toBe('slurm');
    expect(r.nodes).toEqual(['n1', 'n2', 'n3']);
    expect(r.primes).toBe(148933);
    expect(Object.keys(r.tasksPerNode).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(text).toMatch(/slurm mode: 3 nodes .* workers/);
  });

  it('a node whose agent cannot start is named with srun\'s words; with minNodes the run goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-sb-'));
    const failOut = join(dir, 'fail.txt');
    const okOut = join(dir, 'ok.txt');
    const wrapper = join(root, 'scripts/slurm/testing/srun-failing-node.sh');
    const env = `--export=ALL,SLURMPOOL_SRUN=${wrapper},SLURMPOOL_FAIL_NODE=n3`;
    const a = sbatch(['-N3', env, `--chdir=${root}`, `--output=${failOut}`, 'scripts/slurm/pool-map.sbatch', '100000']);
    const b = sbatch(['-N3', `${env},MIN_NODES=2`, `--chdir=${root}`, `--output=${okOut}`, 'scripts/slurm/pool-map.sbatch', '100000']);
    const [ea, eb] = [await waitJob(a, 90_000), await waitJob(b, 90_000)];
    const fail = readOut(failOut);
    expect(ea.state, fail).toBe('FAILED');
    expect(fail).toContain('1 of 3 node(s) could not start (need 3)');
    expect(fail).toMatch(/n3: .*cannot start the agent \(simulated: node binary missing\)/);
    const ok = readOut(okOut);
    expect(eb.state, ok).toBe('COMPLETED');
    // One line names the node, the agent's own reason first, whichever of srun's lines arrived first.
    const leftOut = ok.split('\n').filter((l) => l.includes('node n3: left out:'));
    expect(leftOut, ok).toHaveLength(1);
    expect(leftOut[0]).toMatch(/node n3: left out: node n3: cannot start the agent \(simulated: node binary missing\); srun exited with status 127/);
    const r = JSON.parse(ok.split('\n').find((l) => l.startsWith('{'))!) as { nodes: string[]; primes: number };
    expect(r.nodes).toEqual(['n1', 'n2']);
    expect(r.primes).toBe(9592);
  });

  it('an uneven allocation (sbatch -N3 -n5: 2(x2),1 CPUs) gets a worker on every CPU', async () => {
    const r = await runJob<{ env: string; nodes: [string, number][]; workers: number; ran: number }>(
      ['-N3', '-n5'],
      `const pool = await Pool.open({ log: false });\n` +
        `const recs = [];\n` +
        `for await (const r of pool.runCommands(Array.from({ length: 10 }, () => 'sleep 0.2'))) recs.push(r.node);\n` +
        `console.log(JSON.stringify({ env: process.env.SLURM_JOB_CPUS_PER_NODE, nodes: pool.nodes.map((n) => [n.node, n.workers]).sort(), workers: pool.workers, ran: recs.length }));\n` +
        `await pool.close();\n`,
    );
    expect(r.env).toBe('2(x2),1');
    expect(r.nodes.map(([, w]) => w).sort()).toEqual([1, 2, 2]);
    expect(r.workers).toBe(5);
    expect(r.ran).toBe(10);
  });

  it('a shared value reaches 3 Slurm nodes through the relay tree: the coordinator sends it twice, one node gets it from another', async () => {
    const r = await runJob<{ ok: boolean; nodes: number; state: { node: string; from: Record<string, string>; bytesSent: number; ready: number[] }[] }>(
      ['-N3'],
      `const pool = await Pool.open({ module: ${JSON.stringify(join(root, 'test/fixtures/tasks.mjs'))}, log: false });\n` +
        `const data = Buffer.alloc(24 * 1024 * 1024);\n` +
        `for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;\n` +
        `let want = 0; for (let i = 0; i < data.length; i++) want += data[i];\n` +
        `const ref = await pool.share(data);\n` +
        `const out = await pool.map('sumShared', Array(9).fill(ref), { chunksize: 1 });\n` +
        `console.log(JSON.stringify({ ok: out.every((r) => r.sum === want && r.length === data.length), nodes: [...new Set(out.map((r) => r.node))].length, state: pool.sharedState() }));\n` +
        `await pool.close();\n`,
    );
    expect(r.ok).toBe(true);
    expect(r.state).toHaveLength(3);
    for (const n of r.state) expect(n.ready).toEqual([1]);
    expect(r.state.reduce((s, n) => s + n.bytesSent, 0)).toBe(2 * 24 * 1024 * 1024);
    const relayed = r.state.filter((n) => n.from['1'] !== 'coordinator');
    expect(relayed).toHaveLength(1);
    expect(r.state.map((n) => n.node)).toContain(relayed[0]!.from['1']);
  });
});
