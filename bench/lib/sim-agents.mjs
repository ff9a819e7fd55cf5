// Simulated agents for bench/scale.mjs: many agents in one process, each a real loopback TCP
// connection through the project's own transport (handshake, frames, codec), following the credit
// rule, answering pings, and returning correct results for `identity` at once (the encoded items
// come back as the encoded values). They read the pool's join file, like `slurmpool join` would.
//
//   node bench/lib/sim-agents.mjs JOINFILE COUNT FIRST WORKERS
import { readJoinFile } from '../../dist/launch/join.js';
import { joinWithRetries } from '../../dist/agent/main.js';

const [file, countArg, firstArg, workersArg] = process.argv.slice(2);
const count = Number(countArg);
const first = Number(firstArg);
const workers = Number(workersArg ?? 1);
const info = readJoinFile(file);

/** One simulated agent. */
function start(i) {
  const node = `sim${String(first + i).padStart(5, '0')}`;
  return joinWithRetries({ host: info.host, port: info.port, secret: info.secret, node, log: () => undefined }, 120_000).then((link) => {
    const agent = { link, spoke: false, heartbeatMs: 1000 };
    const send = (m) => {
      agent.spoke = true;
      link.send(m);
    };
    const shares = new Map();
    link.onMessage((m) => {
      switch (m.t) {
        case 'configure':
          agent.heartbeatMs = m.config.heartbeatMs;
          if (!HB) startHeartbeats(m.config.heartbeatMs);
          send({ t: 'ready', node, workers, cpus: workers, pid: process.pid, credits: workers * 2 });
          break;
        case 'chunks': {
          const now = Date.now();
          send({ t: 'results', results: m.chunks.map((c) => ({ id: c.id, worker: 0, values: c.items, failures: [], started: now, ended: now })) });
          // The agent's rule for tiny chunks: two batches of up to 512 chunks per worker, plus one.
          if (!agent.raised) {
            agent.raised = true;
            send({ t: 'credits', credits: workers * 1025 });
          }
          break;
        }
        case 'share': {
          const got = (shares.get(m.id) ?? 0) + m.bytes.byteLength;
          shares.set(m.id, got);
          if (got === m.total) send({ t: 'shareState', id: m.id, state: 'ready', bytes: m.total });
          break;
        }
        case 'unshare':
          shares.delete(m.id);
          send({ t: 'shareState', id: m.id, state: 'released', bytes: 0 });
          break;
        case 'unqueue':
          send({ t: 'unqueued', ids: [] });
          break;
        case 'ping':
          send({ t: 'pong', at: m.at });
          break;
        case 'shutdown':
          link.close();
          break;
      }
    });
    link.onClose(() => agents.delete(agent));
    agents.add(agent);
    return agent;
  });
}

const agents = new Set();
// One timer for all: an agent that said nothing for a heartbeat period says it is alive.
function startHeartbeats(ms) {
  HB = ms;
  setInterval(() => {
    for (const a of agents) {
      if (!a.spoke) a.link.send({ t: 'heartbeat' });
      a.spoke = false;
    }
  }, ms).unref();
}
let HB = Number(process.env.SIM_HB_MS ?? 0);
if (HB) startHeartbeats(HB);

// All dial at once, as every srun task does.
const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => start(i)));
const failed = results.filter((r) => r.status === 'rejected');
if (failed.length) process.stderr.write(`sim-agents: ${failed.length} of ${count} could not join: ${failed[0].reason?.message}\n`);
// Stay until every agent's link is closed by the coordinator.
await new Promise((resolve) => {
  const t = setInterval(() => {
    if (agents.size === 0) {
      clearInterval(t);
      resolve();
    }
  }, 200);
});
