// The package as npm users get it: pack the tarball, install it into a fresh project (no network), import and require it, run its bin.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  dependencies: Record<string, string>;
  bin: Record<string, string>;
};

let tmp = '';
let proj = '';
let files: string[] = [];

/** Run node in the temp project; returns stdout, fails the test with stderr on a non-zero exit. */
function node(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, args, { cwd: proj, encoding: 'utf8', timeout: 60_000, input, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist/index.js'))) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  tmp = mkdtempSync(join(tmpdir(), 'slurmpool-pkg-'));
  // --ignore-scripts: the tests run after `npm run build`; pack what is built.
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const info = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  files = info[0]!.files.map((f) => f.path);
  // Install as npm would lay it out, without the network: the tarball unpacked into node_modules,
  // its dependencies linked to this checkout's copies, its bin linked into node_modules/.bin.
  proj = join(tmp, 'proj');
  const dir = join(proj, 'node_modules', pkg.name);
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', join(tmp, info[0]!.filename), '-C', dir, '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) {
    const target = join(proj, 'node_modules', dep);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(realpathSync(join(root, 'node_modules', dep)), target);
  }
  mkdirSync(join(proj, 'node_modules/.bin'));
  for (const [name, path] of Object.entries(pkg.bin)) symlinkSync(join('..', pkg.name, path), join(proj, 'node_modules/.bin', name));
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  writeFileSync(join(proj, 'tasks.mjs'), 'export const square = (x) => x * x;\n');
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('imports from ESM, the main entry and slurmpool/report', () => {
    const out = node(['--input-type=module', '-e', "import { Pool, TaskError } from 'slurmpool'; import { writeReport } from 'slurmpool/report'; console.log(typeof Pool.open, typeof TaskError, typeof writeReport);"]);
    expect(out.trim()).toBe('function function function');
  });

  it('requires from CommonJS (require(esm): no top-level await in the graph), without a warning', () => {
    const r = spawnSync(process.execPath, ['-e', "require('slurmpool'); require('slurmpool/report');"], { cwd: proj, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = node(['-e', "const { Pool, OptionError } = require('slurmpool'); const { writeReport } = require('slurmpool/report'); console.log(typeof Pool.open, typeof OptionError, typeof writeReport);"]);
    expect(out.trim()).toBe('function function function');
  });

  it('runs a map in local mode from ESM', () => {
    writeFileSync(join(proj, 'esm.mjs'), "import { Pool } from 'slurmpool';\nconst pool = await Pool.open({ module: './tasks.mjs', workers: 1 });\ntry { console.log(JSON.stringify(await pool.map('square', [1, 2, 3]))); } finally { await pool.close(); }\n");
    expect(node(['esm.mjs']).trim()).toBe('[1,4,9]');
  });

  it('runs a map in local mode from CommonJS', () => {
    writeFileSync(join(proj, 'cjs.cjs'), "const { Pool } = require('slurmpool');\n(async () => {\n  const pool = await Pool.open({ module: './tasks.mjs', workers: 1 });\n  try { console.log(JSON.stringify(await pool.map('square', [1, 2, 3]))); } finally { await pool.close(); }\n})();\n");
    expect(node(['cjs.cjs']).trim()).toBe('[1,4,9]');
  });

  it('runs a Python task module with the Python worker it ships (python/)', () => {
    expect(files).toEqual(expect.arrayContaining(['python/slurmpool_worker.py', 'python/slurmpool_runtime.py', 'python/slurmpool_codec.py']));
    writeFileSync(join(proj, 'tasks.py'), 'def square(x):\n    return x * x\n');
    writeFileSync(join(proj, 'py.mjs'), "import { Pool } from 'slurmpool';\nconst pool = await Pool.open({ module: './tasks.py', workers: 1 });\ntry { console.log(JSON.stringify(await pool.map('square', [1, 2, 3]))); } finally { await pool.close(); }\n");
    expect(node(['py.mjs']).trim()).toBe('[1,4,9]');
  });

  it('runs under `node --input-type=module -e` (workers do not inherit flags they reject)', () => {
    const code = "import { Pool } from 'slurmpool'; const pool = await Pool.open({ module: './tasks.mjs', workers: 1 }); try { console.log(JSON.stringify(await pool.map('square', [4]))); } finally { await pool.close(); }";
    expect(node(['--input-type=module', '-e', code]).trim()).toBe('[16]');
    // Per-process V8 flags (Node refuses them for threads, naming them): dropped for the workers, not fatal.
    expect(node(['--trace-gc', '--expose-gc', '--input-type=module', '-e', code]).split('\n')).toContain('[16]');
  });

  it('installs a bin that runs (node_modules/.bin/slurmpool --help)', () => {
    const r = spawnSync(join(proj, 'node_modules/.bin/slurmpool'), ['--help'], { cwd: proj, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/slurmpool/);
  });

  it('holds no source maps without sources, no CI scripts and no test fixtures', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('LICENSE');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => /^(test|scripts\/ci|scripts\/ssh|scripts\/slurm\/testing|src)\//.test(f) || f === 'scripts/slurm/test-cluster.sh')).toEqual([]);
  });

  it('ships docs that link only to shipped files', () => {
    const broken: string[] = [];
    for (const f of files.filter((x) => x.endsWith('.md'))) {
      const text = readFileSync(join(proj, 'node_modules', pkg.name, f), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const link = m[1]!;
        if (/^[a-z]+:/.test(link)) continue;
        const target = join(dirname(f), link).replace(/\/$/, '');
        if (!files.some((x) => x === target || x.startsWith(`${target}/`))) broken.push(`${f} → ${link}`);
      }
      // Paths of this repository quoted in code spans (`test/pool.test.ts`) must be shipped too.
      for (const m of text.matchAll(/`(?:[a-z]+ )?((?:test|bench|scripts|src|docs|examples)\/[^`\s]*)/g)) {
        const path = m[1]!.replace(/\/$/, '');
        if (!files.some((x) => x === path || x.startsWith(`${path}/`))) broken.push(`${f} → ${path}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('passes npm pkg fix unchanged (bin, repository and the rest as npm wants them)', () => {
    const p = JSON.parse(readFileSync(join(proj, 'node_modules', pkg.name, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(p.bin).toEqual({ slurmpool: 'dist/cli/main.js' });
    expect(p.license).toBe('MIT');
    expect(p.repository).toEqual({ type: 'git', url: 'git+https://github.com/slurmpool/slurmpool.git' });
    expect(typeof p.homepage).toBe('string');
    expect(p.bugs).toEqual({ url: 'https://github.com/slurmpool/slurmpool/issues' });
  });
});
