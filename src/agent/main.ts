// The agent process (started by srun, ssh or emulation): connect to the coordinator, run chunks, exit when it goes.
import { hostname } from 'node:os';
import { SECRET_ENV, secretGroup } from '../protocol/auth.js';
import { CoordinatorServer, RELAY_LINK, connectToCoordinator, dial } from '../transport/tcp.js';
import type { RelayTransport } from './shares.js';
import { ProtocolError } from '../errors.js';
import { Agent, usableCpus } from './agent.js';
import { findEndTime } from '../cli/timeleft.js';

/** Variables that tell an agent where its coordinator is. */
export const COORDINATOR_ENV = 'SLURMPOOL_COORDINATOR';

/**
 * How long an agent waits without hearing from its coordinator before it exits (no orphans). The
 * coordinator pings every agent once a minute; a coordinator that died closes the connection at
 * once (its host vanishing is caught by TCP keepalive), so this only ends agents of a hung one.
 */
export const COORDINATOR_SILENCE_MS = 180_000;

function fail(message: string, code = 2): never {
  process.stderr.write(`slurmpool agent: ${message}\n`);
  process.exit(code);
}

/** How long an agent keeps dialling its coordinator (ms), set by the launcher from the pool's startTimeout. */
export const START_TIMEOUT_ENV = 'SLURMPOOL_START_TIMEOUT';

/** A refusal that dialling again cannot change (wrong secret, wrong protocol): not retried. */
function isFinal(e: Error): boolean {
  return e instanceof ProtocolError && /refused this agent|failed to prove|speaks protocol|did not accept this agent's proof|sent no challenge/.test(e.message);
}

/**
 * Dial until the deadline, with exponential backoff and jitter (100 ms doubling to 2 s): a
 * coordinator busy admitting a thousand agents, or one whose pending handshakes a neighbour is
 * flooding, drops or delays some attempts, and every agent must still get in.
 */
export async function joinWithRetries(
  opts: Parameters<typeof connectToCoordinator>[0],
  deadlineMs: number,
): Promise<Awaited<ReturnType<typeof connectToCoordinator>>> {
  const until = Date.now() + deadlineMs;
  let wait = 100;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      return await connectToCoordinator({ ...opts, timeoutMs: Math.max(1000, Math.min(10_000, until - Date.now())) });
    } catch (e) {
      const err = e as Error;
      if (isFinal(err) || Date.now() + wait >= until) {
        throw new Error(`${err.message}${tries > 1 ? ` (after ${tries} attempts over ${Math.round((Date.now() - until + deadlineMs) / 1000)} s)` : ''}`);
      }
      await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random())));
      wait = Math.min(2000, wait * 2);
    }
  }
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

/** Set (to 1) when the job secret comes on standard input, one line (it is then in no environment). */
const SECRET_STDIN_ENV = 'SLURMPOOL_SECRET_STDIN';

/** The first line of standard input, within 30 s; standard input is closed after it. */
function secretFromStdin(): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const timer = setTimeout(() => fail('no job secret on standard input within 30 s'), 30_000);
    const done = (v: string) => {
      clearTimeout(timer);
      process.stdin.removeAllListeners('data');
      process.stdin.destroy();
      if (!v) fail('standard input closed before the job secret arrived');
      resolve(v);
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl).trim());
    });
    process.stdin.on('end', () => done(buf.trim()));
    process.stdin.on('error', () => done(buf.trim()));
  });
}

