// Load a CommonJS dependency, and this package's own bundles, through V8's code cache, kept in a folder
// only this user can write.
//
// Node 20 has no compile cache (module.enableCompileCache is Node 22.1+), so every process and every
// worker thread compiles msgpackr again: about 9 ms of each thread's start-up, and 3 ms more for its
// first pack and unpack. V8's cached data of the script, made after it has run once (so it holds the
// functions compiled by then), cuts both to about 5 ms in all. V8 checks the data's version, flags and
// source length and rejects what does not fit; the cache file's name carries the source file's identity
// (inode, size, modification and change times), Node's version and its flags, so a changed dependency
// or another Node gets a file of its own. A file that is rejected or unreadable costs one plain
// compile and is written again; nothing else changes.
//
// V8 checks only a header (version, flags, source length, payload length): a payload damaged in place
// (a bad disk, a file copied half over another) would be run as it is, and crash the process. So
// every file holds the data twice, compared before V8 sees it; one whose copies differ is compiled
// without and written again.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from './node-fs.js';
import { createRequire } from 'node:module';

// The other built-in modules through require, when first needed: an ES module import of each costs
// 0.2–0.9 ms in a fresh worker thread, before the thread can say it is ready, and this file's work
// waits until the codec is first used; node:os (0.3 ms) only where $HOME is unset.
const requireBuiltin = createRequire(import.meta.url);
let builtins: { os: typeof import('node:os'); path: typeof import('node:path'); url: typeof import('node:url'); vm: typeof import('node:vm'); threads: typeof import('node:worker_threads') } | undefined;
const node = () =>
  (builtins ??= {
    get os() {
      return requireBuiltin('node:os') as typeof import('node:os');
    },
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
  // (os.homedir() is $HOME when set: node:os is loaded only without it.)
  const base = env.XDG_CACHE_HOME || join(env.HOME || node().os.homedir(), '.cache');
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

/**
 * A cache file: this magic, then V8's cached data twice. A reader takes the data only when its two
 * copies are the same: damage (a bad block, a file cut short or copied half over another) is found
 * by one memcmp of native code. A checksum would cost more than it saves: in JavaScript 5–10 ms on
 * 200 kB in a fresh thread (run unoptimized), in WebAssembly 1–5 ms (the engine's first use), and
 * node:crypto is 3–6 ms to load in a worker thread. Not a defence against anyone who can write the
 * file (only this user can): it finds damage.
 */
const MAGIC = Buffer.from('slurmpool-v8-cache-2\n');

/** V8's cached data from a cache file of this user's whose two copies agree; else undefined. */
function readCache(file: string): Buffer | undefined {
  const raw = readOwn(file);
  if (!raw || raw.length <= MAGIC.length || (raw.length - MAGIC.length) % 2 !== 0 || !raw.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const half = (raw.length - MAGIC.length) / 2;
  const data = raw.subarray(MAGIC.length, MAGIC.length + half);
  return data.equals(raw.subarray(MAGIC.length + half)) ? data : undefined;
}

/** Cache files kept per source file: one per Node version, flags and version of the file in use at once, the rest pruned. */
const KEEP = 6;

/** Write V8's cached data as a cache file (whole or not at all), and prune the same source's oldest files. */
function writeCache(file: string, data: Buffer): boolean {
  if (!writeAtomically(file, Buffer.concat([MAGIC, data, data]))) return false;
  prune(file);
  return true;
}

/**
 * Remove the oldest cache files of the same source file (its other versions, other Nodes, other
 * flags) beyond KEEP, and temporary files a killed writer left an hour ago or more: the folder does
 * not grow with every upgrade. Only on a write, never on the path of a process that found its cache.
 */
function prune(file: string): void {
  try {
    const { basename, dirname, join } = node().path;
    const dir = dirname(file);
    const prefix = basename(file).replace(/-\w+\.v8$/, '-');
    const now = Date.now();
    const mine: { path: string; mtime: number }[] = [];
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(prefix)) continue;
      const path = join(dir, name);
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (!st?.isFile()) continue;
      if (name.endsWith('.tmp')) {
        if (now - st.mtimeMs > 3_600_000) rmSync(path, { force: true });
      } else if (/^-\w+\.v8$/.test(name.slice(prefix.length - 1))) mine.push({ path, mtime: st.mtimeMs });
    }
    mine.sort((a, b) => b.mtime - a.mtime);
    for (const old of mine.slice(KEEP)) if (old.path !== file) rmSync(old.path, { force: true });
  } catch {
    // Pruning is housekeeping: a folder that cannot be listed changes nothing.
  }
}

/** The cache file's name: the source file's last three path parts, then the key. */
function cacheName(file: string, key: string): string {
  return `${file.split(/[\\/]/).slice(-3).join('-').replace(/[^\w.-]/g, '_')}-${key}.v8`;
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
  codecLoaded = true;
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
  // (V8 checks its own flags: a cache made under other flags is rejected, then written again. `2`:
  // files that hold the data twice, so that an older slurmpool's files are not taken for these.)
  const key = hash(`2\0${process.version}\0${process.arch}\0${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${source.length}`);
  const { dirname, join } = node().path;
  const cacheFile = join(folder, cacheName(file, key));
  const cachedData = readCache(cacheFile);
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
    if (writeCache(cacheFile, script.createCachedData())) outcome = 'written';
  } catch {
    // A cache that cannot be made changes nothing but the next start-up's time.
  }
  return exports;
}

