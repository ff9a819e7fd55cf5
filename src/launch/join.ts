// Join mode: the coordinator listens and writes a join file; agents started elsewhere (another
// allocation, a simulator) read it and dial in. The file holds the secret: mode 0600, never argv.
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
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

/** Default place of a pool's join file. */
export function defaultJoinFile(pid = process.pid): string {
  return join(homedir(), '.slurmpool', `join-${pid}.json`);
}

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
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    try {
      unlinkSync(this.file);
    } catch {
      // none there
    }
    // Created 0600 and exclusive: never readable by others, not even for a moment.
    writeFileSync(this.file, `${JSON.stringify(info)}\n`, { mode: 0o600, flag: 'wx' });
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
