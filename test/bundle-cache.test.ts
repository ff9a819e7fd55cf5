// The pool's bundles through V8's code cache (scripts/build/bundle.mjs, runBundle in
// src/util/code-cache.ts): written once the code has run (the main thread at exit, a worker before its
// first results), read by the next process; a damaged, truncated or foreign file, or a folder others
// can write, changes nothing but the time; processes started together leave one whole file each; old
// files are pruned; stack traces name the bundle's real lines; the stub exports what the package's
// types say.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import * as entry from '../dist/index.js';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const dirs: string[] = [];
function cacheDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sp-bc-'));
  dirs.push(d);
  return join(d, 'cache');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// A local pool in a process of its own (V8 reads cached data only when it compiles, once per process),
// then an error thrown inside the bundle.
const script = `
import { Pool, OptionError } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
const module = new URL('./fixtures/tasks.mjs', ${JSON.stringify(import.meta.url)});
const pool = await Pool.open({ module, workers: 2 });
const r = await pool.map('square', [1, 2, 3, 4]);
await pool.close();
let stack = '';
try { await Pool.open({ module, workers: 0 }); } catch (e) { stack = e instanceof OptionError ? e.stack : 'not an OptionError: ' + e; }
console.log(JSON.stringify({ r, stack }));
`;
type Run = { r: number[]; stack: string };
const args = ['--input-type=module', '-e', script];
const run = (dir: string): Run => JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, SLURMPOOL_CODE_CACHE: dir } })) as Run;
const runAsync = (dir: string): Promise<Run> =>
  new Promise((res, rej) => execFile(process.execPath, args, { encoding: 'utf8', env: { ...process.env, SLURMPOOL_CODE_CACHE: dir } }, (e, out) => (e ? rej(e) : res(JSON.parse(out) as Run))));

/** The bundles' cache files, by bundle. */
function bundleFiles(dir: string): { index: string; worker: string } {
  const names = readdirSync(dir);
  const index = names.filter((n) => /-index\.bundle\.js-\w+\.v8$/.test(n));
  const worker = names.filter((n) => /-worker\.bundle\.js-\w+\.v8$/.test(n));
  expect(index, names.join(' ')).toHaveLength(1);
  expect(worker, names.join(' ')).toHaveLength(1);
  return { index: join(dir, index[0]!), worker: join(dir, worker[0]!) };
}
/** A file's identity: a write (a new file renamed over it) changes it. */
const identity = (f: string) => {
  const st = statSync(f);
  return `${st.ino}:${st.mtimeMs}`;
};

