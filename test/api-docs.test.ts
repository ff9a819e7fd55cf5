// docs/api.md names every exported symbol, Pool member, option key, error code and record field.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAP_OPTION_KEYS, POOL_OPTION_KEYS, RECORD_OPTION_KEYS, SSH_OPTION_KEYS } from '../dist/options.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const doc = read('docs/api.md');

/** Names in `code` in the doc. */
const mentioned = new Set<string>();
const words = (text: string) => {
  for (const w of text.matchAll(/[A-Za-z_$][\w$]*/g)) mentioned.add(w[0]);
};
for (const m of doc.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)) words(m[1]!);
for (const m of doc.replace(/^```[a-z]*\n[\s\S]*?^```$/gm, '').matchAll(/`([^`\n]+)`/g)) words(m[1]!);

function missing(names: Iterable<string>): string[] {
  return [...new Set(names)].filter((n) => !mentioned.has(n)).sort();
}

/** Every name an entry module exports, values and types. */
function exportsOf(path: string): string[] {
  const src = read(path);
  const names: string[] = [];
  for (const m of src.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      if (name) names.push(name);
    }
  }
  for (const m of src.matchAll(/^export\s+(?:async\s+)?(?:function|class|const|interface|type)\s+([A-Za-z_$][\w$]*)/gm)) names.push(m[1]!);
  return names;
}

/** Field names of an exported interface in a source file. */
function fieldsOf(path: string, name: string): string[] {
  const src = read(path);
  const start = src.indexOf(`export interface ${name} `);
  if (start < 0) throw new Error(`no interface ${name} in ${path}`);
  const body = src.slice(src.indexOf('{', start) + 1, src.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}(?:readonly )?([A-Za-z_$][\w$]*)\??:/gm)].map((m) => m[1]!);
}

describe('docs/api.md', () => {
  it('names every export of slurmpool and slurmpool/report', () => {
    const names = [...exportsOf('src/index.ts'), ...exportsOf('src/report/index.ts')];
    expect(names.length).toBeGreaterThan(40);
    expect(missing(names)).toEqual([]);
  });

  it('names every public member of Pool', () => {
    const dts = readFileSync(new URL('../dist/pool.d.ts', import.meta.url), 'utf8');
    const cls = dts.slice(dts.indexOf('export declare class Pool'));
    const members = [...cls.matchAll(/^ {4}(?:static |readonly |get |async )*([A-Za-z_$][\w$]*)[(<:]/gm)].map((m) => m[1]!);
    const privates = new Set([...cls.matchAll(/^ {4}private (?:readonly )?([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]!));
    const pub = members.filter((m) => !privates.has(m) && m !== 'constructor');
    expect(pub).toContain('imapUnordered');
    expect(missing(pub)).toEqual([]);
    expect(doc).toContain('[Symbol.asyncDispose]');
  });

  it('names every option key', () => {
    expect(missing([...POOL_OPTION_KEYS, ...SSH_OPTION_KEYS, ...MAP_OPTION_KEYS, ...RECORD_OPTION_KEYS])).toEqual([]);
  });

  it('names every error code and error class field', () => {
    const union = /export type ErrorCode =([^;]*);/.exec(read('src/errors.ts'))![1]!;
    const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
    expect(codes).toContain('EOPTION');
    expect(missing(codes)).toEqual([]);
    expect(missing(fieldsOf('src/errors.ts', 'TaskErrorDetails'))).toEqual([]);
    expect(missing(['cause', 'variable', 'value', 'reason'])).toEqual([]);
  });

  it('names every field of the records', () => {
    const fields = [
      ...fieldsOf('src/ordering.ts', 'TaskRecord'),
      ...fieldsOf('src/errors.ts', 'ErrorRecord'),
      ...fieldsOf('src/agent/shell.ts', 'CommandResult'),
      ...fieldsOf('src/pool.ts', 'NodeInfo'),
      ...fieldsOf('src/pool.ts', 'NodeStats'),
      ...fieldsOf('src/slurm/allocation.ts', 'Allocation'),
      ...fieldsOf('src/options.ts', 'EmulateSpec'),
      ...fieldsOf('src/shared.ts', 'SharedRef'),
    ];
    expect(fields).toContain('attempts');
    expect(missing(fields)).toEqual([]);
  });
});
