// The typed-pool checks in test/types/ compile (tsc --noEmit): names, arguments and results of a typed pool; untyped use as before.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('typed task modules', () => {
  it('test/types compiles against the built declarations, every @ts-expect-error an error', () => {
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'test/types/tsconfig.json'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
