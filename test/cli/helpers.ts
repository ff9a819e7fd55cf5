// Run the CLI as a user would: `node dist/cli/main.js …` in a child process, with a temporary folder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options, type ResultPromise } from 'execa';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');
export const FIXTURES = join(ROOT, 'test/fixtures/cli');

/** An environment without the SLURM and SLURMPOOL variables of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLURM') && k !== 'CI') env[k] = v;
  return { ...env, ...extra };
}

/** Start `slurmpool ARGS…`; never rejects for a non-zero exit. */
export function cli(args: string[], opts: Options = {}): ResultPromise<Options & { reject: false }> {
  return execa(process.execPath, [CLI, ...args], { reject: false, env: cleanEnv(), extendEnv: false, timeout: 120_000, ...opts, all: false } as Options & { reject: false }) as ResultPromise<Options & { reject: false }>;
}

/** A fresh temporary folder, removed by the returned function. */
export function tmp(prefix = 'slurmpool-cli-'): { dir: string; path: (name: string) => string; write: (name: string, text: string) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    path: (name) => join(dir, name),
    write: (name, text) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type Rec = Record<string, unknown> & { index: number; ok: boolean };

/** Parsed lines of a JSON Lines file or text: run headers (`{"slurmpool":{…}}`) and records. */
function parsed(fileOrText: string, isText: boolean): Record<string, unknown>[] {
  const text = isText ? fileOrText : readFileSync(fileOrText, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Records of a JSON Lines file or text (run headers left out). */
export function records(fileOrText: string, isText = false): Rec[] {
  return parsed(fileOrText, isText).filter((o) => !('slurmpool' in o)) as Rec[];
}

/** The run headers of a results file, in file order. */
export function headers(file: string): Record<string, unknown>[] {
  return parsed(file, false)
    .filter((o) => 'slurmpool' in o)
    .map((o) => o.slurmpool as Record<string, unknown>);
}

/** Records in a results file now (0 when it does not exist yet); a torn last line is not counted. */
export function recordCount(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.startsWith('{"index"')).length;
}

/** The JSON summary line of --json output (on stdout or stderr). */
export function summaryOf(text: string): Record<string, unknown> {
  const line = text.split('\n').find((l) => l.includes('"event":"summary"'));
  if (!line) throw new Error(`no summary in:\n${text}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Wait until `check` is true, polling every 50 ms, or fail after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Indices 0..n-1 each exactly once. */
export function exactlyOnce(recs: Rec[], n: number): boolean {
  const ix = recs.map((r) => r.index).sort((a, b) => a - b);
  return ix.length === n && ix.every((v, i) => v === i);
}

/**
 * A small tmpfs mounted for this test file (needs root), unmounted after it: `options` such as
 * 'size=48k' or 'ro,size=64k'. Where it cannot be mounted the tests are skipped with the reason,
 * except under CI=true, where that is a failure.
 */
export function tmpfsForFile(prefix: string, options: string): { dir: string | null; why: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let mounted: { dir: string | null; why: string };
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    mounted = { dir, why: '' };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const why = `cannot mount a tmpfs (${options}; root needed): ${(e as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(why);
    mounted = { dir: null, why };
  }
  afterAll(() => {
    if (mounted.dir) {
      execFileSync('umount', [mounted.dir]);
      rmSync(mounted.dir, { recursive: true, force: true });
    }
  });
  return mounted;
}
