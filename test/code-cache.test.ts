// msgpackr loaded through V8's code cache (src/util/code-cache.ts): written once into a folder only
// this user can write, read by later loads, rewritten when V8 rejects it or its two copies differ, never
// read from a folder others can write; what is loaded behaves as msgpackr does. (The pool's own
// bundles: test/bundle-cache.test.ts.)
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { codeCacheDir } from '../dist/util/code-cache.js';

const from = new URL('../dist/protocol/codec.js', import.meta.url);
const saved = process.env.SLURMPOOL_CODE_CACHE;
const dirs: string[] = [];
function cacheIn(): string {
  const d = mkdtempSync(join(tmpdir(), 'sp-cc-'));
  dirs.push(d);
  process.env.SLURMPOOL_CODE_CACHE = join(d, 'cache');
  return join(d, 'cache');
}
afterEach(() => {
  if (saved === undefined) delete process.env.SLURMPOOL_CODE_CACHE;
  else process.env.SLURMPOOL_CODE_CACHE = saved;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// Each load in a process of its own, as in real use: V8 keeps what one isolate compiled, so a second
// load in the same process would not read the cache at all.
const script = `
import { requireCached, lastCacheOutcome } from ${JSON.stringify(new URL('../dist/util/code-cache.js', import.meta.url).href)};
let warmed = 0;
const roundTrip = (m) => {
  const p = new m.Packr({ useRecords: false, moreTypes: true, int64AsType: 'bigint' });
  return p.unpack(p.pack({ a: [1, 2.5, 'x', null, true], f: new Float64Array([1, 2]), n: 1n << 70n, d: new Date(5) }));
};
const m = requireCached('msgpackr', 'dist/node.cjs', ${JSON.stringify(from.href)}, (m) => (warmed++, roundTrip(m)));
const r = roundTrip(m);
const ok = r.a.join() === '1,2.5,x,,true' && r.f instanceof Float64Array && r.f[1] === 2 && r.n === 1n << 70n && r.d.getTime() === 5;
let stack = '';
try { new m.Packr({ useRecords: false }).unpack(Buffer.from([0x92])); } catch (e) { stack = e.stack; }
console.log(JSON.stringify({ outcome: lastCacheOutcome(), warmed, ok, stack }));
`;
function load(): { outcome: string; warmed: number; ok: boolean; stack: string } {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env } });
  return JSON.parse(out) as { outcome: string; warmed: number; ok: boolean; stack: string };
}

describe('code cache', () => {
  it('writes the cache on the first load (0600 in a 0700 folder) and reads it on the next', () => {
    const dir = cacheIn();
    expect(load()).toMatchObject({ outcome: 'written', warmed: 1, ok: true });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^msgpackr-dist-node\.cjs-\w+\.v8$/);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    // Read, not written again, and the warm-up only runs when writing.
    expect(load()).toMatchObject({ outcome: 'hit', warmed: 0, ok: true });
    expect(readdirSync(dir)).toEqual(files);
  });

  it('a cache V8 rejects is compiled without and written again', () => {
    const dir = cacheIn();
    load();
    const file = join(dir, readdirSync(dir)[0]!);
    writeFileSync(file, Buffer.alloc(4096, 7));
    expect(load()).toMatchObject({ outcome: 'written', ok: true });
    expect(statSync(file).size).not.toBe(4096);
    expect(load()).toMatchObject({ outcome: 'hit', ok: true });
  });

  it('a cache damaged in place (V8 would run it and crash) or truncated is compiled without and written again', () => {
    const dir = cacheIn();
    load();
    const file = join(dir, readdirSync(dir)[0]!);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    for (let i = 0; i < 64; i++) bad[(bad.length >> 2) + i]! ^= 0x5a;
    writeFileSync(file, bad);
    expect(load()).toMatchObject({ outcome: 'written', ok: true });
    expect(readFileSync(file).equals(bad)).toBe(false);
    writeFileSync(file, good.subarray(0, good.length >> 1));
    expect(load()).toMatchObject({ outcome: 'written', ok: true });
    expect(load()).toMatchObject({ outcome: 'hit', ok: true });
  });

  it('a folder others can write to is not used, nor is a cache file others can write', () => {
    const dir = cacheIn();
    load();
    const file = join(dir, readdirSync(dir)[0]!);
    chmodSync(file, 0o666);
    expect(load()).toMatchObject({ outcome: 'written', ok: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    chmodSync(dir, 0o777);
    expect(load()).toMatchObject({ outcome: 'off', ok: true });
  });

  it('SLURMPOOL_CODE_CACHE=0 turns it off; unset, it lives in $XDG_CACHE_HOME/slurmpool or ~/.cache/slurmpool', () => {
    process.env.SLURMPOOL_CODE_CACHE = '0';
    expect(codeCacheDir()).toBeNull();
    expect(load()).toMatchObject({ outcome: 'off', ok: true });
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/slurmpool');
    expect(codeCacheDir({ HOME: '/h' })).toMatch(/\/\.cache\/slurmpool$/);
  });

  it("errors thrown in the cached code name the dependency's own file in their stack", () => {
    cacheIn();
    load();
    const r = load();
    expect(r.outcome).toBe('hit');
    expect(r.stack).toMatch(/Unexpected end of MessagePack data\n\s+at \w+ \(.*msgpackr[\\/]dist[\\/]node\.cjs:\d+:\d+\)/);
  });
});
