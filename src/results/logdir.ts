// Where a task's large stdout/stderr goes under --log-dir: one subfolder per 1,000 task indices.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Task indices per subfolder: 100,000 tasks make 100 folders of 1,000 files, not one huge directory. */
export const TASKS_PER_FOLDER = 1000;

/** Path, relative to the log directory, of a task's `out` or `err` file: `12/12345.out`. */
export function logFileName(index: number, stream: 'out' | 'err'): string {
  return `${Math.floor(index / TASKS_PER_FOLDER)}/${index}.${stream}`;
}

/**
 * Create a --log-dir and its missing parents; on failure, the error of the first folder that could not
 * be made, with its code (EROFS, EACCES, ENOSPC…): a recursive mkdir says only ENOENT for the leaf
 * when a parent cannot be created, which hides a read-only or foreign file system.
 */
export function makeLogDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    return;
  } catch (e) {
    const first = e as NodeJS.ErrnoException;
    // Walk down from the deepest folder that exists, creating one level at a time, to find the real error.
    const missing: string[] = [];
    let at = resolve(dir);
    while (!existsSync(at)) {
      missing.unshift(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
    }
    for (const d of missing) {
      try {
        mkdirSync(d);
      } catch (inner) {
        const err = inner as NodeJS.ErrnoException;
        throw new Error(`cannot create ${d} in ${dirname(d)}: ${explain(err)}`);
      }
    }
    throw new Error(explain(first));
  }
}

function explain(e: NodeJS.ErrnoException): string {
  const why: Record<string, string> = {
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'a part of the path is a file, not a folder',
  };
  return e.code && why[e.code] ? `${e.code} (${why[e.code]})` : e.message;
}
