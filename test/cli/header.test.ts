// The run header of every results file, and --resume refusing to continue different work.
import { createHash } from 'node:crypto';
import { copyFileSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cleanEnv, exactlyOnce, FIXTURES, headers, records, tmp } from './helpers.js';

const t = tmp();
afterAll(() => t.done());

describe('the run header', () => {
  it('run: the first line says what ran (mode, job, command, tasks, kind, task file hash); a resumed run appends its own', async () => {
    const tasks = t.write('h.txt', 'echo a\necho b\nfalse\n');
    const out = t.path('h.jsonl');
    const r = await cli(['run', tasks, '-o', out, '--local', '--workers', '2'], { env: cleanEnv({ SLURM_JOB_ID: '515' }) });
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const first = JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!) as { slurmpool: Record<string, unknown> };
    expect(first.slurmpool).toMatchObject({
      version: 1,
      run: 'run',
      kind: 'shell',
      mode: 'local',
      jobId: '515',
      tasks: 3,
      command: `slurmpool run ${tasks} -o ${out} --local --workers 2`,
      work: { taskFile: tasks, sha256: createHash('sha256').update('echo a\necho b\nfalse\n').digest('hex') },
    });
    const again = await cli(['run', tasks, '-o', out, '--resume', '--local']);
    expect(again.exitCode).toBe(1);
    const hs = headers(out);
    expect(hs).toHaveLength(2);
    expect(hs[1]).toMatchObject({ run: 'run', tasks: 3, command: `slurmpool run ${tasks} -o ${out} --resume --local` });
    expect(exactlyOnce(records(out), 3)).toBe(true);
  });

  it('map: the module, its hash, the export and the input (range or file hash)', async () => {
    const out = t.path('hm.jsonl');
    const r = await cli(['map', join(FIXTURES, 'tasks.mjs'), 'square', '--range', '0:4', '-o', out]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(headers(out)[0]).toMatchObject({
      run: 'map',
      kind: 'call',
      fn: 'square',
      tasks: 4,
      work: { module: join(FIXTURES, 'tasks.mjs'), moduleSha256: expect.stringMatching(/^[0-9a-f]{64}$/), fn: 'square', star: false, input: { range: '0:4:1' } },
    });
  });
});

describe('--resume checks what it resumes', () => {
  it('run: a task file changed past the recorded tasks is refused, naming the file and both hashes', async () => {
    const tasks = t.write('grow.txt', 'echo a\necho b\n');
    const out = t.path('grow.jsonl');
    expect((await cli(['run', tasks, '-o', out])).exitCode).toBe(0);
    appendFileSync(tasks, 'echo c\n');
    const r = await cli(['run', tasks, '-o', out, '--resume']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/cannot resume: the work changed since grow\.jsonl was started \(header at grow\.jsonl line 1\): the task file's content: .*grow\.txt had sha256 [0-9a-f]{12}…, .*grow\.txt has [0-9a-f]{12}… now/);
    expect(records(out)).toHaveLength(2);
  });

  it('run --resume on a map results file, and map --resume on a run results file, are refused', async () => {
    const mapOut = t.path('was-map.jsonl');
    expect((await cli(['map', join(FIXTURES, 'tasks.mjs'), 'square', '--range', '0:2', '-o', mapOut])).exitCode).toBe(0);
    const r1 = await cli(['run', t.write('x.txt', 'echo x\n'), '-o', mapOut, '--resume']);
    expect(r1.exitCode).toBe(2);
    expect(String(r1.stderr)).toContain('cannot resume: was-map.jsonl was written by `slurmpool map` (was-map.jsonl line 1); this is `slurmpool run`');
    const runOut = t.path('was-run.jsonl');
    expect((await cli(['run', t.path('x.txt'), '-o', runOut])).exitCode).toBe(0);
    const r2 = await cli(['map', join(FIXTURES, 'tasks.mjs'), 'square', '--range', '0:1', '-o', runOut, '--resume']);
    expect(r2.exitCode).toBe(2);
    expect(String(r2.stderr)).toContain('cannot resume: was-run.jsonl was written by `slurmpool run` (was-run.jsonl line 1); this is `slurmpool map`');
    expect(records(runOut)).toHaveLength(1);
  });

  it('map: another export, range, input content, --star or module content is refused, naming each difference', async () => {
    const mod = join(t.dir, 'mod.mjs');
    copyFileSync(join(FIXTURES, 'tasks.mjs'), mod);
    const out = t.path('m.jsonl');
    expect((await cli(['map', mod, 'square', '--range', '0:3', '-o', out])).exitCode).toBe(0);
    const fn = await cli(['map', mod, 'slow', '--range', '0:3', '-o', out, '--resume']);
    expect(fn.exitCode).toBe(2);
    expect(String(fn.stderr)).toContain("the export: 'square' then, 'slow' now");
    const range = await cli(['map', mod, 'square', '--range', '0:4', '-o', out, '--resume']);
    expect(range.exitCode).toBe(2);
    expect(String(range.stderr)).toContain('the input: --range 0:3:1 then, --range 0:4:1 now');
    const same = await cli(['map', mod, 'square', '--range', '0:3:1', '-o', out, '--resume']);
    expect(same.exitCode, String(same.stderr)).toBe(0);
    appendFileSync(mod, '// changed\n');
    const changed = await cli(['map', mod, 'square', '--range', '0:3', '-o', out, '--resume']);
    expect(changed.exitCode).toBe(2);
    expect(String(changed.stderr)).toMatch(/the module's content: .*mod\.mjs had sha256 [0-9a-f]{12}…, has [0-9a-f]{12}… now/);

    const input = t.write('in.jsonl', '[1,2]\n[3,4]\n');
    const out2 = t.path('m2.jsonl');
    expect((await cli(['map', mod, 'add', '--star', '--input', input, '-o', out2])).exitCode).toBe(0);
    writeFileSync(input, '[1,2]\n[3,5]\n');
    const inp = await cli(['map', mod, 'add', '--star', '--input', input, '-o', out2, '--resume']);
    expect(inp.exitCode).toBe(2);
    expect(String(inp.stderr)).toMatch(/the input: --input .*in\.jsonl \(sha256 [0-9a-f]{12}…\) then, --input .*in\.jsonl \(sha256 [0-9a-f]{12}…\) now/);
    const star = await cli(['map', mod, 'square', '--input', t.write('plain.jsonl', '1\n2\n'), '-o', out2, '--resume']);
    expect(star.exitCode).toBe(2);
    expect(String(star.stderr)).toContain("the export: 'add' then, 'square' now; --star: on then, off now; the input:");
  });

  it('a results file without a header (an older version) is still resumed, its records checked', async () => {
    const tasks = t.write('old.txt', 'echo a\necho b\n');
    const out = t.write('old.jsonl', `${JSON.stringify({ index: 0, ok: true, command: 'echo a', node: hostname(), worker: 0, started: 1, ended: 2, attempts: 1 })}\n`);
    const r = await cli(['run', tasks, '-o', out, '--resume']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(exactlyOnce(records(out), 2)).toBe(true);
  });
});
