// slurmpool map MODULE EXPORT: apply an export of a module to JSON inputs, records as JSON Lines.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sha256File, type MapWork } from '../results/header.js';
import { resolveModule } from '../options.js';
import { OptionError } from '../errors.js';
import { mapRecord } from '../results/record.js';
import { execute, type Plan } from './engine.js';
import { CliError } from './errors.js';
import { parseJsonLines, parseRange, readItems, readStdin, type Items } from './input.js';
import { resolveCommon } from './options.js';
import type { Renderer } from './render.js';

/** Import the task module here, once, to check that the export exists and is a function. */
async function checkExport(path: string, name: string, shown: string): Promise<void> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new CliError(`cannot import ${shown}: ${(e as Error).name}: ${(e as Error).message}`);
  }
  const v = mod[name];
  if (typeof v === 'function') return;
  const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
  if (v === undefined) throw new CliError(`${shown} has no export named '${name}' (its function exports: ${fns.join(', ') || 'none'})`);
  throw new CliError(`export '${name}' of ${shown} is not a function (it is ${typeof v})`);
}

/** Apply MODULE's EXPORT to every input item; the exit status of the whole run. */
export async function mapModule(args: Record<string, unknown>, r: Renderer, argv: readonly string[]): Promise<number> {
  const c = resolveCommon(args);
  const shown = String(args.module);
  const fn = String(args.export);
  let path: string;
  try {
    path = resolveModule(shown).path;
  } catch (e) {
    throw new CliError(e instanceof OptionError ? e.message.replace(/^options\.module /, 'module ') : String(e));
  }
  const input = args.input === undefined ? undefined : String(args.input);
  const range = args.range === undefined ? undefined : String(args.range);
  if (input !== undefined && range !== undefined) throw new CliError('--input and --range cannot be used together');
  let items: Items | null = null;
  let total: number;
  let item: (i: number) => unknown;
  let inputId: MapWork['input'];
  if (range !== undefined) {
    const rg = parseRange(range);
    inputId = { range: `${rg.start}:${rg.end}:${rg.step}` };
    total = rg.length;
    item = (i) => rg.start + i * rg.step;
  } else {
    if (input === undefined && process.stdin.isTTY) {
      throw new CliError('map needs items: --input FILE (JSON Lines), --range START:END, or JSON Lines on standard input');
    }
    items = input === undefined ? parseJsonLines(await readStdin(), 'standard input') : await readItems(input);
    const its = items;
    inputId = input === undefined || input === '-' ? { stdin: true, sha256: its.sha256 } : { file: resolve(input), sha256: its.sha256 };
    total = its.items.length;
    item = (i) => its.items[i];
  }
  const star = args.star === true;
  if (star) {
    if (!items) throw new CliError('--star needs --input or standard input: each item is an array of arguments');
    const bad = items.items.findIndex((x) => !Array.isArray(x));
    if (bad >= 0) throw new CliError(`${items.name} line ${items.lines[bad]} is not an array; with --star each item is the array of arguments`);
  }
  // A Python module is imported by the interpreters only: the pool refuses a missing function before any work starts.
  if (!/\.py$/i.test(path)) await checkExport(path, fn, shown);
  const plan: Plan = {
    command: 'map',
    kind: 'call',
    fn,
    module: path,
    star,
    total,
    item,
    record: (i, rec) => mapRecord(i, rec),
    ...(items ? { place: (i: number) => ({ unit: 'line' as const, n: items!.lines[i]! }) } : {}),
    check: (saved) => (saved.index >= total ? `it records task ${saved.index}, but the input has only ${total} items now` : null),
    recordsToStdout: !c.output,
    work: { module: path, moduleSha256: await sha256File(path), fn, star, input: inputId },
  };
  return execute(plan, c, r, argv);
}
