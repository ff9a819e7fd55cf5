// slurmpool run 'CMD {}' ::: a b c: templates expanded as GNU parallel expands them (checked against
// GNU parallel's own --dry-run of the same inputs), --dry-run, real runs whose records keep the
// expanded command, and --resume of a template run.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTemplate, quoteArg, splitTemplateArgv } from '../../dist/cli/template.js';
import { COMMON_OPTIONS } from '../../dist/cli/options.js';
import { cli, exactlyOnce, records, tmp } from './helpers.js';

const t = tmp('slurmpool-template-');
afterAll(() => t.done());

/** GNU parallel, which CI installs (scripts/ci/install-deps.sh): required there, its tests skipped elsewhere without it. */
const PARALLEL = ['/usr/bin/parallel', '/usr/local/bin/parallel'].find((p) => existsSync(p)) ?? null;
if (!PARALLEL && process.env.CI === 'true') throw new Error('GNU parallel is not installed: scripts/ci/install-deps.sh installs it');

/** GNU parallel's own expansion: its --dry-run, in job order (without the final newline, as execa gives ours). */
function gnuDryRun(args: string[]): string {
  return execFileSync(PARALLEL!, ['--will-cite', '-k', '--dry-run', ...args], { encoding: 'utf8', cwd: t.dir, env: { ...process.env, HOME: t.dir } }).replace(/\n$/, '');
}

async function ourDryRun(args: string[]): Promise<string> {
  const r = await cli(['run', '--dry-run', ...args], { cwd: t.dir });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  expect(String(r.stderr)).toBe('');
  return String(r.stdout);
}

describe('templates: expansion', () => {
  it('quotes as GNU parallel: bare for [-_.+a-zA-Z0-9/], else single quotes with \'"\'"\' for quotes', () => {
    expect(quoteArg('a.b/c-d_e+f')).toBe('a.b/c-d_e+f');
    expect(quoteArg('')).toBe("''");
    expect(quoteArg('a b')).toBe("'a b'");
    expect(quoteArg("it's")).toBe(`'it'"'"'s'`);
    expect(quoteArg("'")).toBe(`"'"`);
    expect(quoteArg('$HOME')).toBe("'$HOME'");
    expect(quoteArg('`id`;rm')).toBe("'`id`;rm'");
  });

  it('replacement strings, one by one', () => {
    const x = (tpl: string, args: string[], seq = 1) => compileTemplate(tpl).expand(args, seq);
    const a = ['dir/sub/file.tar.gz'];
    expect(x('c {}', a)).toBe('c dir/sub/file.tar.gz');
    expect(x('c {.}', a)).toBe('c dir/sub/file.tar');
    expect(x('c {/}', a)).toBe('c file.tar.gz');
    expect(x('c {//}', a)).toBe('c dir/sub');
    expect(x('c {/.}', a)).toBe('c file.tar');
    expect(x('c {#}', a, 42)).toBe('c 42');
    expect(x('c {1} {2} {3}', ['a b', 'x.y'])).toBe("c 'a b' x.y ");
    expect(x('c {2.} {2/} {2//} {2/.}', ['a', 'd/b.c'])).toBe('c d/b b.c d b');
    expect(x('c', ['a b', 'c'])).toBe("c 'a b' c"); // no replacement string: appended
    expect(x('', ['echo a'])).toBe('echo a'); // no command: the arguments are the commands
    expect(x('c {x} {} {%}', ['v'])).toBe('c {x} v {%}');
  });

  it('splits options, command words and sources: words after the command are its own', () => {
    const s = splitTemplateArgv(['run', '-c', '2', '--json', '-o', 'r.jsonl', 'grep', '-n', '{}', ':::', 'a', '-x', '::::', 'f.txt', ':::+', 'b'], COMMON_OPTIONS);
    expect(s).toEqual({ argv: ['run', '-c', '2', '--json', '-o', 'r.jsonl'], template: { command: 'grep -n {}', groups: [{ sep: ':::', words: ['a', '-x'] }, { sep: '::::', words: ['f.txt'] }, { sep: ':::+', words: ['b'] }] } });
    expect(splitTemplateArgv(['run', '--', '-weird', '{}', ':::', 'a'], COMMON_OPTIONS)!.template.command).toBe('-weird {}');
    expect(splitTemplateArgv(['run', '-qc', '4', '--workers=2', 'echo', ':::', 'a'], COMMON_OPTIONS)).toMatchObject({ argv: ['run', '-qc', '4', '--workers=2'], template: { command: 'echo' } });
    expect(splitTemplateArgv(['run', 'tasks.txt'], COMMON_OPTIONS)).toBeNull();
    expect(splitTemplateArgv(['map', 'm.mjs', 'f', ':::', 'a'], COMMON_OPTIONS)).toBeNull();
  });
});

