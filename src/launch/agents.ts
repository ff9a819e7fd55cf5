// What every launcher of agent processes shares: the coordinator's port, the secret, the agent command, start failures.
import { fileURLToPath } from 'node:url';
import { newSecret, SECRET_ENV } from '../protocol/auth.js';
import type { ResolvedOptions } from '../options.js';
import type { AgentIntake } from './launcher.js';
import { CoordinatorServer } from '../transport/tcp.js';

/** The CLI entry that runs `slurmpool agent`, resolved next to this file. */
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Keeps the last bytes a process wrote to stderr, to quote when it fails to start. */
export class Tail {
  private text = '';
  constructor(private readonly max = 4096) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.max);
  }
  get value(): string {
    return this.text.trim();
  }
}

/** Listen for agents on `host`, hand authenticated ones to the scheduler; one secret per pool. */
export async function startCoordinator(
  scheduler: AgentIntake,
  opts: ResolvedOptions,
  host: string,
): Promise<{ server: CoordinatorServer; secret: string }> {
  const secret = newSecret();
  const log = opts.log ?? (() => undefined);
  const server = new CoordinatorServer({
    host,
    secret,
    log,
    onAgent: (link, node) => scheduler.addAgent(link, node),
  });
  await server.listen();
  return { server, secret };
}

/** Environment every agent process gets: the coordinator's address and the secret (never argv). */
export function agentEnv(base: NodeJS.ProcessEnv, coordinator: string, secret: string | null, startTimeoutMs?: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, SLURMPOOL_AGENT: '1', SLURMPOOL_COORDINATOR: coordinator };
  delete env[SECRET_ENV];
  // With no secret here, it comes on the agent's standard input: then it is not even in the
  // process's initial environment (/proc/PID/environ), where a task could read it.
  if (secret === null) env[SECRET_STDIN_ENV] = '1';
  else env[SECRET_ENV] = secret;
  if (startTimeoutMs) env.SLURMPOOL_START_TIMEOUT = String(startTimeoutMs);
  return env;
}

/** Set (to 1) when the agent reads the job secret from its standard input, one line. */
export const SECRET_STDIN_ENV = 'SLURMPOOL_SECRET_STDIN';
