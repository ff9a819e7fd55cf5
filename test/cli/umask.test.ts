// The results file is created as the user's umask says, never widened or narrowed by slurmpool.
import { statSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

/** `slurmpool ARGS…` under a umask, through sh (a process cannot set its child's umask otherwise). */
function underUmask(umask: string, args: string[]) {
  return execa('/bin/sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, CLI, ...args], { reject: false, env: cleanEnv(), extendEnv: false, timeout: 60_000 });
}

describe('results file permissions', () => {
  for (const [umask, mode] of [
    ['077', 0o600],
    ['027', 0o640],
    ['002', 0o664],
  ] as const) {
    it(`umask ${umask} gives ${mode.toString(8)}`, async () => {
      const tasks = t.write(`u${umask}.txt`, 'echo a\n');
      const out = t.path(`u${umask}.jsonl`);
      const r = await underUmask(umask, ['run', tasks, '-o', out]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(mode);
    });
  }
});
