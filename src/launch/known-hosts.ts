// Reading and checking OpenSSH known_hosts files: plain and hashed (|1|salt|hash) host patterns.
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** The name known_hosts uses for a host on a port: `host` on 22, `[host]:port` elsewhere. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's SHA256 fingerprint of a raw public key blob. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const n = key.readUInt32BE(0);
  return key.subarray(4, 4 + n).toString('latin1');
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  if (pattern.includes('*') || pattern.includes('?')) {
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return re.test(name);
  }
  return pattern === name;
}

export type HostKeyVerdict = { ok: true } | { ok: false; why: 'unknown' | 'changed' | 'revoked'; message: string };

/** Check a presented host key against known_hosts files. */
export function checkHostKey(files: string[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const type = keyType(key);
  const b64 = key.toString('base64');
  let sameTypeOther = false;
  for (const file of files) {
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const raw of lines) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const parts = line.split(/\s+/);
      let marker = '';
      if (parts[0]?.startsWith('@')) marker = parts.shift()!;
      const [hosts, ktype, kdata] = parts;
      if (!hosts || !ktype || !kdata) continue;
      const pats = hosts.split(',');
      const negated = pats.some((p) => p.startsWith('!') && patternMatches(p.slice(1), name));
      if (negated || !pats.some((p) => !p.startsWith('!') && patternMatches(p, name))) continue;
      if (marker === '@revoked' && kdata === b64) {
        return { ok: false, why: 'revoked', message: `host key of ${name} (${type} ${fingerprint(key)}) is marked @revoked in ${file}` };
      }
      if (marker) continue;
      if (kdata === b64) return { ok: true };
      if (ktype === type) sameTypeOther = true;
    }
  }
  if (sameTypeOther) {
    return {
      ok: false,
      why: 'changed',
      message: `host key of ${name} CHANGED: it now presents ${type} ${fingerprint(key)}, which differs from the one in ${files.join(' or ')}. Someone may be intercepting the connection, or the host was reinstalled; refusing. If you know the key changed legitimately, remove the old line (ssh-keygen -R '${name}') and trust the new key.`,
    };
  }
  return {
    ok: false,
    why: 'unknown',
    message: `host key of ${name} (${type} ${fingerprint(key)}) is not in ${files.join(' or ')}; refusing. To trust it, check the fingerprint and run: ssh-keyscan ${port === 22 ? '' : `-p ${port} `}${host} >> ${files[0]} — or pass acceptNewHostKeys (--accept-new-host-keys) to add unknown keys on first use.`,
  };
}

/** Append a host key (accept-new). */
export function addHostKey(file: string, host: string, port: number, key: Buffer): void {
  appendFileSync(file, `${knownHostsName(host, port)} ${keyType(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
}
