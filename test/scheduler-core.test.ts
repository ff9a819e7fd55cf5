// The scheduler's pure core, driven by events with a clock of our own: every policy as a story that runs in milliseconds.
import { describe, expect, it } from 'vitest';
import { AgentState, DISPATCH_MAX_CHUNKS, MAX_LOSSES, SchedulerCore, STRAGGLER_FLOOR_MS, type Chunk, type Command, type CoreResult } from '../src/scheduler/core.js';
import { Job, type ChunkOutcome, type JobSpec, type Sink } from '../src/scheduler/job.js';

class RecordingSink implements Sink {
  outcomes: ChunkOutcome[] = [];
  ended = -1;
  aborted: Error | null = null;
  accept(o: ChunkOutcome): void {
    this.outcomes.push(o);
  }
  inputEnded(chunks: number): void {
    this.ended = chunks;
  }
  abort(e: Error): void {
    this.aborted = e;
  }
}

/** A core, some agents, and helpers to read what it commands. */
function setup(opts: { agents?: number; workers?: number; credits?: number; retries?: number; speculate?: boolean; lostAfterMs?: number } = {}) {
  const core = new SchedulerCore({ retries: opts.retries ?? 2, lostAfterMs: opts.lostAfterMs ?? 0, speculate: opts.speculate ?? false });
  const agents: AgentState[] = [];
  let now = 1000;
  for (let i = 0; i < (opts.agents ?? 1); i++) {
    const a = new AgentState(i + 1, null, `n${i + 1}`);
    core.agentJoined(a, now);
    core.agentReady(a, { node: `n${i + 1}`, workers: opts.workers ?? 1, cpus: opts.workers ?? 1, pid: 100 + i, credits: opts.credits ?? 1 }, now);
    agents.push(a);
  }
  core.take();
  const job = (items: unknown[], spec: Partial<JobSpec> = {}) => {
    const sink = new RecordingSink();
    const j = new Job({ fn: 'f', kind: 'call', chunksize: 1, stopOnError: false, timeoutMs: 0, ...spec }, items, sink, () => undefined, core.totalWorkers);
    core.addJob(j);
    return { job: j, sink };
  };
  const sends = (cmds: Command[]) => cmds.filter((c): c is Extract<Command, { c: 'send' }> => c.c === 'send');
  const sent = (cmds: Command[]) => sends(cmds).map((s) => [s.agent.node, s.chunks.map((c) => c.root.start + c.offset)] as const);
  const ok = (c: Chunk, started = now, ended = now + 10): CoreResult => ({ id: c.id, worker: 0, values: c.items.map((x) => x), failures: [], started, ended });
  const died = (c: Chunk, offset: number, kind: 'died' | 'timeout' = 'died'): CoreResult => ({
    id: c.id,
    worker: 0,
    values: [],
    failures: [],
    started: now,
    ended: now,
    died: { offset, error: { name: kind === 'timeout' ? 'TimeoutError' : 'WorkerExit', message: kind, kind } },
  });
  return {
    core,
    agents,
    job,
    sent,
    sends,
    ok,
    died,
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
      return now;
    },
  };
}

describe('dispatch', () => {
  it('spreads chunks round-robin one at a time over agents with free credit, and no further', () => {
    const t = setup({ agents: 3, credits: 1 });
    t.job([10, 11, 12, 13, 14]);
    t.core.dispatch(t.now);
    expect(t.sent(t.core.take())).toEqual([['n1', [0]], ['n2', [1]], ['n3', [2]]]);
    // Nothing more until a credit frees: the agents with none are not in the queue at all.
    t.core.dispatch(t.now);
    expect(t.core.take()).toEqual([]);
    const a2 = t.agents[1]!;
    const c = [...a2.inflight.values()][0]!;
    t.core.results(a2, [t.ok(c)], t.now);
    t.core.dispatch(t.now);
    const cmds = t.core.take();
    expect(cmds.filter((x) => x.c === 'outcome').length).toBe(1);
    expect(t.sent(cmds)).toEqual([['n2', [3]]]);
  });

  it('is bounded per call: a huge backlog goes out over several calls, each telling there is more', () => {
    const t = setup({ agents: 2, credits: 100_000 });
    t.job(Array.from({ length: 3000 }, (_, i) => i));
    expect(t.core.dispatch(t.now)).toBe(true);
    const first = t.sends(t.core.take()).reduce((n, s) => n + s.chunks.length, 0);
    expect(first).toBe(DISPATCH_MAX_CHUNKS);
    let calls = 1;
    let total = first;
    while (t.core.dispatch(t.now)) {
      total += t.sends(t.core.take()).reduce((n, s) => n + s.chunks.length, 0);
      calls++;
    }
    total += t.sends(t.core.take()).reduce((n, s) => n + s.chunks.length, 0);
    expect(total).toBe(3000);
    expect(calls + 1).toBe(Math.ceil(3000 / DISPATCH_MAX_CHUNKS));
  });

  it('an agent streaming shared data or over its byte budget gets nothing until it is done', () => {
    const t = setup({ agents: 2, credits: 5 });
    t.core.streaming(t.agents[0]!, 1);
    t.job([1, 2, 3]);
    t.core.dispatch(t.now);
    expect(t.sent(t.core.take())).toEqual([['n2', [0, 1, 2]]]);
  });
});

