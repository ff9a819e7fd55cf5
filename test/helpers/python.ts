// Python interpreters for test/python*.test.ts: one that imports the msgpack package (Debian's
// python3-msgpack), and the codec settings to test both with it and without it.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PY_FIXTURES = fileURLToPath(new URL('../fixtures/python/', import.meta.url));

function canImportMsgpack(python: string): boolean {
  try {
    execFileSync(python, ['-c', 'import msgpack'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * An interpreter that has the msgpack package. CI installs python3-msgpack (scripts/ci/install-deps.sh)
 * for Debian's /usr/bin/python3, which may not be the python3 first on PATH (pyenv): both are tried.
 */
export function pythonWithMsgpack(): string {
  for (const p of ['/usr/bin/python3', 'python3']) if (canImportMsgpack(p)) return p;
  throw new Error('no python3 with the msgpack package (apt-get install python3-msgpack, or scripts/ci/install-deps.sh)');
}

/** The two codecs every Python test runs with: the package, and the built-in one forced by SLURMPOOL_PY_CODEC. */
export const CODECS = [
  { codec: 'msgpack', env: { SLURMPOOL_PY_CODEC: 'msgpack' } },
  { codec: 'builtin', env: { SLURMPOOL_PY_CODEC: 'builtin' } },
] as const;