/** Cache files to write once the code has warmed up: V8's data then holds every function compiled by then. */
const pending: { script: import('node:vm').Script; file: string; seen: string }[] = [];
/**
 * Whether this thread loaded msgpackr (a pool did, or a worker ran): a bundle's cache is written only
 * then. A process that imported the package and did no pool work would leave a cache of its top level
 * alone, which later processes would take as it is (a cache that V8 takes is never written again).
 */
let codecLoaded = false;

/** The file's identity (absent, or inode and modification time), to tell whether another process wrote it since. */
function identity(file: string): string {
  const st = statSync(file, { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.mtimeMs}` : '';
}

/**
 * Write the cache of the bundles this thread compiled without one (see runBundle), now that they have
 * done their work once (if it loaded the codec, see codecLoaded). Called by a worker thread before it
 * posts its first results (it may be terminated any time after), and at the exit of every thread.
 * Cheap when there is nothing to write.
 */
export function codeWarm(): void {
  // Called at every flush of a worker's results: nothing to do after the first.
  if (!codecLoaded || pending.length === 0) return;
  for (const p of pending.splice(0)) {
    try {
      // Another thread or process wrote it since: one copy is enough (hundreds of workers start at once).
      if (identity(p.file) !== p.seen) continue;
      writeCache(p.file, p.script.createCachedData());
    } catch {
      // A cache that cannot be made changes nothing but the next start-up's time.
    }
  }
}

/**
 * Run one of this package's bundles (dist/index.bundle.js, dist/agent/worker.bundle.js): a function
 * `(exports, require, module, __filename, __dirname, __import)` written by scripts/build/bundle.mjs,
 * whose module is the published ES module beside it (dist/index.js, dist/agent/worker.js). Compiled
 * with V8's cached data where there is some, so that a new process or thread skips compiling every
 * function the last one compiled (Node 20 has no compile cache for ES modules). `provided`: what the
 * bundle's require gives for the modules it shares with the rest of the package (the error classes,
 * this module), as their ES namespaces; anything else (Node's built-in modules) comes from require.
 * `dynamicImport` is import() from the ES module beside it, which is where the bundle's relative
 * specifiers point. `build` names the build (a hash of the bundle, made by the build) in the key. Without
 * a usable cache the same source compiles as it is: the same behaviour, only slower.
 */
export function runBundle(url: URL, build: string, provided: Record<string, unknown>, dynamicImport: (specifier: string) => Promise<unknown>): Record<string, unknown> {
  const { dirname, join } = node().path;
  const file = node().url.fileURLToPath(url);
  const fd = openSync(file, 'r');
  let source: string;
  let st: import('node:fs').BigIntStats;
  try {
    st = fstatSync(fd, { bigint: true });
    source = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const dir = codeCacheDir();
  const folder = dir === null ? null : ownFolder(dir);
  let cacheFile: string | null = null;
  let cachedData: Buffer | undefined;
  let seen = '';
  if (folder !== null) {
    // The build, the file's own version (its inode, size and times: anything that rewrites it changes
    // its ctime), and the Node and flags that compile it (V8 rejects data made under other V8 flags:
    // processes run with different ones would otherwise write the file in turn).
    const key = hash(`${build}\0${process.version}\0${process.arch}\0${process.execArgv.join(' ')}\0${process.env.NODE_OPTIONS ?? ''}\0${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${source.length}`);
    const at = join(folder, cacheName(file, key));
    cacheFile = at;
    seen = identity(at);
    cachedData = seen ? readCache(at) : undefined;
  }
  // The file is compiled as it is on disk, its first line included: stack traces name its real lines.
  const script = new (node().vm.Script)(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const fn = script.runInThisContext() as (e: unknown, r: (id: string) => unknown, m: { exports: unknown }, f: string, d: string, i: typeof dynamicImport) => void;
  const nodeRequire = createRequire(url);
  const require = (id: string): unknown => (Object.hasOwn(provided, id) ? provided[id] : nodeRequire(id));
  const mod = { exports: {} as Record<string, unknown> };
  fn.call(mod.exports, mod.exports, require, mod, file, dirname(file), dynamicImport);
  if (cacheFile !== null && (!cachedData || script.cachedDataRejected)) {
    if (pending.length === 0) process.once('exit', codeWarm);
    pending.push({ script, file: cacheFile, seen });
  }
  return mod.exports;
}