describe.skipIf(!PARALLEL)('templates: the same commands as GNU parallel --dry-run', () => {
  const argsFile = t.write('args.txt', 'one\nwith space\n\nit\'s\n$HOME\nx/y.tar.gz\n');
  const cases: [string, string[]][] = [
    ['each replacement string', ['echo {} {.} {/} {//} {/.} {#}', ':::', 'dir/sub/file.txt', 'file', 'noext/', '.hidden', 'a.', '/a', 'a/b/', '']],
    ['quoting: spaces, quotes, $, backquotes, globs, non-ASCII', ['printf "%s\\n" {}', ':::', 'a b', "it's", '"dq"', '$HOME', '`id`', '*', 'é', 'a=b', '-x', "'", "'a", "a'"]],
    ['several sources: every combination, the first slowest', ['echo {1}-{2}-{3} {}', ':::', 'a', 'b c', ':::', '1', '2', ':::', 'x', 'y']],
    ['positional edits', ['echo {2.} {2/} {2//} {2/.} {1}', ':::', 'p', 'q', ':::', 'd/b.c', 'e.f']],
    [':::: a file of arguments, one a line (blank lines too), with a ::: source', ['echo {1} {2}', '::::', argsFile, ':::', 'z', 'w']],
    ['no replacement string: the arguments appended', ['echo', ':::', 'a b', 'c', ':::', '1', '2']],
    [':::+ links a source to the one before', ['echo {1} {2}', ':::', 'a', 'b', 'c', ':::+', '1', '2', '3']],
    [':::+ after a product', ['echo {1} {2} {3}', ':::', 'a', 'b', ':::', 'x', 'y', ':::+', '1', '2']],
    ['::::+ links a file', ['echo {1} {2}', '::::', argsFile, '::::+', argsFile]],
    ['several command words', ['echo', 'x{}y', '{}{}', ':::', 'a b']],
  ];
  for (const [what, args] of cases) {
    it(what, async () => {
      expect(await ourDryRun(args)).toBe(gnuDryRun(args));
    });
  }
});

