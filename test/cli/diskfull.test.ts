// A results file on a full disk: a clean stop, a valid journal, and --resume finishes the rest.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, records, tmp } from './helpers.js';

/** A 48 KiB tmpfs (needs root): the disk that fills up. */
function tinyDisk(): { dir: string | null; why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'slurmpool-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir, why: '' };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const why = `cannot mount a small tmpfs (root needed): ${(e as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(why);
    return { dir: null, why };
  }
}

const disk = tinyDisk();
afterAll(() => {
  if (disk.dir) {
    execFileSync('umount', [disk.dir]);
    rmSync(disk.dir, { recursive: true, force: true });
  }
});

describe.skipIf(!disk.dir)(`results on a full disk ${disk.why}`, () => {
  it('stops cleanly with a resumable status, keeps whole records only, and --resume completes on a disk with room', async () => {
    const t = tmp();
    try {
      const tasks = t.write('tasks.txt', Array.from({ length: 600 }, (_, i) => `echo ${'x'.repeat(60)} ${i}`).join('\n') + '\n');
      const out = join(disk.dir!, 'res.jsonl');
      const r = await cli(['run', tasks, '-o', out, '--workers', '2', '--grace', '2s']);
      expect(r.exitCode, String(r.stderr)).toBe(3);
      expect(String(r.stderr)).toMatch(/stopped early \(write-error\): cannot write to .*res\.jsonl \(ENOSPC: no space left on device/);
      const text = readFileSync(out, 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      const recs = records(text, true);
      expect(recs.length).toBeGreaterThan(0);
      expect(recs.length).toBeLessThan(600);
      // Move the journal to a disk with room and resume there: every task recorded exactly once.
      const moved = t.write('res.jsonl', text);
      const r2 = await cli(['run', tasks, '-o', moved, '--resume', '--workers', '2']);
      expect(r2.exitCode, String(r2.stderr)).toBe(0);
      const all = records(moved).map((x) => x.index);
      expect(all.length).toBe(600);
      expect(new Set(all).size).toBe(600);
    } finally {
      t.done();
    }
  });
});
