// The agent process (started by srun, ssh or emulation): connect to the coordinator, run chunks, exit when it goes.
import { hostname } from 'node:os';
import { SECRET_ENV } from '../protocol/auth.js';
import { connectToCoordinator } from '../transport/tcp.js';
import { Agent, usableCpus } from './agent.js';

/** Variables that tell an agent where its coordinator is. */
export const COORDINATOR_ENV = 'SLURMPOOL_COORDINATOR';

/** How long an agent waits without hearing from its coordinator before it exits (no orphans). */
export const COORDINATOR_SILENCE_MS = 30_000;

function fail(message: string, code = 2): never {
  process.stderr.write(`slurmpool agent: ${message}\n`);
  process.exit(code);
}

/** Where to connect: SLURMPOOL_COORDINATOR=host:port; a host of "launch" means the node that ran srun. */
export function coordinatorAddress(env: NodeJS.ProcessEnv): { host: string; port: number } {
  const v = env[COORDINATOR_ENV];
  if (!v) fail(`${COORDINATOR_ENV} is not set; an agent is started by a coordinator (srun, ssh or emulation), not by hand`);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(v);
  if (!m) fail(`${COORDINATOR_ENV}=${JSON.stringify(v)} is not HOST:PORT`);
  let host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (host === 'launch') {
    const ip = env.SLURM_LAUNCH_NODE_IPADDR;
    if (!ip) fail(`${COORDINATOR_ENV} names the launch node but SLURM_LAUNCH_NODE_IPADDR is not set (not started by srun?)`);
    host = ip;
  }
  return { host, port };
}

/** Run an agent from its environment; resolves when it has stopped. */
export async function runAgent(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const secret = env[SECRET_ENV];
  if (!secret) fail(`${SECRET_ENV} is not set; the coordinator passes it in the environment`);
  // Tasks and their commands must never see the job secret.
  delete env[SECRET_ENV];
  if (env === process.env) delete process.env[SECRET_ENV];
  const { host, port } = coordinatorAddress(env);
  const node = env.SLURMPOOL_NODE || env.SLURMD_NODENAME || hostname();
  const log = (line: string) => process.stderr.write(`slurmpool agent ${node}: ${line}\n`);
  let link;
  try {
    link = await connectToCoordinator({ host, port, secret, node, log });
  } catch (e) {
    fail(`could not join the coordinator: ${(e as Error).message}`, 3);
  }
  let lastHeard = Date.now();
  const taskEnv: NodeJS.ProcessEnv = { ...env };
  delete taskEnv[COORDINATOR_ENV];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const agent = new Agent(link, {
    node,
    cpus: usableCpus(env),
    env: taskEnv,
    onExit: (err) => {
      if (err) log(`stopped: ${err.message}`);
      resolveDone();
    },
  });
  // Any bytes from the coordinator (pings included) prove it is alive.
  link.onHeard = () => (lastHeard = Date.now());
  const watchdog = setInterval(() => {
    if (Date.now() - lastHeard > COORDINATOR_SILENCE_MS) {
      log(`no word from the coordinator for ${COORDINATOR_SILENCE_MS / 1000} s; exiting`);
      void agent.stop(new Error('coordinator silent'));
    }
  }, 1000);
  watchdog.unref();
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping`);
    void agent.stop(new Error(sig));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await done;
  clearInterval(watchdog);
}
