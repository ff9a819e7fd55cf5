// A results file on a full disk: a clean stop, a valid journal, and --resume finishes the rest.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, records, tmp, tmpfsForFile } from './helpers.js';

const disk = tmpfsForFile('slurmpool-full-', 'size=48k');

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

  it('a --resume rewrite that finds the disk full says so, names the file, removes its temporary copy and leaves the file as it was', async () => {
    const t = tmp();
    const dir = mkdtempSync(join(tmpdir(), 'slurmpool-rwfull-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    try {
      const N = 100;
      const tasks = t.write('tasks.txt', Array.from({ length: N }, (_, i) => `echo ${i}`).join('\n') + '\n');
      // A journal with one failure record: resume must rewrite it without that record.
      const recs = Array.from({ length: N }, (_, i) =>
        JSON.stringify({ index: i, line: i + 1, ok: i !== 5, command: `echo ${i}`, exitCode: i === 5 ? 1 : 0, stdout: `${i}\n${'.'.repeat(200)}`, node: 'n1', worker: 0, started: 1, ended: 2, attempts: 1 }),
      );
      const res = join(dir, 'res.jsonl');
      const text = `${recs.join('\n')}\n`;
      writeFileSync(res, text);
      // Fill the disk but for room for the lock file: the rewrite's copy (about as large as the file) cannot fit.
      const st = statfsSync(dir);
      const free = Number(st.bavail) * Number(st.bsize);
      expect(free).toBeGreaterThan(8192);
      writeFileSync(join(dir, 'filler'), Buffer.alloc(free - 8192));
      const r = await cli(['run', tasks, '-o', res, '--resume']);
      expect(r.exitCode, String(r.stderr)).toBe(2);
      const err = String(r.stderr);
      expect(err).toContain(`cannot rewrite ${res} for --resume: the disk is full (ENOSPC) while writing its new copy ${join(dir, '.res.jsonl.resume-')}`);
      expect(err).toContain(`(removed again); ${res} is unchanged`);
      expect(readdirSync(dir).sort()).toEqual(['filler', 'res.jsonl']);
      expect(readFileSync(res, 'utf8')).toBe(text);
    } finally {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
      t.done();
    }
  });
});
