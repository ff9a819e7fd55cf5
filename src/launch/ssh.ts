// SSH mode: one agent per host of a list, started over SSH (ssh2); the secret goes over the channel, never on a command line.
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Client as SshClient, ConnectConfig } from 'ssh2';
import { LaunchError, OptionError } from '../errors.js';
import type { ResolvedOptions, SshOptions } from '../options.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { CLI_MAIN, startCoordinator, Tail } from './agents.js';
import { addHostKey, checkHostKey } from './known-hosts.js';
import type { AgentIntake, Launcher } from './launcher.js';

export interface SshHost {
  /** As written in the list; the node's name in results. */
  name: string;
  user: string | null;
  host: string;
  cpus: number | null;
}

/** Parse "[user@]host[:cpus]"; an IPv6 address goes in brackets: "[::1]:4". */
export function parseHost(spec: string, where = 'hosts'): SshHost {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:\s@]+)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new OptionError(`${where}: ${JSON.stringify(spec)} is not "host", "host:cpus" or "user@host:cpus"`);
  const cpus = m[3] === undefined ? null : Number(m[3]);
  if (cpus !== null && (!Number.isInteger(cpus) || cpus < 1)) throw new OptionError(`${where}: CPU count in ${JSON.stringify(spec)} must be a positive integer`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  return { name: host, user: m[1] ?? null, host, cpus };
}

/** Read a hostfile: one host a line, optional ":cpus", `#` comments; errors name the file and line. */
export function readHostfile(path: string): string[] {
  if (!existsSync(path)) throw new OptionError(`hostfile ${path} does not exist`);
  const out: string[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      parseHost(line, `${path} line ${i + 1}`);
      out.push(line);
    });
  if (out.length === 0) throw new OptionError(`hostfile ${path} lists no hosts`);
  return out;
}

/** Single-quote for a POSIX shell. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface SshSettings {
  port: number;
  user: string;
  identityFiles: string[];
  knownHosts: string[];
  acceptNewHostKeys: boolean;
  /** Remote node binary and CLI path; default: the same paths as here (clusters share filesystems). */
  nodePath: string;
  cliPath: string;
}

/** SSH settings from options, then SLURMPOOL_SSH_* variables, then OpenSSH's defaults. */
export function sshSettings(o: SshOptions, env: NodeJS.ProcessEnv): SshSettings {
  const home = homedir();
  const key = o.identityFile ?? env.SLURMPOOL_SSH_KEY;
  const ids = key ? [key] : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f));
  const port = o.port ?? Number(env.SLURMPOOL_SSH_PORT ?? 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new OptionError(`SLURMPOOL_SSH_PORT must be a TCP port, got ${JSON.stringify(env.SLURMPOOL_SSH_PORT)}`);
  const known = o.knownHosts ?? env.SLURMPOOL_SSH_KNOWN_HOSTS;
  return {
    port,
    user: o.user ?? env.SLURMPOOL_SSH_USER ?? userInfo().username,
    identityFiles: ids,
    knownHosts: known ? [known] : [join(home, '.ssh', 'known_hosts')],
    acceptNewHostKeys: o.acceptNewHostKeys ?? (env.SLURMPOOL_SSH_ACCEPT_NEW === '1' || env.SLURMPOOL_SSH_ACCEPT_NEW === 'true'),
    nodePath: o.remoteNode ?? env.SLURMPOOL_REMOTE_NODE ?? process.execPath,
    cliPath: o.remoteCli ?? env.SLURMPOOL_REMOTE_CLI ?? CLI_MAIN,
  };
}

export class SshLauncher implements Launcher {
  readonly mode = 'ssh';
  readonly nodes: string[];
  private readonly hosts: SshHost[];
  private readonly settings: SshSettings;
  private server: CoordinatorServer | null = null;
  address: { host: string; port: number } | undefined;
  private readonly clients: SshClient[] = [];
  private readonly tails = new Map<string, Tail>();
  private readonly reasons = new Map<string, string>();
  private readonly channels: Promise<void>[] = [];

  constructor(opts: ResolvedOptions) {
    this.hosts = (opts.hosts ?? []).map((h) => parseHost(h));
    const seen = new Set<string>();
    for (const h of this.hosts) {
      if (seen.has(h.name)) throw new OptionError(`hosts: ${h.name} is listed twice; one agent runs per host and uses all its workers`);
      seen.add(h.name);
    }
    this.nodes = this.hosts.map((h) => h.name);
    this.settings = sshSettings(opts.ssh, opts.env);
  }

