// Process lifetimes: no agent outlives its coordinator; no thread outlives its pool.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** Alive and not a zombie (PID 1 here reaps late; a zombie is gone for our purpose). */
function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

describe('coordinator gone', () => {
  it('agents exit within a bounded time when their coordinator is killed with SIGKILL, leaving no process behind', async () => {
    const child = spawn(process.execPath, [new URL('./fixtures/coordinator-then-die.mjs', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const line = buf.split('\n').find((l) => l.startsWith('['));
        if (line) resolve(JSON.parse(line) as number[]);
      });
      child.on('exit', () => reject(new Error(`coordinator exited early: ${buf}`)));
      setTimeout(() => reject(new Error('no pids within 30 s')), 30_000).unref();
    });
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
  });
});