describe('many calls at once (a loop of apply() calls)', () => {
  it('5,000 one-item calls on 256 workers: every call gets its result, in call order, and dispatch asks each call a bounded number of times', () => {
    const t = setup({ agents: 2, workers: 128, credits: 128 });
    const n = 5000;
    let takes = 0;
    let backlogs = 0;
    const calls = Array.from({ length: n }, (_, i) => {
      const c = t.job([i]);
      // Counted on the real calls: the work dispatch does per call must not grow with the calls in flight or queued.
      const take = c.job.take.bind(c.job);
      const backlog = c.job.backlog.bind(c.job);
      c.job.take = (w) => (takes++, take(w));
      c.job.backlog = () => (backlogs++, backlog());
      return c;
    });
    const made: [number, number][] = [];
    for (let round = 0; round < 200 && made.length < n; round++) {
      t.core.dispatch(t.now);
      const sends = t.sends(t.core.take());
      for (const s of sends) made.push(...s.chunks.map((c) => [c.id, c.items[0] as number] as [number, number]));
      for (const s of sends) t.core.results(s.agent, s.chunks.map((c) => t.ok(c)), t.now);
      // Each finished call ends, as the Pool ends it when its promise settles.
      for (const cmd of t.core.take()) {
        if (cmd.c !== 'outcome') continue;
        cmd.job.sink.accept(cmd.outcome);
        t.core.cancelJob(cmd.job);
      }
    }
    // Chunks are made in call order (their ids count up as they are made), whichever node each goes to.
    expect(made.sort((x, y) => x[0] - y[0]).map(([, item]) => item)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(calls.filter((c, i) => !(c.sink.outcomes.length === 1 && c.sink.outcomes[0]!.values[0] === i)).map((c) => JSON.stringify(c.sink.outcomes))).toEqual([]);
    // Each call: one take that makes its chunk, one that finds its input ended; a few more at most.
    expect(takes).toBeLessThanOrEqual(3 * n);
    // The backlog is counted only until the grant is full (64 per agent with room), never over every queued call.
    expect(backlogs).toBeLessThanOrEqual(200 * 2 * 64 + n);
  });
});

describe('failed items retried (retryFailed)', () => {
  /** A result in which the items at `bad` offsets failed (a command's non-zero exit). */
  const failing = (t: ReturnType<typeof setup>, c: Chunk, bad: number[], kind: 'error' | 'timeout' | 'cancelled' = 'error'): CoreResult => ({
    ...t.ok(c),
    values: c.items.map((x) => `v${String(x)}@${c.attempts.n}`),
    failures: bad.map((offset) => ({ offset, error: { name: 'CommandError', message: 'exit 3', kind } })),
  });
  const outcomesOf = (cmds: Command[]) => cmds.filter((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome').map((x) => x.outcome);

  it('a failed item runs again alone, up to retryFailed times; its final outcome counts every attempt; its neighbours ran once', () => {
    const t = setup({ credits: 10, retries: 0 });
    t.job([0, 1, 2], { chunksize: 3, retryFailed: 2 });
    t.core.dispatch(t.now);
    const [c] = t.sends(t.core.take())[0]!.chunks;
    t.core.results(t.agents[0]!, [failing(t, c!, [1])], t.now);
    expect(outcomesOf(t.core.take())).toEqual([]);
    t.core.dispatch(t.now);
    const [r1] = t.sends(t.core.take())[0]!.chunks;
    expect([r1!.offset, r1!.items, r1!.attempts.n]).toEqual([1, [1], 1]);
    t.core.results(t.agents[0]!, [failing(t, r1!, [0])], t.now);
    t.core.dispatch(t.now);
    const [r2] = t.sends(t.core.take())[0]!.chunks;
    expect([r2!.offset, r2!.attempts.n]).toEqual([1, 2]);
    t.core.results(t.agents[0]!, [failing(t, r2!, [0])], t.now);
    const [o] = outcomesOf(t.core.take());
    expect(o!.failures.map((f) => [f.offset, f.attempts])).toEqual([[1, 3]]);
    // The last attempt's value is the one kept.
    expect([o!.values[0], o!.values[1], o!.values[2]]).toEqual(['v0@0', 'v1@2', 'v2@0']);
  });

  it('a retry that succeeds: no failure, the item placed where it ran last with attempts 2', () => {
    const t = setup({ agents: 2, credits: 10, retries: 0 });
    t.job([0, 1], { chunksize: 2, retryFailed: 1 });
    t.core.dispatch(t.now);
    const [s] = t.sends(t.core.take());
    t.core.results(s!.agent, [failing(t, s!.chunks[0]!, [0])], t.now);
    t.core.dispatch(t.now);
    const [s2] = t.sends(t.core.take());
    t.core.results(s2!.agent, [t.ok(s2!.chunks[0]!, t.now + 50, t.now + 60)], t.now);
    const [o] = outcomesOf(t.core.take());
    expect(o!.failures).toEqual([]);
    const last = o!.parts.filter((p) => p.offset === 0 && p.count === 1);
    expect(last.map((p) => [p.node, p.attempts, p.started])).toEqual([[s2!.agent.node, 2, t.now + 50]]);
  });

  it('timeouts are retried too; cancelled items and jobs without retryFailed are not', () => {
    for (const [spec, kind, expectRetry] of [
      [{ retryFailed: 1 }, 'timeout', true],
      [{ retryFailed: 1 }, 'cancelled', false],
      [{}, 'error', false],
    ] as const) {
      const t = setup({ credits: 10, retries: 3 });
      t.job([0], { chunksize: 1, ...spec });
      t.core.dispatch(t.now);
      const [c] = t.sends(t.core.take())[0]!.chunks;
      t.core.results(t.agents[0]!, [failing(t, c!, [0], kind)], t.now);
      const cmds = t.core.take();
      expect(outcomesOf(cmds).length, `${kind} ${JSON.stringify(spec)}`).toBe(expectRetry ? 0 : 1);
    }
  });

  it('a stop (stopStarting) while a retry waits: the item is reported cancelled, not run', () => {
    const t = setup({ credits: 10, retries: 0 });
    t.job([0], { chunksize: 1, retryFailed: 2 });
    t.core.dispatch(t.now);
    const [c] = t.sends(t.core.take())[0]!.chunks;
    t.core.stopStarting();
    t.core.results(t.agents[0]!, [failing(t, c!, [0])], t.now);
    const [o] = outcomesOf(t.core.take());
    expect(o!.failures.map((f) => f.error.kind)).toEqual(['cancelled']);
  });
});

describe('worker deaths and retries', () => {
  it('a worker dying on item k of n: k is retried alone, its neighbours run again without an attempt counted', () => {
    const t = setup({ credits: 10, retries: 1 });
    t.job([0, 1, 2, 3, 4], { chunksize: 5 });
    t.core.dispatch(t.now);
    const [c] = t.sends(t.core.take())[0]!.chunks;
    t.core.results(t.agents[0]!, [t.died(c!, 2)], t.now);
    const cmds = t.core.take();
    expect(cmds.some((x) => x.c === 'log' && /died running task 2.*retrying it \(attempt 2 of 2\)/.test(x.line))).toBe(true);
    t.core.dispatch(t.now);
    const parts = t.sends(t.core.take())[0]!.chunks;
    expect(parts.map((p) => [p.offset, p.items.length, p.attempts.n])).toEqual([
      [3, 2, 0],
      [2, 1, 1],
      [0, 2, 0],
    ]);
  });

  it('retries exhausted: the outcome names the exact index, kind died and attempts 2; the other values are in place', () => {
    const t = setup({ credits: 10, retries: 1 });
    t.job([0, 1, 2, 3, 4], { chunksize: 5 });
    t.core.dispatch(t.now);
    const [c] = t.sends(t.core.take())[0]!.chunks;
    t.core.results(t.agents[0]!, [t.died(c!, 3)], t.now);
    t.core.take();
    t.core.dispatch(t.now);
    const parts = t.sends(t.core.take())[0]!.chunks;
    const lone = parts.find((p) => p.offset === 3)!;
    const rest = parts.filter((p) => p !== lone);
    t.core.results(t.agents[0]!, [t.died(lone, 0), ...rest.map((p) => t.ok(p))], t.now);
    const outcomes = t.core.take().filter((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome');
    expect(outcomes.length).toBe(1);
    const o = outcomes[0]!.outcome;
    expect(o.failures.map((f) => [o.start + f.offset, f.error.kind, f.attempts])).toEqual([[3, 'died', 2]]);
    expect([o.values[0], o.values[1], o.values[2], o.values[4]]).toEqual([0, 1, 2, 4]);
  });

  it('a timeout is final at once: no retry', () => {
    const t = setup({ credits: 10, retries: 3 });
    t.job([7], { timeoutMs: 100 });
    t.core.dispatch(t.now);
    const [c] = t.sends(t.core.take())[0]!.chunks;
    t.core.results(t.agents[0]!, [t.died(c!, 0, 'timeout')], t.now);
    const out = t.core.take().filter((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome');
    expect(out.map((o) => o.outcome.failures.map((f) => [f.error.kind, f.attempts]))).toEqual([[['timeout', 1]]]);
  });
});

describe('agent losses', () => {
  it('chunks of a lost agent run again elsewhere; after MAX_LOSSES losses in a row the item is reported lost', () => {
    const t = setup({ agents: MAX_LOSSES + 1, credits: 1 });
    t.job(['x']);
    let holder: AgentState | undefined;
    for (let i = 0; i < MAX_LOSSES; i++) {
      t.core.dispatch(t.now);
      const s = t.sends(t.core.take());
      expect(s.length).toBe(1);
      holder = s[0]!.agent;
      t.core.agentLost(holder, 'gone');
      const cmds = t.core.take();
      expect(cmds.some((x) => x.c === 'lost' && x.agent === holder)).toBe(true);
      if (i < MAX_LOSSES - 1) expect(cmds.some((x) => x.c === 'outcome')).toBe(false);
      else {
        const o = cmds.find((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome')!.outcome;
        expect(o.failures[0]!.error.kind).toBe('lost');
        expect(o.failures[0]!.error.message).toMatch(/lost with 3 agents in a row/);
      }
    }
    expect(t.core.totalWorkers).toBe(1);
    expect(t.core.readyCount).toBe(1);
  });
});

describe('straggler copies', () => {
  function straggling(opts: { timeoutMs?: number; retries?: number } = {}) {
    const t = setup({ agents: 2, workers: 2, credits: 4, speculate: true, retries: opts.retries ?? 2 });
    t.job([0, 1, 2, 3, 4], { timeoutMs: opts.timeoutMs ?? 0 });
    t.core.dispatch(t.now);
    const all = t.sends(t.core.take()).flatMap((s) => s.chunks);
    const slow = all.find((c) => c.root.start === 0)!;
    for (const c of all) if (c !== slow) t.core.results(c.agent!, [t.ok(c, t.now, t.now + 10)], t.now);
    t.core.dispatch(t.now); // reads the end of the input
    t.core.take();
    return { t, slow };
  }

  it('a chunk far slower than its call\'s others gets one copy on another node; the copy wins and the original is cancelled', () => {
    const { t, slow } = straggling();
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    const cmds = t.core.take();
    const copy = t.sends(cmds)[0]!.chunks[0]!;
    expect(copy.agent).not.toBe(slow.agent);
    expect(cmds.some((x) => x.c === 'log' && /straggler: task 0 has run/.test(x.line))).toBe(true);
    // No copy of a copy, however long it runs.
    t.core.tick(t.advance(10_000), 250);
    expect(t.sends(t.core.take())).toEqual([]);
    t.core.results(copy.agent!, [t.ok(copy)], t.now);
    const after = t.core.take();
    expect(after.filter((x) => x.c === 'cancel').map((x) => (x as { ids: number[] }).ids)).toEqual([[slow.id]]);
    expect(after.filter((x) => x.c === 'outcome').length).toBe(1);
    expect(t.core.speculation).toEqual({ started: 1, won: 1 });
    // The original's late result is ignored.
    t.core.results(slow.agent!, [t.ok(slow)], t.now);
    expect(t.core.take().filter((x) => x.c === 'outcome')).toEqual([]);
  });

  it('the original wins: the copy is cancelled', () => {
    const { t, slow } = straggling();
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    const copy = t.sends(t.core.take())[0]!.chunks[0]!;
    t.core.results(slow.agent!, [t.ok(slow)], t.now);
    const cmds = t.core.take();
    expect(cmds.filter((x) => x.c === 'cancel').map((x) => (x as { ids: number[] }).ids)).toEqual([[copy.id]]);
    expect(cmds.filter((x) => x.c === 'outcome').length).toBe(1);
  });

  it('the copy is lost with its node: the original carries on alone, nothing re-queued', () => {
    const { t, slow } = straggling();
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    const copy = t.sends(t.core.take())[0]!.chunks[0]!;
    t.core.agentLost(copy.agent!, 'crash');
    t.core.take();
    t.core.dispatch(t.now);
    expect(t.sends(t.core.take())).toEqual([]);
    t.core.results(slow.agent!, [t.ok(slow)], t.now);
    expect(t.core.take().filter((x) => x.c === 'outcome').length).toBe(1);
  });

  it('a hung task with a timeout ends in one timeout record: the copy does not hide it, and no further copies are made', () => {
    const { t, slow } = straggling({ timeoutMs: 5000 });
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    const copy = t.sends(t.core.take())[0]!.chunks[0]!;
    t.core.results(slow.agent!, [t.died(slow, 0, 'timeout')], t.now);
    const cmds = t.core.take();
    expect(cmds.filter((x) => x.c === 'cancel').map((x) => (x as { ids: number[] }).ids)).toEqual([[copy.id]]);
    const o = cmds.find((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome')!.outcome;
    expect(o.failures.map((f) => f.error.kind)).toEqual(['timeout']);
  });

  it('deaths of a chunk and of its copy share one attempt budget: with retries 1, two deaths end in a died record', () => {
    const { t, slow } = straggling({ retries: 1 });
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    const copy = t.sends(t.core.take())[0]!.chunks[0]!;
    t.core.results(copy.agent!, [t.died(copy, 0)], t.now);
    const first = t.core.take();
    expect(first.some((x) => x.c === 'log' && /its copy on node .* carries on/.test(x.line))).toBe(true);
    expect(first.some((x) => x.c === 'outcome')).toBe(false);
    t.core.results(slow.agent!, [t.died(slow, 0)], t.now);
    const o = t.core.take().find((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome')!.outcome;
    expect(o.failures.map((f) => [f.error.kind, f.attempts])).toEqual([['died', 2]]);
  });

  it('a task whose timeout is shorter than the straggler limit gets no copy', () => {
    const { t } = straggling({ timeoutMs: 500 });
    t.core.tick(t.advance(STRAGGLER_FLOOR_MS + 100), 250);
    expect(t.sends(t.core.take())).toEqual([]);
  });
});

describe('stop starting', () => {
  it('retries waiting are cancelled, agents told to unqueue, what they dropped comes back cancelled, nothing is sent after', () => {
    const t = setup({ agents: 2, credits: 3 });
    t.job([0, 1, 2, 3, 4, 5]);
    t.core.dispatch(t.now);
    const sent = t.sends(t.core.take()).flatMap((s) => s.chunks);
    expect(sent.length).toBe(6);
    t.core.stopStarting();
    const cmds = t.core.take();
    expect(cmds.filter((x) => x.c === 'unqueue').map((x) => (x as { agent: AgentState }).agent.node).sort()).toEqual(['n1', 'n2']);
    const a1 = t.agents[0]!;
    const dropped = [...a1.inflight.keys()].slice(1);
    t.core.unqueued(a1, dropped);
    const outs = t.core.take().filter((x): x is Extract<Command, { c: 'outcome' }> => x.c === 'outcome');
    expect(outs.length).toBe(dropped.length);
    expect(outs.every((o) => o.outcome.failures[0]!.error.kind === 'cancelled')).toBe(true);
    // A worker death after the stop does not start a retry: the rest is cancelled.
    const running = [...a1.inflight.values()][0]!;
    t.core.results(a1, [t.died(running, 0)], t.now);
    t.core.dispatch(t.now);
    expect(t.sends(t.core.take())).toEqual([]);
  });
});

describe('an agent leaving (its allocation ends, scancel)', () => {
  /** Take the core's commands, keeping the outcomes they carry. */
  const taker = (t: ReturnType<typeof setup>) => {
    const outs: ChunkOutcome[] = [];
    const take = () => {
      const cmds = t.core.take();
      for (const x of cmds) if (x.c === 'outcome') outs.push(x.outcome);
      return cmds;
    };
    /** Let `a` finish everything it holds, round after round, until nothing is left anywhere. */
    const finish = (a: AgentState) => {
      for (let k = 0; k < 20 && a.inflight.size > 0; k++) {
        t.core.results(a, [...a.inflight.values()].map((c) => t.ok(c)), t.now);
        t.core.dispatch(t.now);
        take();
      }
    };
    return { outs, take, finish };
  };

  it('gets no new chunk; what it hands back goes to another node at once, uncounted; what it runs finishes; its close is a leave, not a loss', () => {
    const t = setup({ agents: 2, credits: 3 });
    const k = taker(t);
    t.job([0, 1, 2, 3, 4, 5, 6, 7]);
    t.core.dispatch(t.now);
    expect(t.sent(k.take())).toEqual([['n1', [0, 1, 2]], ['n2', [3, 4, 5]]]);
    const [a1, a2] = t.agents as [AgentState, AgentState];
    // n1's allocation ends soon: task 0 runs on a worker, 1 and 2 were queued there and come back.
    const [running, ...queued] = [...a1.inflight.values()];
    t.core.agentLeaving(a1, queued.map((c) => c.id), 'its allocation ends in 60 s');
    expect(k.take().map((x) => x.c)).toEqual(['log']);
    expect(a1.inflight.size).toBe(1);
    // n2 frees a credit: the handed-back chunks go first, to n2 only, never to n1.
    t.core.results(a2, [t.ok([...a2.inflight.values()][0]!)], t.now);
    t.core.dispatch(t.now);
    expect(t.sent(k.take())).toEqual([['n2', [1]]]);
    t.core.results(a1, [t.ok(running!)], t.now);
    t.core.dispatch(t.now);
    const cmds = k.take();
    expect(t.sent(cmds)).toEqual([]);
    expect(k.outs.map((o) => o.start)).toEqual([3, 0]);
    // Its link closes holding nothing: it left (no loss logged, nothing re-dispatched).
    t.core.agentLost(a1, 'connection closed');
    const end = k.take();
    expect(a1.left).toBe(true);
    expect(end.filter((x) => x.c === 'log').map((x) => (x as { line: string }).line)).toEqual(['node n1: left the pool']);
    // Every task ends exactly once, each on its first attempt.
    k.finish(a2);
    expect(k.outs.map((o) => o.start).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(k.outs.every((o) => o.failures.length === 0 && o.parts.length === 1 && o.parts[0]!.attempts === 1)).toBe(true);
  });

  it('leaving at once (SIGTERM): running chunks are handed back too, and so are chunks that were on their way', () => {
    const t = setup({ agents: 2, credits: 2 });
    const k = taker(t);
    t.job([0, 1, 2, 3]);
    t.core.dispatch(t.now);
    k.take();
    const [a1, a2] = t.agents as [AgentState, AgentState];
    const held = [...a1.inflight.keys()];
    t.core.agentLeaving(a1, [held[0]!], 'SIGTERM');
    // A second word hands back the rest (what reached the agent after it said it leaves).
    t.core.agentLeaving(a1, [held[1]!], 'SIGTERM');
    expect(a1.inflight.size).toBe(0);
    t.core.agentLost(a1, 'connection closed');
    expect(a1.left).toBe(true);
    k.take();
    k.finish(a2);
    expect(k.outs.map((o) => o.start).sort()).toEqual([0, 1, 2, 3]);
    expect(k.outs.map((o) => o.parts[0]!.node)).toEqual(['n2', 'n2', 'n2', 'n2']);
    expect(k.outs.every((o) => o.parts[0]!.attempts === 1 && !o.parts[0]!.redispatched)).toBe(true);
  });

  it('a leaving agent that dies holding chunks is a loss: those are re-dispatched as for any node', () => {
    const t = setup({ agents: 2, credits: 1 });
    t.job([0, 1]);
    t.core.dispatch(t.now);
    t.core.take();
    const a1 = t.agents[0]!;
    t.core.agentLeaving(a1, [], 'its allocation ends in 60 s');
    t.core.agentLost(a1, 'connection reset');
    const cmds = t.core.take();
    expect(a1.left).toBe(false);
    expect(cmds.some((x) => x.c === 'log' && x.line.includes('agent lost') && x.line.includes('1 chunk(s) re-dispatched'))).toBe(true);
  });

  it('after a stop, what a leaving agent hands back is reported cancelled, not run again', () => {
    const t = setup({ agents: 1, credits: 2 });
    const k = taker(t);
    t.job([0, 1]);
    t.core.dispatch(t.now);
    k.take();
    t.core.stopStarting();
    const a1 = t.agents[0]!;
    t.core.agentLeaving(a1, [...a1.inflight.keys()], 'SIGTERM');
    t.core.dispatch(t.now);
    expect(t.sends(k.take())).toEqual([]);
    expect(k.outs.flatMap((o) => o.failures.map((f) => f.error.kind))).toEqual(['cancelled', 'cancelled']);
  });
});

describe('a node handing chunks back (handBack: their items went to a worker that ended first)', () => {
  it('they go first in the queue, to any node with credit (this one too), uncounted; the node stays in the pool', () => {
    const t = setup({ agents: 2, credits: 3 });
    const outs: ChunkOutcome[] = [];
    const take = () => {
      const cmds = t.core.take();
      for (const x of cmds) if (x.c === 'outcome') outs.push(x.outcome);
      return cmds;
    };
    t.job([0, 1, 2, 3, 4, 5, 6, 7]);
    t.core.dispatch(t.now);
    expect(t.sent(take())).toEqual([['n1', [0, 1, 2]], ['n2', [3, 4, 5]]]);
    const [a1, a2] = t.agents as [AgentState, AgentState];
    const [first, ...waiting] = [...a1.inflight.values()];
    t.core.results(a1, [t.ok(first!)], t.now);
    t.core.handBack(a1, waiting.map((c) => c.id));
    expect(a1.inflight.size).toBe(0);
    t.core.dispatch(t.now);
    // Before the call's next chunks (6, 7), and to n1 again: it is not leaving.
    expect(t.sent(take())).toEqual([['n1', [1, 2, 6]]]);
    expect(a1.leaving).toBe(false);
    for (let k = 0; k < 10 && (a1.inflight.size > 0 || a2.inflight.size > 0); k++) {
      for (const a of [a1, a2]) t.core.results(a, [...a.inflight.values()].map((c) => t.ok(c)), t.now);
      t.core.dispatch(t.now);
      take();
    }
    expect(outs.map((o) => o.start).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(outs.every((o) => o.failures.length === 0 && o.parts.length === 1 && o.parts[0]!.attempts === 1)).toBe(true);
  });

  it('after a stop they are reported cancelled, not run again', () => {
    const t = setup({ agents: 1, credits: 2 });
    const outs: ChunkOutcome[] = [];
    t.job([0, 1]);
    t.core.dispatch(t.now);
    t.core.take();
    const a1 = t.agents[0]!;
    t.core.stopStarting();
    t.core.handBack(a1, [...a1.inflight.keys()]);
    t.core.dispatch(t.now);
    const cmds = t.core.take();
    for (const x of cmds) if (x.c === 'outcome') outs.push(x.outcome);
    expect(t.sends(cmds)).toEqual([]);
    expect(outs.flatMap((o) => o.failures.map((f) => f.error.kind))).toEqual(['cancelled', 'cancelled']);
  });
});

describe('liveness', () => {
  it('an agent silent past lostAfterMs is closed; one that spoke is not', () => {
    const t = setup({ agents: 2, lostAfterMs: 5000 });
    t.core.tick(t.advance(100), 250);
    t.core.tick(t.advance(250), 250);
    for (let i = 0; i < 20; i++) {
      t.core.heard(t.agents[1]!, t.now);
      t.core.tick(t.advance(250), 250);
    }
    const closes = t.core.take().filter((x) => x.c === 'close');
    expect(closes.map((x) => (x as { agent: AgentState }).agent.node)).toEqual(['n1']);
  });

  it('the coordinator\'s own stall is not blamed on agents: silence counts from when it ran again', () => {
    const t = setup({ agents: 1, lostAfterMs: 5000 });
    t.core.tick(t.advance(250), 250);
    // This process was blocked for 33 s: the messages agents sent meanwhile are still unread.
    t.core.tick(t.advance(33_000), 250);
    expect(t.core.take().filter((x) => x.c === 'close')).toEqual([]);
    t.core.heard(t.agents[0]!, t.now);
    t.core.tick(t.advance(250), 250);
    expect(t.core.take().filter((x) => x.c === 'close')).toEqual([]);
  });
});

describe('automatic chunk sizes', () => {
  it('start with one single-item probe per worker, then follow item durations: tiny items make big chunks, mixed ones small', () => {
    const t = setup({ agents: 1, workers: 2, credits: 1000 });
    t.job(Array.from({ length: 100_000 }, (_, i) => i), { chunksize: 0 });
    t.core.dispatch(t.now);
    const probes = t.sends(t.core.take()).flatMap((s) => s.chunks);
    expect(probes.map((c) => c.items.length)).toEqual([1, 1]);
    t.core.results(t.agents[0]!, [t.ok(probes[0]!, 0, 0.01)], t.now);
    t.core.take();
    t.core.dispatch(t.now);
    const next = t.sends(t.core.take()).flatMap((s) => s.chunks);
    expect(next[0]!.items.length).toBeGreaterThan(1000);

    const m = setup({ agents: 1, workers: 2, credits: 1000 });
    m.job(Array.from({ length: 500 }, (_, i) => i), { chunksize: 0 });
    m.core.dispatch(m.now);
    const [p1, p2] = m.sends(m.core.take()).flatMap((s) => s.chunks);
    m.core.results(m.agents[0]!, [m.ok(p1!, 0, 2), m.ok(p2!, 0, 500)], m.now);
    m.core.take();
    m.core.dispatch(m.now);
    const small = m.sends(m.core.take()).flatMap((s) => s.chunks);
    expect(Math.max(...small.map((c) => c.items.length))).toBe(1);
  });
});

describe('chunk targets with many workers', () => {
  it('aim at 50 ms of work for a few workers, longer when chunks would come back faster than one coordinator hands them out', async () => {
    const { chunkTargetMs, durationChunksize, ItemTime } = await import('../src/scheduler/chunking.js');
    expect(chunkTargetMs(2)).toBe(50);
    expect(Math.round(chunkTargetMs(64_000))).toBe(2133);
    const t = new ItemTime();
    for (let i = 0; i < 10; i++) t.add(100);
    expect(durationChunksize(t, 1000, chunkTargetMs(2))).toBe(1);
    expect(durationChunksize(t, 1000, chunkTargetMs(64_000))).toBe(21);
  });
});

describe('durations learned by an earlier call', () => {
  it('a later call of the same function starts at speed: no single-item probes, chunks sized from what was learned', async () => {
    const { ItemTime } = await import('../src/scheduler/chunking.js');
    const t = setup({ agents: 1, workers: 2, credits: 1000 });
    const prior = new ItemTime();
    for (let i = 0; i < 5; i++) prior.add(0.001, 10_000);
    const { job } = t.job(Array.from({ length: 100_000 }, (_, i) => i), { chunksize: 0 });
    job.seed(prior);
    t.core.dispatch(t.now);
    const first = t.sends(t.core.take()).flatMap((s) => s.chunks);
    expect(first[0]!.items.length).toBe(12_500); // multiprocessing's cap: 100,000 / (2 workers × 4)
    expect(first.length).toBeGreaterThan(2);
  });
});