/** The stack's first frame in the bundle: its line must be the throw. */
function expectTrueStack(stack: string): void {
  const m = /\n\s+at .*[\\/]dist[\\/](index\.bundle\.js):(\d+):\d+\)/.exec(stack);
  expect(m, stack).not.toBeNull();
  const line = readFileSync(join(dist, m![1]!), 'utf8').split('\n')[Number(m![2]) - 1]!;
  expect(line).toMatch(/throw new .*OptionError\(`options\.\$\{name\} must be/);
}

const squares = [1, 4, 9, 16];

describe('bundles through the code cache', () => {
  it('writes each bundle’s cache (0600, in a 0700 folder) after a first run, and the next run reads it without writing', () => {
    const dir = cacheDir();
    const first = run(dir);
    expect(first.r).toEqual(squares);
    expectTrueStack(first.stack);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = bundleFiles(dir);
    for (const f of Object.values(files)) expect(statSync(f).mode & 0o777).toBe(0o600);
    const before = Object.values(files).map(identity);
    // A file V8 rejected or that failed its checks would be written again at this run's end.
    const second = run(dir);
    expect(second.r).toEqual(squares);
    expectTrueStack(second.stack);
    expect(second.stack.split('\n').slice(0, 4)).toEqual(first.stack.split('\n').slice(0, 4));
    expect(Object.values(bundleFiles(dir)).map(identity)).toEqual(before);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  type Harm = (f: string, other: Buffer) => void;
  const damage: [string, Harm][] = [
    // The data V8 would be given damaged in place, header intact: V8 itself would run it (and crash).
    ['damaged in the middle', (f) => {
      const b = readFileSync(f);
      for (let i = 0; i < 64; i++) b[(b.length >> 2) + i]! ^= 0x5a;
      writeFileSync(f, b);
    }],
    ['truncated', (f) => writeFileSync(f, readFileSync(f).subarray(0, 3000))],
    ['empty', (f) => writeFileSync(f, '')],
    // Whole and sound, but made for the other bundle's source.
    ['for the other bundle', (f, other) => writeFileSync(f, other)],
    ['writable by others', (f) => chmodSync(f, 0o666)],
    ...(process.getuid?.() === 0 ? [['owned by another user', (f: string) => chownSync(f, 65534, 65534)] as [string, Harm]] : []),
  ];
  it.each(damage)('a cache file %s is not used: the bundle compiles as it is, runs the same, and the file is written again', (_, harm) => {
    const dir = cacheDir();
    run(dir);
    const files = bundleFiles(dir);
    const good = Object.values(files).map((f) => readFileSync(f));
    Object.values(files).forEach((f, i) => harm(f, good[1 - i]!));
    const harmed = Object.values(files).map(identity);
    const r = run(dir);
    expect(r.r).toEqual(squares);
    expectTrueStack(r.stack);
    const after = bundleFiles(dir);
    Object.values(after).forEach((f, i) => {
      expect(identity(f)).not.toBe(harmed[i]);
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(statSync(f).uid).toBe(process.getuid?.() ?? statSync(f).uid);
      expect(readFileSync(f).length).toBeGreaterThan(good[i]!.length / 2);
    });
  });

  it('a folder others can write is not used; SLURMPOOL_CODE_CACHE=0 makes none', () => {
    const dir = cacheDir();
    run(dir);
    const files = bundleFiles(dir);
    for (const f of Object.values(files)) writeFileSync(f, '');
    chmodSync(dir, 0o777);
    expect(run(dir).r).toEqual(squares);
    for (const f of Object.values(files)) expect(statSync(f).size).toBe(0);
    const off = cacheDir();
    const r = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, SLURMPOOL_CODE_CACHE: '0' }, cwd: join(off, '..') })) as Run;
    expect(r.r).toEqual(squares);
    expect(readdirSync(join(off, '..'))).toEqual([]);
  });

  it('processes started together on an empty folder all run, and leave one whole file per bundle', async () => {
    const dir = cacheDir();
    const rs = await Promise.all(Array.from({ length: 6 }, () => runAsync(dir)));
    for (const r of rs) expect(r.r).toEqual(squares);
    const files = bundleFiles(dir);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const before = Object.values(files).map(identity);
    expect(run(dir).r).toEqual(squares);
    // Whole files: the next process took them (a rejected or damaged one would be written again).
    expect(Object.values(bundleFiles(dir)).map(identity)).toEqual(before);
  }, 60_000);

  it('a process that did no pool work writes no cache (later processes would take its top level alone as it is)', () => {
    const dir = cacheDir();
    const only = `import { expandHostlist } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}; console.log(JSON.stringify(expandHostlist('n[1-2]')));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', only], { encoding: 'utf8', env: { ...process.env, SLURMPOOL_CODE_CACHE: dir } });
    expect(JSON.parse(out)).toEqual(['n1', 'n2']);
    expect(readdirSync(dir).filter((n) => n.includes('bundle.js'))).toEqual([]);
    expect(run(dir).r).toEqual(squares);
    bundleFiles(dir);
  });

  it('a new file prunes the same bundle’s oldest beyond six, and temporary files left an hour ago', () => {
    const dir = cacheDir();
    run(dir);
    const { index } = bundleFiles(dir);
    const prefix = index.replace(/-\w+\.v8$/, '-');
    rmSync(index);
    const day = 86_400_000;
    const fakes = Array.from({ length: 8 }, (_, i) => `${prefix}old${i}.v8`);
    fakes.forEach((f, i) => {
      writeFileSync(f, 'not a cache', { mode: 0o600 });
      utimesSync(f, new Date(Date.now() - (i + 1) * day), new Date(Date.now() - (i + 1) * day));
    });
    const staleTmp = `${index}.1-0-x.tmp`;
    const freshTmp = `${index}.2-0-y.tmp`;
    for (const t of [staleTmp, freshTmp]) writeFileSync(t, 'half', { mode: 0o600 });
    utimesSync(staleTmp, new Date(Date.now() - 2 * 3_600_000), new Date(Date.now() - 2 * 3_600_000));
    expect(run(dir).r).toEqual(squares);
    const left = readdirSync(dir).map((n) => join(dir, n));
    const kept = left.filter((f) => f.startsWith(prefix) && f.endsWith('.v8'));
    // The new file and the five newest of the old ones.
    expect(kept.filter((f) => !fakes.includes(f))).toHaveLength(1);
    expect(kept.filter((f) => fakes.includes(f)).sort()).toEqual(fakes.slice(0, 5).sort());
    expect(left).not.toContain(staleTmp);
    expect(left).toContain(freshTmp);
    // The worker's file and msgpackr's are another source's: untouched.
    expect(left.filter((f) => /worker\.bundle\.js-\w+\.v8$/.test(f))).toHaveLength(1);
  });

  it("the entry exports exactly the values the package's types declare", () => {
    // Only the package's own declarations: the export names need no library types.
    const program = ts.createProgram([join(dist, 'index.d.ts')], { noEmit: true, noLib: true, types: [] });
    const checker = program.getTypeChecker();
    const sym = checker.getSymbolAtLocation(program.getSourceFile(join(dist, 'index.d.ts'))!)!;
    const values = checker
      .getExportsOfModule(sym)
      .filter((s) => ((s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags & ts.SymbolFlags.Value) !== 0)
      .map((s) => s.getName())
      .sort();
    expect(values.length).toBeGreaterThan(5);
    expect(Object.keys(entry).sort()).toEqual(values);
  });
});
