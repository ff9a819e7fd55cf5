// The built entry and worker are each one bundle run by a small ES module (scripts/build/bundle.mjs):
// what they import must be there, error classes must be the one copy every other module uses, and the
// worker found at its URL.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as entry from '../dist/index.js';
import * as errors from '../dist/errors.js';
import { SlurmParseError } from '../dist/slurm/index.js';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));

function relativeImports(file: string): string[] {
  // Code lines only: doc comments quote import('./tasks.js') as an example.
  const text = readFileSync(resolve(dist, file), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*(\*|\/\/)/.test(l))
    .join('\n');
  const specs = [...text.matchAll(/(?:from\s*|\b(?:__)?import\s*\(\s*|\brequire\s*\(\s*)["'](\.[^"']+)["']|new URL\(["'](\.[^"']+)["'], (?:import\.meta\.url|require\("url"\)\.pathToFileURL\(__filename\)\.href)\)/g)].map((m) => m[1] ?? m[2]!);
  return specs.map((s) => resolve(dirname(resolve(dist, file)), s));
}

describe('bundled entry and worker', () => {
  it.each(['index.js', 'index.bundle.js', 'agent/worker.js', 'agent/worker.bundle.js'])('%s: every relative import, require and URL names a file that is there', (file) => {
    const targets = relativeImports(file);
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) expect(existsSync(t), `${file} refers to ${t}`).toBe(true);
  });

  it('the entry loads errors.js and the hostlist parser as modules, not copies of them', () => {
    for (const f of ['index.js', 'index.bundle.js', 'agent/worker.js', 'agent/worker.bundle.js']) {
      const text = readFileSync(resolve(dist, f), 'utf8');
      expect(text).not.toMatch(/class SlurmpoolError\b/);
      expect(text).not.toMatch(/class SlurmParseError\b/);
    }
    expect(entry.OptionError).toBe(errors.OptionError);
    expect(entry.SlurmpoolError).toBe(errors.SlurmpoolError);
    expect(entry.SlurmParseError).toBe(SlurmParseError);
    let thrown: unknown;
    try {
      entry.expandHostlist('n[1-');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(SlurmParseError);
    expect(thrown).toBeInstanceOf(errors.SlurmpoolError);
  });

  it('errors thrown by the bundled pool are the classes of dist/errors.js; its worker runs tasks', async () => {
    await expect(entry.Pool.open({ module: new URL('./fixtures/tasks.mjs', import.meta.url), workers: 0 })).rejects.toBeInstanceOf(errors.OptionError);
    const pool = await entry.Pool.open({ module: new URL('../bench/tasks.mjs', import.meta.url), workers: 2 });
    try {
      expect(await pool.map('identity', [1, 2, 3])).toEqual([1, 2, 3]);
    } finally {
      await pool.close();
    }
    await expect(pool.map('identity', [1])).rejects.toBeInstanceOf(errors.PoolClosedError);
  });
});
