// Load a CommonJS dependency through V8's code cache, kept in a folder only this user can write.
//
// Node 20 has no compile cache (module.enableCompileCache is Node 22.1+), so every process and every
// worker thread compiles msgpackr again: about 9 ms of each thread's start-up, and 3 ms more for its
// first pack and unpack. V8's cached data of the script, made after it has run once (so it holds the
// functions compiled by then), cuts both to about 5 ms in all. V8 checks the data's version, flags and
// source length and rejects what does not fit; the cache file's name carries the source file's identity
// (inode, size, modification and change times), Node's version and its flags, so a changed dependency
// or another Node gets a file of its own. A file that is rejected or unreadable costs one plain
// compile and is written again; nothing else changes.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from './node-fs.js';
import { createRequire } from 'node:module';

// The other built-in modules through require, when first needed: an ES module import of each costs
// 0.2–0.9 ms in a fresh worker thread, before the thread can say it is ready, and this file's work
// waits until the codec is first used.
const requireBuiltin = createRequire(import.meta.url);
let builtins: { os: typeof import('node:os'); path: typeof import('node:path'); url: typeof import('node:url'); vm: typeof import('node:vm'); threads: typeof import('node:worker_threads') } | undefined;
const node = () =>
  (builtins ??= {
    os: requireBuiltin('node:os'),
    path: requireBuiltin('node:path'),
    url: requireBuiltin('node:url'),
    vm: requireBuiltin('node:vm'),
    threads: requireBuiltin('node:worker_threads'),
  });

/** What the last load did: read the cache, compiled and wrote it, compiled and could not write it, or compiled with no usable folder. */
export type CacheOutcome = 'hit' | 'written' | 'unwritten' | 'off';

/**
 * The folder of cached code: SLURMPOOL_CODE_CACHE if set (`0` turns the cache off), else
 * $XDG_CACHE_HOME/slurmpool, else ~/.cache/slurmpool.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env.SLURMPOOL_CODE_CACHE;
  if (v === '0' || v === 'off') return null;
  if (v) return v;
  const { join } = node().path;
  const base = env.XDG_CACHE_HOME || join(node().os.homedir(), '.cache');
  return join(base, 'slurmpool');
}

/**
 * The folder, made 0700 if missing; null unless it is a real folder (not a link) owned by this user
 * that no one else can write to: cached code is run, so only this user may have put it there.
 */
function ownFolder(dir: string): string | null {
  try {
    let st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      st = lstatSync(dir);
    }
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return null;
    return dir;
  } catch {
    return null;
  }
}

/** Read a cache file if it is a plain file of this user's; else undefined. */
function readOwn(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Write whole or not at all (a reader never sees half a file): a private temporary file, then rename. */
function writeAtomically(file: string, data: Buffer): boolean {
  const tmp = `${file}.${process.pid}-${node().threads.threadId}-${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false;
  }
}

/** A 32-bit FNV-1a hash of a short string, in base 36. */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

let outcome: CacheOutcome = 'off';

/** What the last requireCached call did (for tests and the bench). */
export function lastCacheOutcome(): CacheOutcome {
  return outcome;
}

/**
 * Where `require(pkg)` from `from` finds the package: the first `node_modules/pkg` in `from`'s folder
 * or above it, as Node looks (found by hand: Node's resolver costs 3–4 ms on its first use in a
 * thread). `entry` is the file the package's exports give `require` in Node. Null when not found
 * that way (NODE_PATH, a global folder) or when the file is not there: the caller then requires it.
 */
function findPackageFile(pkg: string, entry: string, from: string): string | null {
  const { basename, dirname, join } = node().path;
  let dir = dirname(node().url.fileURLToPath(from));
  for (;;) {
    if (basename(dir) !== 'node_modules') {
      const at = join(dir, 'node_modules', pkg);
      if (statSync(at, { throwIfNoEntry: false })?.isDirectory()) {
        try {
          return realpathSync.native(join(at, entry));
        } catch {
          return null;
        }
      }
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * require(pkg) from the module at `from` (a file: URL, its import.meta.url), compiled with V8's cached data where there is some; `entry` is the file
 * the package's exports give `require` in Node (see findPackageFile). `warm` runs on the fresh exports
 * before the data is made, so that the functions it calls are in the cache too (it must not change
 * anything the caller sees). The exports are not put in require's cache: the caller keeps them.
 */
export function requireCached<T>(pkg: string, entry: string, from: string, warm?: (exports: T) => void): T {
  const dir = codeCacheDir();
  const folder = dir === null ? null : ownFolder(dir);
  const file = folder === null ? null : findPackageFile(pkg, entry, from);
  if (folder === null || file === null) {
    outcome = 'off';
    return createRequire(from)(pkg) as T;
  }
  const source = readFileSync(file, 'utf8');
  // The file's version by its inode, size and change time (any write to the file changes its ctime;
  // hashing 120 kB of source instead costs 5 ms in a fresh thread), and the Node that compiled it.
  const st = statSync(file, { bigint: true });
  // (V8 checks its own flags: a cache made under other flags is rejected, then written again.)
  const key = hash(`${process.version}\0${process.arch}\0${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${source.length}`);
  const { dirname, join } = node().path;
  const cacheFile = join(folder, `${file.split(/[\\/]/).slice(-3).join('-').replace(/[^\w.-]/g, '_')}-${key}.v8`);
  const cachedData = readOwn(cacheFile);
  // The wrapper Node itself puts around a CommonJS file; the file name keeps stack traces true.
  const script = new (node().vm.Script)(`(function (exports, require, module, __filename, __dirname) { ${source}\n});`, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {} as unknown };
  const fn = script.runInThisContext() as (e: unknown, r: NodeRequire, m: { exports: unknown }, f: string, d: string) => void;
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  const exports = mod.exports as T;
  if (cachedData && !script.cachedDataRejected) {
    outcome = 'hit';
    return exports;
  }
  outcome = 'unwritten';
  try {
    warm?.(exports);
    if (writeAtomically(cacheFile, script.createCachedData())) outcome = 'written';
  } catch {
    // A cache that cannot be made changes nothing but the next start-up's time.
  }
  return exports;
}
