// Growing past one allocation on the real test cluster: a run in a 1-node job grows by sbatch jobs
// whose nodes join it, a grown job cancelled mid-run loses nothing, a second job joins a running
// library pool, and join files others can read or holding a wrong secret are refused.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';
import { clusterOrSkip, readOut, sbatch, SLURM_CONF, waitJob } from './helpers/slurm.js';

const root = resolve(import.meta.dirname, '..');
const CLI = join(root, 'dist/cli/main.js');
const cluster = clusterOrSkip();
const env = { ...process.env, SLURM_CONF };
/** Every job these tests submitted or saw submitted: none may outlive them. */
const ours = new Set<string>();

function squeueIds(): string[] {
  return execFileSync('squeue', ['-h', '-o', '%i'], { env, encoding: 'utf8', timeout: 15_000 }).split('\n').map((l) => l.trim()).filter(Boolean);
}

afterAll(() => {
  if (ours.size) execFileSync('scancel', [...ours], { env, stdio: 'ignore', timeout: 15_000 });
});

interface Rec {
  index: number;
  ok: boolean;
  node: string;
  started: string | number;
  ended: string | number;
}

/** A results file: its header, grow events and task records. */
function results(path: string) {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const header = lines.find((l) => (l.slurmpool as { version?: number } | undefined)?.version === 1)?.slurmpool as { started: number; grow?: unknown } | undefined;
  const grown = lines.filter((l) => (l.slurmpool as { event?: string } | undefined)?.event === 'grow').map((l) => l.slurmpool as { job: string; at: number });
  const recs = lines.filter((l) => typeof l.index === 'number') as unknown as Rec[];
  return { header, grown, recs };
}

const time = (v: string | number) => (typeof v === 'number' ? v : Date.parse(v));

/** A 1-node job running `slurmpool run` over `n` one-second commands, growing by up to 2 one-node jobs. */
function growingRun(dir: string, n: number): string {
  writeFileSync(join(dir, 'tasks.txt'), Array.from({ length: n }, () => 'sleep 1; echo $SLURMPOOL_NODE').join('\n') + '\n');
  writeFileSync(
    join(dir, 'job.sh'),
    `#!/bin/bash\nexec ${process.execPath} ${CLI} run tasks.txt -o results.jsonl --report report.html --grow 2 --grow-nodes 1 --grow-sbatch=--exclusive --join-file ${dir}/\n`,
  );
  // Loopback only: the join file names 127.0.0.1.
  const id = sbatch(['-N1', '--exclusive', '--export=ALL,SLURMPOOL_BIND=127.0.0.1', `--chdir=${dir}`, `--output=${dir}/out.txt`, join(dir, 'job.sh')]);
  ours.add(id);
  return id;
}

/** Wait (bounded) until none of `ids` is in squeue any more. */
async function gone(ids: string[], bound = 30_000): Promise<string[]> {
  const end = Date.now() + bound;
  let left = ids;
  while (Date.now() < end) {
    const q = new Set(squeueIds());
    left = ids.filter((i) => q.has(i));
    if (left.length === 0) return [];
    await new Promise((r) => setTimeout(r, 300));
  }
  return left;
}

function expectEachOnce(recs: Rec[], n: number): void {
  const idx = recs.map((r) => r.index).sort((a, b) => a - b);
  expect(idx).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(recs.filter((r) => !r.ok)).toEqual([]);
}

