// Task module formats: ES modules, CommonJS (however module.exports is built), TypeScript where Node strips types.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OptionError, Pool } from '../dist/index.js';

const dir = mkdtempSync(join(tmpdir(), 'slurmpool-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const typeStripping = ['strip', 'transform'].includes(String((process.features as { typescript?: unknown }).typescript));

describe('task module formats', () => {
  it('CommonJS: exports.name = …, module.exports = { name }, and module.exports built any other way', async () => {
    for (const m of [
      file('a.cjs', 'exports.square = (x) => x * x;\n'),
      file('b.cjs', 'const square = (x) => x * x;\nmodule.exports = { square };\n'),
      file('c.cjs', 'module.exports = { square: (x) => x * x };\n'),
      file('d.cjs', 'function make() { return { square: (x) => x * x }; }\nmodule.exports = make();\n'),
    ]) {
      await using pool = await Pool.open({ module: m, workers: 1 });
      expect(await pool.map('square', [3])).toEqual([9]);
    }
  });

  it.runIf(typeStripping)('TypeScript, where this Node strips types', async () => {
    await using pool = await Pool.open({ module: file('t.ts', 'export const square = (x: number): number => x * x;\n'), workers: 1 });
    expect(await pool.map('square', [3])).toEqual([9]);
  });

  it.skipIf(typeStripping)('TypeScript on a Node without type stripping: a clear error naming the versions', async () => {
    const m = file('t.ts', 'export const square = (x: number): number => x * x;\n');
    await expect(Pool.open({ module: m, workers: 1 })).rejects.toThrow(OptionError);
    await expect(Pool.open({ module: m, workers: 1 })).rejects.toThrow(`is TypeScript, and this Node (${process.version}) cannot run .ts files: type stripping needs Node ≥ 22.18 or ≥ 23.6`);
  });
});
