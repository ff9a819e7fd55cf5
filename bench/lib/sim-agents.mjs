// Simulated agents for bench/scale.mjs: many agents in one process, each a real loopback TCP
// connection through the project's own transport (handshake, frames, codec), following the credit
// rule, answering pings, and returning correct results for `identity` at once (the encoded items
// come back as the encoded values). They read the pool's join file, like `slurmpool join` would.
// Shared values go through the agents' own code (NodeShares: fetch, relay port, relaying to other
// agents over real authenticated TCP); the only difference from real agents is that the simulated
// agents of one process write a value into one buffer (same bytes at the same offsets), so that a
// thousand of them do not need a thousand copies of it in this machine's memory.
//
//   node bench/lib/sim-agents.mjs JOINFILE COUNT FIRST WORKERS
import { readJoinFile } from '../../dist/launch/join.js';
import { joinWithRetries } from '../../dist/agent/main.js';
import { NodeShares } from '../../dist/agent/shares.js';
import { secretGroup } from '../../dist/protocol/auth.js';
import { CoordinatorServer, RELAY_LINK, dial } from '../../dist/transport/tcp.js';

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
    const relayHost = link.localAddress ?? info.host;
    const shares = new NodeShares(
      { send, complete: () => undefined, alloc: (id, total) => buffers.get(id) ?? buffers.set(id, new SharedArrayBuffer(total)).get(id) },
      {
        group: secretGroup(info.secret),
        async listen(onChild) {
          const server = new CoordinatorServer({ host: relayHost, secret: info.secret, log: () => undefined, kind: RELAY_LINK, onAgent: (l) => onChild(l) });
          await server.listen();
          return { host: relayHost, port: server.port, close: () => void server.close() };
        },
        dial: (peer) => dial({ host: peer.host, port: peer.port, secret: info.secret, node, log: () => undefined }, RELAY_LINK, `relay port of node ${peer.node}`),
      },
    );
    link.onMessage((m) => {
      switch (m.t) {
        case 'configure':
          agent.heartbeatMs = m.config.heartbeatMs;
          if (!HB) startHeartbeats(m.config.heartbeatMs);
          send({ t: 'ready', node, workers, cpus: workers, pid: process.pid, credits: workers * 2, relayGroup: secretGroup(info.secret) });
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
        case 'fetch':
          shares.fetch(m);
          break;
        case 'share':
          shares.piece(m);
          break;
        case 'unshare':
          shares.unshare(m.id);
          buffers.delete(m.id);
          send({ t: 'shareState', id: m.id, state: 'released', bytes: 0 });
          break;
        case 'unqueue':
          send({ t: 'unqueued', ids: [] });
          break;
        case 'ping':
          send({ t: 'pong', at: m.at });
          break;
        case 'shutdown':
          shares.stop();
          link.close();
          break;
      }
    });
    link.onClose(() => {
      shares.stop();
      agents.delete(agent);
    });
    agents.add(agent);
    return agent;
  });
}

const agents = new Set();
/** One buffer per shared value for all the simulated agents of this process. */
const buffers = new Map();
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
