// An idle pool does not keep the process alive: a script that forgets close() exits once its work is done.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runScript as run } from './helpers/script.js';

const index = new URL('../dist/index.js', import.meta.url).href;
const tasks = new URL('./fixtures/tasks.mjs', import.meta.url).href;

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Run an ES module script that imports Pool and the tasks; it must exit by itself within `bound` ms. */
function runScript(body: string, bound = 12_000): ReturnType<typeof run> {
  return run(`import { Pool } from ${JSON.stringify(index)};\nconst tasks = new URL(${JSON.stringify(tasks)});\n${body}`, bound, 'pool kept the process alive');
}

describe('an idle pool does not keep the process alive', () => {
  it('local mode: map, no close(), the script exits', async () => {
    const r = await runScript(`const pool = await Pool.open({ module: tasks, workers: 2 });\nconsole.log(JSON.stringify(await pool.map('square', [1, 2, 3])));`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('[1,4,9]');
  });

  it('local mode: work after an idle spell, imap, share and a replaced worker, no close()', async () => {
    const r = await runScript(
      [
        `const pool = await Pool.open({ module: tasks, workers: 1, maxTasksPerWorker: 1 });`,
        `const a = await pool.map('square', [2], { chunksize: 1 });`,
        `await new Promise((res) => setTimeout(res, 100));`,
        `const ref = await pool.share(new Uint8Array(8));`,
        `const b = [];`,
        `for await (const x of pool.imap('len', [ref, ref], { chunksize: 1 })) b.push(x);`,
        `console.log(JSON.stringify([a, b]));`,
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('[[4],[8,8]]');
  });

  it('emulate mode: map, no close(), the script exits and its agents follow', async () => {
    const r = await runScript(
      `const pool = await Pool.open({ module: tasks, emulate: '2x1', log: false });\nconsole.log(JSON.stringify(pool.nodes.map((n) => n.pid)));\nconsole.log(JSON.stringify(await pool.map('square', [1, 2, 3, 4])));`,
    );
    expect(r.code).toBe(0);
    const [pids, result] = r.stdout.trim().split('\n');
    expect(result).toBe('[1,4,9,16]');
    const agents = JSON.parse(pids!) as number[];
    expect(agents).toHaveLength(2);
    for (let i = 0; i < 300 && agents.some(alive); i++) await new Promise((res) => setTimeout(res, 100));
    expect(agents.filter(alive)).toEqual([]);
  });

  it('work in flight keeps it alive: a map awaited with nothing else on the event loop finishes', async () => {
    const r = await runScript(`const pool = await Pool.open({ module: tasks, workers: 1 });\nconsole.log(JSON.stringify(await pool.map('sleepThen', [{ ms: 300, v: 'done' }])));\nawait pool.close();\nconsole.log('closed');`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('["done"]\nclosed');
  });
});
