// SSH launch against a real OpenSSH server on loopback (scripts/ssh/test-sshd.sh).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pool } from '../dist/index.js';

const root = resolve(import.meta.dirname, '..');
const tasks = new URL('./fixtures/tasks.mjs', import.meta.url);

function sshd(): { skip: boolean; why: string; env: Record<string, string> } {
  try {
    const out = execFileSync('bash', [join(root, 'scripts/ssh/test-sshd.sh'), 'env'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const env = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
    execFileSync('ssh', ['-i', env.SLURMPOOL_SSHD_KEY!, '-o', `UserKnownHostsFile=${env.SLURMPOOL_SSHD_KNOWN_HOSTS}`, '-o', 'BatchMode=yes', '-p', env.SLURMPOOL_SSHD_PORT!, 'root@127.0.0.1', 'true'], { timeout: 10_000, stdio: 'ignore' });
    return { skip: false, why: '', env };
  } catch (e) {
    const why = `test sshd not available (bash scripts/ssh/test-sshd.sh up): ${(e as Error).message.split('\n')[0]}`;
    if (process.env.CI === 'true') throw new Error(why);
    return { skip: true, why, env: {} };
  }
}

const s = sshd();
const ssh = () => ({ port: Number(s.env.SLURMPOOL_SSHD_PORT), identityFile: s.env.SLURMPOOL_SSHD_KEY!, knownHosts: s.env.SLURMPOOL_SSHD_KNOWN_HOSTS!, user: 'root' });

function commandLines(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        return '';
      }
    });
}

describe.skipIf(s.skip)(`SSH launch ${s.why}`, () => {
  it('maps across two SSH hosts; the secret is on no command line', async () => {
    await using pool = await Pool.open({ module: tasks, hosts: ['127.0.0.1:1', '127.0.0.2:1'], ssh: ssh(), bind: '127.0.0.1', log: false });
    expect(pool.mode).toBe('ssh');
    expect(pool.nodes.map((n) => n.node).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    const nodes = await pool.map<string>('envOf', Array(8).fill('SLURMPOOL_NODE'), { chunksize: 1 });
    expect(new Set(nodes)).toEqual(new Set(['127.0.0.1', '127.0.0.2']));
    expect(await pool.map('square', [1, 2, 3])).toEqual([1, 4, 9]);
    const agents = commandLines().filter((c) => c.includes('main.js agent') || c.includes('SLURMPOOL_COORDINATOR'));
    expect(agents.length).toBeGreaterThanOrEqual(2);
    for (const c of agents) expect(c).not.toMatch(/[0-9a-f]{64}/);
  });

  it('taskEnv reaches tasks on SSH hosts', async () => {
    await using pool = await Pool.open({ module: tasks, hosts: ['127.0.0.2'], ssh: ssh(), bind: '127.0.0.1', log: false, taskEnv: { SLURMPOOL_TEST_VAR: 'over-ssh' } });
    expect(await pool.map('envOf', ['SLURMPOOL_TEST_VAR'])).toEqual(['over-ssh']);
  });

  it('an unknown host key is refused with how to trust it; acceptNewHostKeys adds it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-kh-'));
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, '');
    await expect(Pool.open({ module: tasks, hosts: ['127.0.0.1'], ssh: { ...ssh(), knownHosts: kh }, bind: '127.0.0.1', log: false })).rejects.toThrow(
      /127\.0\.0\.1: host key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) is not in .*known_hosts; refusing\. To trust it.*ssh-keyscan -p \d+ 127\.0\.0\.1/,
    );
    await using pool = await Pool.open({ module: tasks, hosts: ['127.0.0.1'], ssh: { ...ssh(), knownHosts: kh, acceptNewHostKeys: true }, bind: '127.0.0.1', log: false });
    expect(await pool.apply('add', 2, 3)).toBe(5);
    expect(readFileSync(kh, 'utf8')).toMatch(/^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /);
  });

  it('a changed host key is refused even with acceptNewHostKeys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-kh-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
    const other = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ');
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, `[127.0.0.1]:${s.env.SLURMPOOL_SSHD_PORT} ${other[0]} ${other[1]}\n`);
    await expect(Pool.open({ module: tasks, hosts: ['127.0.0.1'], ssh: { ...ssh(), knownHosts: kh, acceptNewHostKeys: true }, bind: '127.0.0.1', log: false })).rejects.toThrow(/host key of \[127\.0\.0\.1\]:\d+ CHANGED/);
  });

  it('an unreachable host is named in one line; with minNodes the others go on', async () => {
    const logs: string[] = [];
    await using pool = await Pool.open({ module: tasks, hosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], ssh: ssh(), bind: '127.0.0.1', minNodes: 2, log: (l) => logs.push(l) });
    expect(pool.nodes.map((n) => n.node).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(logs.filter((l) => l.includes('127.0.0.3'))).toEqual([expect.stringMatching(/^node 127\.0\.0\.3: left out: cannot reach 127\.0\.0\.3:\d+: ECONNREFUSED$/)]);
    await expect(Pool.open({ module: tasks, hosts: ['127.0.0.3'], ssh: ssh(), bind: '127.0.0.1', log: false })).rejects.toThrow(/127\.0\.0\.3: cannot reach 127\.0\.0\.3:\d+: ECONNREFUSED/);
  });

  it('a key the host does not accept is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'stranger')]);
    copyFileSync(s.env.SLURMPOOL_SSHD_KNOWN_HOSTS!, join(dir, 'kh'));
    await expect(Pool.open({ module: tasks, hosts: ['127.0.0.1'], ssh: { ...ssh(), identityFile: join(dir, 'stranger'), knownHosts: join(dir, 'kh') }, bind: '127.0.0.1', log: false })).rejects.toThrow(/root@127\.0\.0\.1 refused every key/);
  });
});
