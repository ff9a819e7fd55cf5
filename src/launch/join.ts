// Join mode: the coordinator listens and writes a join file; agents started elsewhere (another
// allocation, a simulator) read it and dial in. The file holds the secret: mode 0600, never argv.
import { chmodSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir, hostname, networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { LaunchError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { CoordinatorServer } from '../transport/tcp.js';
import { startCoordinator } from './agents.js';
import type { AgentIntake, Launcher } from './launcher.js';

/** What a join file holds. */
export interface JoinInfo {
  v: 1;
  /** Address agents dial. */
  host: string;
  port: number;
  secret: string;
  /** Who wrote it, for messages. */
  coordinatorHost: string;
  pid: number;
  created: string;
}

/** The default folder of join files (and of grown jobs' output): ~/.slurmpool, kept 0700. */
export function defaultJoinDir(): string {
  return join(homedir(), '.slurmpool');
}

/** Default place of a pool's join file. */
export function defaultJoinFile(pid = process.pid): string {
  return join(defaultJoinDir(), `join-${pid}.json`);
}

/**
 * Where a pool's join file goes: `true` is the default file; a path naming an existing folder, or
 * ending with `/`, gets `join-<pid>.json` inside it; any other path is the file itself.
 */
export function joinFilePath(v: true | string, pid = process.pid): string {
  if (v === true) return defaultJoinFile(pid);
  let dir = v.endsWith('/');
  if (!dir) {
    try {
      dir = statSync(v).isDirectory();
    } catch {
      // not there: a file to create
    }
  }
  return dir ? join(v, `join-${pid}.json`) : v;
}

/**
 * Write a join file: its folder created 0700 when missing (~/.slurmpool is made 0700 even when it
 * exists), the file created 0600 and exclusive (an older one of the same name is replaced), so that
 * it is never readable by others, not even for a moment.
 */
export function writeJoinFile(file: string, info: JoinInfo): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (dir === defaultJoinDir()) chmodSync(dir, 0o700);
  try {
    unlinkSync(file);
  } catch {
    // none there
  }
  writeFileSync(file, `${JSON.stringify(info)}\n`, { mode: 0o600, flag: 'wx' });
}

/**
 * The address a join file gives agents: `bind` when it names one address; else SLURMPOOL_JOIN_HOST;
 * else this machine's first IPv4 address that is not loopback (names are never resolved: a node name
 * may not be in DNS); else 127.0.0.1.
 */
export function advertisedHost(bind: string, env: NodeJS.ProcessEnv): string {
  if (bind !== '0.0.0.0' && bind !== '::') return bind;
  if (env.SLURMPOOL_JOIN_HOST) return env.SLURMPOOL_JOIN_HOST;
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  }
  return '127.0.0.1';
}

/**
 * A second door into any running pool: its own port and secret, and a join file for agents from
 * other allocations (`slurmpool join FILE`). Agents it admits are handed to the scheduler as
 * `join:<node>` (so that no launcher takes them for one of its own nodes).
 */
export class JoinListener {
  private server: CoordinatorServer | null = null;
  address: { host: string; port: number } | undefined;

  constructor(readonly file: string) {}

  async start(intake: AgentIntake, opts: ResolvedOptions): Promise<void> {
    const bind = opts.bind ?? '0.0.0.0';
    const { server, secret } = await startCoordinator({ addAgent: (link, node) => intake.addAgent(link, `${JOINED_PREFIX}${node}`), agents: intake.agents }, opts, bind);
    this.server = server;
    const host = advertisedHost(bind, opts.env);
    this.address = { host, port: server.port };
    try {
      writeJoinFile(this.file, { v: 1, host, port: server.port, secret, coordinatorHost: hostname(), pid: process.pid, created: new Date().toISOString() });
    } catch (e) {
      await server.close();
      throw new LaunchError(`cannot write the join file ${this.file}: ${(e as Error).message}`);
    }
    opts.log?.(`join file written: ${this.file} (agents of other allocations join with: slurmpool join ${this.file})`);
  }

  ref(): void {
    this.server?.ref();
  }

  unref(): void {
    this.server?.unref();
  }

  /** Remove the file and stop listening (agents already in keep their links until the pool stops). */
  async stop(): Promise<void> {
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
    await this.server?.close();
  }
}

/** What a joined agent's expected name starts with. */
export const JOINED_PREFIX = 'join:';

/** Read a join file, refusing one that others could read (it holds the secret). */
export function readJoinFile(path: string): JoinInfo {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new LaunchError(`join file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (is the pool running, and is this the path it printed?)' : (e as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new LaunchError(`join file ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: it holds the pool's secret, so it must be readable by its owner only (chmod 600); refusing it`);
  }
  let v: Partial<JoinInfo>;
  try {
    v = JSON.parse(readFileSync(path, 'utf8')) as Partial<JoinInfo>;
  } catch (e) {
    throw new LaunchError(`join file ${path} is not JSON: ${(e as Error).message}`);
  }
  if (v.v !== 1 || typeof v.host !== 'string' || typeof v.port !== 'number' || typeof v.secret !== 'string') {
    throw new LaunchError(`join file ${path} does not hold a slurmpool join record (v, host, port, secret)`);
  }
  return v as JoinInfo;
}

export class JoinLauncher implements Launcher {
  readonly mode = 'join';
  /** Placeholders: joining agents are named by themselves; Pool.open counts them. */
  readonly nodes: string[];
  address: { host: string; port: number } | undefined;
  /** Where the join file was written. */
  file: string;
  private server: CoordinatorServer | null = null;

  constructor(opts: ResolvedOptions) {
    const n = opts.join?.nodes ?? 1;
    this.nodes = Array.from({ length: n }, (_, i) => `join${i + 1}`);
    this.file = opts.join?.file ?? defaultJoinFile();
  }

  async start(scheduler: AgentIntake, opts: ResolvedOptions): Promise<void> {
    const bind = opts.bind ?? '127.0.0.1';
    const { server, secret } = await startCoordinator(scheduler, opts, bind);
    this.server = server;
    this.address = { host: server.host, port: server.port };
    const info: JoinInfo = { v: 1, host: bind === '0.0.0.0' ? hostname() : bind, port: server.port, secret, coordinatorHost: hostname(), pid: process.pid, created: new Date().toISOString() };
    writeJoinFile(this.file, info);
    opts.log?.(`join file written: ${this.file} (waiting for ${this.nodes.length} agent(s))`);
  }

  async stop(): Promise<void> {
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
    await this.server?.close();
  }
}