describe('templates: runs', () => {
  it('--dry-run prints a task file\'s commands (not blank lines or comments) and runs nothing', async () => {
    const tasks = t.write('dry.txt', '# c\ntouch ran1\n\ntouch ran2\n');
    const r = await cli(['run', '--dry-run', tasks, '-o', t.path('dry.jsonl')], { cwd: t.dir });
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toBe('touch ran1\ntouch ran2');
    expect(existsSync(t.path('ran1'))).toBe(false);
    expect(existsSync(t.path('dry.jsonl'))).toBe(false);
  });

  it('runs each expanded command once across emulated nodes; records keep the expanded command; arguments reach the command intact', async () => {
    const out = t.path('emu.jsonl');
    const args = ['a b', "it's", '$HOME', '`echo no`', 'x;y'];
    const r = await cli(['run', '--emulate', '2x2', '-o', out, 'printf "%s|%s" {} {#}', ':::', ...args], { cwd: t.dir });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const recs = records(out).sort((a, b) => a.index - b.index);
    expect(exactlyOnce(recs, args.length)).toBe(true);
    expect(recs.map((x) => x.stdout)).toEqual(args.map((a, i) => `${a}|${i + 1}`));
    expect(recs[0]!.command).toBe(`printf "%s|%s" 'a b' 1`);
    expect(recs.every((x) => x.line === undefined)).toBe(true);
    expect(new Set(recs.map((x) => x.node)).size).toBeGreaterThan(0);
  });

  it('arguments from :::: FILE and from standard input (:::: -)', async () => {
    const f = t.write('names.txt', 'alpha\nbeta gamma\n');
    const r = await cli(['run', '--json', '--local', 'echo {1}:{2}', '::::', f, '::::', '-'], { cwd: t.dir, input: 'x\ny\n' });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(records(String(r.stdout), true).map((x) => String(x.stdout).trim()).sort()).toEqual(['alpha:x', 'alpha:y', 'beta gamma:x', 'beta gamma:y']);
  });

  it('refuses what it cannot run, before running anything', async () => {
    const empty = await cli(['run', 'echo {}', ':::'], { cwd: t.dir });
    expect(empty.exitCode).toBe(2);
    expect(String(empty.stderr)).toMatch(/::: is followed by no argument/);
    const missing = await cli(['run', 'echo {}', '::::', t.path('nope.txt')], { cwd: t.dir });
    expect(missing.exitCode).toBe(2);
    expect(String(missing.stderr)).toMatch(/argument file .*nope\.txt \(after ::::\) does not exist/);
    const none = await cli(['run'], { cwd: t.dir });
    expect(none.exitCode).toBe(2);
    expect(String(none.stderr)).toMatch(/give a task file/);
  });

  it('--resume of a template run runs only what did not succeed, with the same expanded commands; a changed template is refused', async () => {
    const out = t.path('resume.jsonl');
    // Fails for "b" until the marker exists.
    const tpl = `if [ {} = b ] && [ ! -e ${t.path('marker-b')} ]; then echo no b >&2; exit 5; fi; echo {}`;
    const first = await cli(['run', '--emulate', '2x1', '-o', out, tpl, ':::', 'a', 'b', 'c'], { cwd: t.dir });
    expect(first.exitCode).toBe(1);
    expect(String(first.stderr)).toMatch(/task 2 failed: exit 5 on emu\d: no b\n/);
    expect(String(first.stderr)).toMatch(/failed tasks: 2\n/);
    // The way to continue puts --resume before the command, where it is an option.
    expect(String(first.stderr)).toMatch(/to run the failed tasks again: slurmpool run --resume --emulate 2x1 -o /);
    const failed = records(out).find((x) => x.index === 1)!;
    expect(failed).toMatchObject({ ok: false, exitCode: 5, attempts: 1 });
    execFileSync('touch', [t.path('marker-b')]);
    const again = await cli(['run', '--resume', '--emulate', '2x1', '-o', out, tpl, ':::', 'a', 'b', 'c'], { cwd: t.dir });
    expect(again.exitCode, String(again.stderr)).toBe(0);
    const recs = records(out);
    // The failed record is replaced by the new one; the others are kept, not run again.
    expect(exactlyOnce(recs, 3)).toBe(true);
    expect(recs.every((x) => x.ok)).toBe(true);
    expect(recs.find((x) => x.index === 1)!.command).toBe(failed.command);
    expect(String(again.stdout)).toBe('');
    expect(String(again.stderr)).toMatch(/2 task\(s\) done before are skipped, 1 that failed run again/);
    const changed = await cli(['run', '--resume', '--emulate', '2x1', '-o', out, tpl, ':::', 'a', 'b', 'd'], { cwd: t.dir });
    expect(changed.exitCode).toBe(2);
    expect(String(changed.stderr)).toMatch(/cannot resume: .*task 3 ran `if \[ c = b \].*`, but the template .* makes `if \[ d = b \].*` now: the template or its arguments changed/);
  });
});
