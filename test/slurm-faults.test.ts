// Faults under a real slurmctld: a node lost mid-run in a --no-kill job.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterOrSkip, readOut, sbatch, waitJob } from './helpers/slurm.js';

const root = resolve(import.meta.dirname, '..');
const cluster = clusterOrSkip();
const clusterScript = join(root, 'scripts/slurm/test-cluster.sh');

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(cluster.skip)(`node loss under Slurm ${cluster.why}`, () => {
  it('a node crashed mid-run (slurmd, step and agent killed -9): its chunks re-run on the others, every result exactly once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-fault-'));
    const out = join(dir, 'out.txt');
    const id = sbatch(['-N3', '--no-kill', '--no-requeue', `--chdir=${root}`, `--output=${out}`, '--wrap', 'node test/fixtures/slurm-long-map.mjs 60']);
    try {
      await waitFor(() => readOut(out).includes('started n1,n2,n3'), 60_000, 'the pool to start on 3 nodes');
      // Every node's srun step and agent are running now: none may show the job secret on its command line.
      const lines = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .map((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
          } catch {
            return '';
          }
        })
        .filter((c) => c.includes('cli/main.js agent'));
      expect(lines.filter((c) => c.startsWith('srun ')).length).toBeGreaterThanOrEqual(3);
      for (const c of lines) expect(c).not.toMatch(/[0-9a-f]{64}/);
      await new Promise((r) => setTimeout(r, 1500));
      execFileSync('bash', [clusterScript, 'crash-node', 'n2'], { stdio: 'ignore', timeout: 30_000 });
      const end = await waitJob(id, 120_000);
      const text = readOut(out);
      expect(end.state, text).toBe('COMPLETED');
      const r = JSON.parse(text.split('\n').find((l) => l.startsWith('{'))!) as { results: number; distinct: number; inOrder: boolean; nodesLeft: string[] };
      expect(r).toMatchObject({ results: 60, distinct: 60, inOrder: true, nodesLeft: ['n1', 'n3'] });
      expect(text).toMatch(/node n2: agent lost .*re-dispatched/);
    } finally {
      execFileSync('bash', [clusterScript, 'restart-node', 'n2'], { stdio: 'ignore', timeout: 60_000 });
    }
  });
});