describe.skipIf(cluster.skip)(`growing past one allocation ${cluster.why}`, () => {
  it('a run in a 1-node job with --grow 2 uses all 3 nodes, runs every task once, and leaves no job of its own behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-grow-'));
    const id = growingRun(dir, 40);
    const end = await waitJob(id, 150_000);
    const out = readOut(join(dir, 'out.txt'));
    expect(end.state, out).toBe('COMPLETED');
    const { header, grown, recs } = results(join(dir, 'results.jsonl'));
    expect(header?.grow).toEqual({ nodes: 2, nodesPerJob: 1, sbatch: '--exclusive' });
    for (const g of grown) ours.add(g.job);
    expect(grown.length, out).toBeGreaterThanOrEqual(2);
    expectEachOnce(recs, 40);
    expect([...new Set(recs.map((r) => r.node))].sort(), out).toEqual(['n1', 'n2', 'n3']);
    // Every job id in the log, the summary and the report.
    for (const g of grown) expect(out).toContain(`grow: submitted job ${g.job} (1 node)`);
    expect(out).toContain(`grown by ${grown.length} job${grown.length === 1 ? '' : 's'} (sbatch): ${grown.map((g) => g.job).join(', ')}`);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const g of grown) expect(html).toContain(g.job);
    expect(await gone([id, ...grown.map((g) => g.job)])).toEqual([]);
    // The time from backlog to a grown node's first result (for docs/elastic.md; not asserted).
    const firstGrown = Math.min(...recs.filter((r) => r.node !== 'n1').map((r) => time(r.ended)));
    console.log(
      `grow latency: run start → first grown result ${((firstGrown - header!.started) / 1000).toFixed(1)} s; first sbatch → first grown result ${((firstGrown - grown[0]!.at) / 1000).toFixed(1)} s; ` +
        (out.match(/joined the pool [\d.]+ s after it was submitted/g) ?? []).join('; '),
    );
  }, 200_000);

  it('a grown job cancelled mid-run (scancel) loses nothing and duplicates nothing; its node leaves, it is not lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-grow-'));
    const id = growingRun(dir, 60);
    const outPath = join(dir, 'out.txt');
    // Wait for a grown node's first record, then cancel the job holding it.
    let victim: { job: string; node: string } | null = null;
    const until = Date.now() + 120_000;
    while (!victim && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      let text = '';
      try {
        text = readFileSync(join(dir, 'results.jsonl'), 'utf8');
      } catch {
        continue;
      }
      const rec = text.split('\n').filter((l) => l.startsWith('{"index"')).map((l) => JSON.parse(l) as Rec).find((r) => r.node !== 'n1');
      if (!rec) continue;
      const m = new RegExp(`grow: job (\\d+)'s node ${rec.node} joined`).exec(readOut(outPath));
      if (m) victim = { job: m[1]!, node: rec.node };
    }
    expect(victim, readOut(outPath)).not.toBeNull();
    ours.add(victim!.job);
    execFileSync('scancel', [victim!.job], { env, timeout: 15_000 });
    const end = await waitJob(id, 150_000);
    const out = readOut(outPath);
    expect(end.state, out).toBe('COMPLETED');
    const { grown, recs } = results(join(dir, 'results.jsonl'));
    for (const g of grown) ours.add(g.job);
    expectEachOnce(recs, 60);
    expect(out).toMatch(new RegExp(`node ${victim!.node}: leaving \\(SIGTERM`));
    expect(out).toContain(`node ${victim!.node}: left the pool`);
    expect(out).not.toMatch(/agent lost|nodeLost/);
    expect(readFileSync(join(dir, 'results.jsonl'), 'utf8')).not.toContain('"nodeLost"');
    expect(await gone([id, ...grown.map((g) => g.job)])).toEqual([]);
  }, 200_000);

  it('Pool.open({ grow }) in a 1-node job: the backlog of its calls grows it, joined nodes run its tasks, close cancels its jobs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-grow-'));
    const script = join(dir, 'job.mjs');
    writeFileSync(
      script,
      `import { Pool } from ${JSON.stringify(join(root, 'dist/index.js'))};\n` +
        `const pool = await Pool.open({ module: ${JSON.stringify(join(root, 'test/fixtures/tasks.mjs'))}, grow: { nodes: 2, sbatch: '--exclusive' }, joinFile: ${JSON.stringify(`${dir}/`)} });\n` +
        `const out = await pool.map('sleepThen', Array.from({ length: 40 }, (_, v) => ({ ms: 1000, v })), { chunksize: 1 });\n` +
        `const nodes = {};\n` +
        `for (const s of pool.stats()) nodes[s.node] = (nodes[s.node] ?? 0) + s.tasks;\n` +
        `const grown = pool.grownJobs;\n` +
        `await pool.close();\n` +
        `console.log(JSON.stringify({ mode: pool.mode, ok: out.every((v, i) => v === i), n: out.length, nodes, grown }));\n`,
    );
    const id = sbatch(['-N1', '--exclusive', '--export=ALL,SLURMPOOL_BIND=127.0.0.1', `--chdir=${dir}`, `--output=${dir}/out.txt`, `--wrap=exec ${process.execPath} ${script}`]);
    ours.add(id);
    const end = await waitJob(id, 150_000);
    const out = readOut(join(dir, 'out.txt'));
    expect(end.state, out).toBe('COMPLETED');
    const r = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { mode: string; ok: boolean; n: number; nodes: Record<string, number>; grown: string[] };
    for (const g of r.grown) ours.add(g);
    expect(r.mode).toBe('slurm');
    expect(r.ok && r.n === 40).toBe(true);
    expect(r.grown.length, out).toBeGreaterThanOrEqual(1);
    expect(Object.keys(r.nodes).filter((n) => n !== 'n1' && r.nodes[n]! > 0).length, out).toBeGreaterThanOrEqual(1);
    for (const g of r.grown) expect(out).toContain(`grow: submitted job ${g}`);
    expect(await gone([id, ...r.grown])).toEqual([]);
  }, 200_000);

  it('slurmpool join from a second sbatch job brings its node into a running library pool, which gives it work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-join-'));
    const lines: string[] = [];
    const pool = await Pool.open({ workers: 1, joinFile: `${dir}/`, bind: '127.0.0.1', log: (l) => lines.push(l) });
    let id = '';
    try {
      id = sbatch(['-N1', `--output=${dir}/join.txt`, `--wrap=exec ${process.execPath} ${CLI} join ${pool.joinFile!}`]);
      ours.add(id);
      const until = Date.now() + 60_000;
      while (!pool.nodes.some((n) => /^n\d$/.test(n.node)) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      const joined = pool.nodes.find((n) => /^n\d$/.test(n.node));
      expect(joined, `${lines.join('\n')}\n${readOut(`${dir}/join.txt`)}`).toBeDefined();
      const recs = [];
      for await (const r of pool.runCommands(Array.from({ length: 12 }, () => 'sleep 0.3'), { chunksize: 1 })) recs.push(r);
      expect(recs.every((r) => r.ok)).toBe(true);
      expect(recs.filter((r) => r.node === joined!.node).length).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
    const end = await waitJob(id, 60_000);
    expect(end.state, readOut(`${dir}/join.txt`)).toBe('COMPLETED');
    expect(readOut(`${dir}/join.txt`)).toContain('every agent has left the pool');
  }, 120_000);

  it('inside a job, a join file others can read and one with a wrong secret are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-join-'));
    const pool = await Pool.open({ workers: 1, joinFile: join(dir, 'pool.json'), bind: '127.0.0.1', log: false });
    try {
      const open = join(dir, 'open.json');
      copyFileSync(pool.joinFile!, open);
      chmodSync(open, 0o644);
      const forged = join(dir, 'forged.json');
      const info = JSON.parse(readFileSync(pool.joinFile!, 'utf8')) as { secret: string };
      writeFileSync(forged, JSON.stringify({ ...info, secret: '0'.repeat(info.secret.length) }), { mode: 0o600 });
      const a = sbatch(['-N1', `--output=${dir}/open.txt`, `--wrap=exec ${process.execPath} ${CLI} join ${open}`]);
      const b = sbatch(['-N1', `--output=${dir}/forged.txt`, `--wrap=exec ${process.execPath} ${CLI} join ${forged}`]);
      ours.add(a).add(b);
      const [ea, eb] = [await waitJob(a, 60_000), await waitJob(b, 60_000)];
      const ta = readOut(`${dir}/open.txt`);
      const tb = readOut(`${dir}/forged.txt`);
      expect(ea.state, ta).toBe('FAILED');
      expect(ta).toContain(`join file ${open} has mode 0644`);
      expect(eb.state, tb).toBe('FAILED');
      expect(tb).toMatch(/could not join the coordinator: .*(refused|prove|proof)/);
      expect(tb).not.toContain(info.secret);
      expect(pool.nodes.map((n) => n.node)).toEqual([pool.nodes[0]!.node]);
    } finally {
      await pool.close();
    }
  }, 120_000);
});