  async start(scheduler: AgentIntake, opts: ResolvedOptions, failed: (node: string, why: string) => void): Promise<void> {
    const { Client } = (await import('ssh2')).default;
    const bind = opts.bind ?? '0.0.0.0';
    const { server, secret } = await startCoordinator(scheduler, opts, bind);
    this.server = server;
    this.address = { host: server.host, port: server.port };
    const keys = this.settings.identityFiles.filter((f) => existsSync(f)).map((f) => readFileSync(f));
    const agentSock = opts.env.SSH_AUTH_SOCK;
    if (keys.length === 0 && !agentSock) {
      throw new LaunchError(`no SSH key: none of ${this.settings.identityFiles.join(', ')} exists and SSH_AUTH_SOCK is not set`);
    }
    for (const h of this.hosts) {
      const tail = new Tail();
      this.tails.set(h.name, tail);
      const fail = (why: string) => {
        if (!this.reasons.has(h.name)) this.reasons.set(h.name, why);
        failed(h.name, this.failureOf(h.name) ?? why);
      };
      // Our own socket, so that we know which local address this host reached us through.
      const sock = netConnect({ host: h.host, port: this.settings.port });
      sock.on('error', (e) => fail(`cannot reach ${h.host}:${this.settings.port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      const client = new Client();
      this.clients.push(client);
      let hostKeyProblem: string | null = null;
      const config: ConnectConfig = {
        sock,
        host: h.host,
        port: this.settings.port,
        username: h.user ?? this.settings.user,
        readyTimeout: 15_000,
        hostVerifier: (key: Buffer) => {
          const v = checkHostKey(this.settings.knownHosts, h.host, this.settings.port, key);
          if (v.ok) return true;
          if (v.why === 'unknown' && this.settings.acceptNewHostKeys) {
            addHostKey(this.settings.knownHosts[0]!, h.host, this.settings.port, key);
            opts.log?.(`${h.name}: accepted new host key (acceptNewHostKeys)`);
            return true;
          }
          hostKeyProblem = v.message;
          return false;
        },
        ...(agentSock ? { agent: agentSock } : {}),
      };
      const tryKeys = [...keys];
      if (tryKeys.length) config.privateKey = tryKeys[0]!;
      client.on('error', (e: Error & { level?: string }) => {
        if (hostKeyProblem) fail(hostKeyProblem);
        else if (e.level === 'client-authentication') fail(`${h.user ?? this.settings.user}@${h.host} refused every key (${this.settings.identityFiles.filter((f) => existsSync(f)).join(', ') || 'agent keys'})`);
        else fail(`ssh to ${h.host}:${this.settings.port} failed: ${e.message}`);
      });
      client.on('ready', () => {
        const local = sock.localAddress ?? '127.0.0.1';
        const addr = bind === '0.0.0.0' || bind === '::' ? local.replace(/^::ffff:/, '') : bind;
        const coordinator = `${addr.includes(':') ? `[${addr}]` : addr}:${server.port}`;
        // The agent reads the secret from the channel's stdin: no command line and no environment ever holds it.
        const cmd =
          `export SLURMPOOL_SECRET_STDIN=1 SLURMPOOL_AGENT=1 ` +
          `SLURMPOOL_COORDINATOR=${sq(coordinator)} SLURMPOOL_NODE=${sq(h.name)}` +
          (h.cpus ? ` SLURMPOOL_CPUS=${h.cpus}` : '') +
          ` && exec ${sq(this.settings.nodePath)} ${sq(this.settings.cliPath)} agent`;
        client.exec(`sh -c ${sq(cmd)}`, (err, stream) => {
          if (err) return fail(`could not start the agent on ${h.host}: ${err.message}`);
          stream.write(`${secret}\n`);
          stream.stderr.on('data', (d: Buffer) => {
            tail.push(d);
            process.stderr.write(d);
          });
          // Agents' (and tasks') stdout goes to stderr: stdout may carry results (map without --output).
          stream.on('data', (d: Buffer) => process.stderr.write(d));
          this.channels.push(
            new Promise<void>((resolve) =>
              stream.on('close', (code: number | null, signal?: string) => {
                this.reasons.set(h.name, `agent on ${h.host} exited with ${signal ? `signal ${signal}` : `status ${code}`}`);
                fail(this.reasons.get(h.name)!);
                client.end();
                resolve();
              }),
            ),
          );
        });
      });
      client.connect(config);
    }
  }

  failureOf(node: string): string | undefined {
    const why = this.reasons.get(node);
    const tail = this.tails.get(node)?.value;
    if (!why && !tail) return undefined;
    return [why, tail].filter(Boolean).join(': ');
  }

  async stop(graceful: boolean): Promise<void> {
    const t = new Promise<void>((r) => setTimeout(r, graceful ? 10_000 : 1000).unref());
    await Promise.race([Promise.allSettled(this.channels), t]);
    for (const c of this.clients) c.end();
    await this.server?.close();
  }
}
