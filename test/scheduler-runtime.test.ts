// The scheduler's runtime over an in-process link, with an agent that answers at once: bounded turns never strand work.
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { Job, type ChunkOutcome, type Sink } from '../src/scheduler/job.js';
import { inprocPair } from '../src/transport/inproc.js';
import type { FromAgent, ToAgent } from '../src/protocol/messages.js';
import { decodeListLike, encodeList } from '../src/protocol/codec.js';

function agentThatAnswers(link: ReturnType<typeof inprocPair<FromAgent, ToAgent>>[0], credits: number): void {
  link.onMessage((m) => {
    if (m.t === 'configure') link.send({ t: 'ready', node: 'n1', workers: 1, cpus: 1, pid: 1, credits });
    else if (m.t === 'chunks') {
      const now = Date.now();
      link.send({ t: 'results', results: m.chunks.map((c) => ({ id: c.id, worker: 0, values: encodeList(Array.from(decodeListLike(c.items))), failures: [], started: now, ended: now })) });
    }
  });
}

describe('scheduler runtime', () => {
  it('with a zero time budget per turn (one pass a turn), a large call still finishes: no dispatch is stranded', async () => {
    const s = new Scheduler({ config: { module: null, initializer: null, initArgs: [], maxTasksPerWorker: 0, threadsPerTask: 1, workers: 1, maxHeapMB: 0, heartbeatMs: 0, taskEnv: {} }, retries: 1, lostAfterMs: 0, speculate: false, log: () => undefined, turnBudgetMs: 0 });
    const [coordEnd, agentEnd] = inprocPair<ToAgent, FromAgent>('agent', 'coordinator');
    agentThatAnswers(agentEnd, 5000);
    s.addAgent(coordEnd, 'n1');
    let got = 0;
    let ended = -1;
    const done = new Promise<void>((resolve) => {
      const sink: Sink = {
        accept: (o: ChunkOutcome) => {
          got += o.values.length;
          if (ended >= 0 && got === 5000) resolve();
        },
        inputEnded: (n) => {
          ended = n;
          if (got === 5000) resolve();
        },
        abort: () => undefined,
      };
      const job = new Job({ fn: 'f', kind: 'call', chunksize: 1, stopOnError: true, timeoutMs: 0 }, Array.from({ length: 5000 }, (_, i) => i), sink, () => s.pump(), 1);
      s.addJob(job);
    });
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`stalled at ${got} of 5000`)), 20_000))]);
    expect(got).toBe(5000);
    s.shutdown();
  });
});
