// Run the CLI as a user would: `node dist/cli/main.js …` in a child process, with a temporary folder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** Records of a JSON Lines file or text. */
export function records(fileOrText: string, isText = false): Rec[] {
  const text = isText ? fileOrText : readFileSync(fileOrText, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Rec);
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