/** Run an agent from its environment; resolves when it has stopped. */
export async function runAgent(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const secret = env[SECRET_STDIN_ENV] === '1' ? await secretFromStdin() : env[SECRET_ENV];
  if (!secret) fail(`${SECRET_ENV} is not set; the coordinator passes it on standard input or in the environment`);
  // Tasks and their commands must never see the job secret.
  delete env[SECRET_ENV];
  if (env === process.env) delete process.env[SECRET_ENV];
  const { host, port } = coordinatorAddress(env);
  const node = env.SLURMPOOL_NODE || env.SLURMD_NODENAME || hostname();
  const log = (line: string) => process.stderr.write(`slurmpool agent ${node}: ${line}\n`);
  const startMs = Number.parseInt(env[START_TIMEOUT_ENV] ?? '', 10);
  let link;
  try {
    link = await joinWithRetries({ host, port, secret, node, log }, Number.isFinite(startMs) && startMs > 0 ? startMs : 60_000);
  } catch (e) {
    fail(`could not join the coordinator: ${(e as Error).message}`, 3);
  }
  let lastHeard = Date.now();
  const taskEnv: NodeJS.ProcessEnv = { ...env };
  delete taskEnv[COORDINATOR_ENV];
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  // Other agents of this job fetch shared data from this one through a port on the interface that
  // reaches the coordinator (never all interfaces), open only once this node holds a shared value.
  const relayHost = link.localAddress ?? host;
  const relay: RelayTransport = {
    group: secretGroup(secret),
    async listen(onChild) {
      const server = new CoordinatorServer({ host: relayHost, secret, log, kind: RELAY_LINK, onAgent: (l) => onChild(l) });
      await server.listen();
      return { host: relayHost, port: server.port, close: () => void server.close() };
    },
    dial: (peer) => dial({ host: peer.host, port: peer.port, secret, node, log }, RELAY_LINK, `relay port of node ${peer.node}`),
  };
  const agent = new Agent(link, {
    node,
    // SLURMPOOL_RELAY=0: no relay port (a site that blocks traffic between compute nodes); shared values then come from the coordinator.
    relay: env.SLURMPOOL_RELAY === '0' ? undefined : relay,
    ...(env[LEAVE_ENV] === '1' ? { holdKilledMs: 1000 } : {}),
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
  let leaveTimer: NodeJS.Timeout | undefined;
  // An agent that joined from another allocation leaves before that allocation ends, and on SIGTERM.
  const leaves = env[LEAVE_ENV] === '1';
  let leavingNow = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (leaves && sig === 'SIGTERM') {
      if (leavingNow) return;
      leavingNow = true;
      // scancel or the walltime: the signal reaches this node's tasks too, so everything held goes back.
      log(`${sig}: leaving the pool; the chunks it holds go back to the coordinator`);
      void agent.leave('now', `${sig} (scancel or the time limit)`);
      return;
    }
    log(`${sig}: stopping`);
    void agent.stop(new Error(sig));
  };
  // A joined agent keeps its handler: srun forwards the SIGTERM that Slurm also sends it directly.
  if (leaves) process.on('SIGTERM', onSignal);
  else process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  if (leaves) {
    const end = await findEndTime(env, undefined);
    // Past about 24 days a timer would overflow (and fire at once): an allocation that long gets no
    // leave timer (its SIGTERM still makes the agent leave).
    if (end && end.at - Date.now() < MAX_TIMER_MS) {
      const margin = leaveMarginMs(env, end.at - Date.now());
      const at = end.at - margin;
      log(`this allocation ends at ${new Date(end.at).toISOString()} (${end.source}); leaving the pool ${Math.round(margin / 1000)} s before`);
      leaveTimer = setTimeout(() => void agent.leave('drain', `its allocation ends in ${Math.round((end.at - Date.now()) / 1000)} s`), Math.max(0, at - Date.now()));
      leaveTimer.unref();
    }
  }
  await done;
  clearTimeout(leaveTimer);
  clearInterval(watchdog);
}

/** The longest delay a Node timer takes (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Set (to 1) by `slurmpool join`: the agent leaves cleanly before its own allocation ends, and on SIGTERM. */
export const LEAVE_ENV = 'SLURMPOOL_LEAVE';
/** Seconds before its allocation's end at which a joined agent stops taking work (default: see leaveMarginMs). */
export const LEAVE_MARGIN_ENV = 'SLURMPOOL_LEAVE_MARGIN';

/**
 * How long before its allocation ends a joined agent stops taking work: SLURMPOOL_LEAVE_MARGIN
 * seconds when set, else 60 s, but never more than a tenth of the time left (a 2-minute test job
 * leaves 12 s before its end), so that the tasks it runs then can finish.
 */
export function leaveMarginMs(env: NodeJS.ProcessEnv, leftMs: number): number {
  const v = Number(env[LEAVE_MARGIN_ENV]);
  if (env[LEAVE_MARGIN_ENV] !== undefined && env[LEAVE_MARGIN_ENV] !== '' && Number.isFinite(v) && v >= 0) return v * 1000;
  return Math.min(60_000, Math.max(0, leftMs) / 10);
}
