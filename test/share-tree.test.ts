// The relay tree for shared values (pure): who fetches from whom, and what happens when one goes.
import { describe, expect, it } from 'vitest';
import { ShareTree } from '../dist/scheduler/share-tree.js';

/** Run a tree to the end as agents report: every assigned one opens its relay port at once, then completes in order. */
function settle(t: ShareTree, agents: number[]): { sources: Map<number, number>; depth: Map<number, number>; rounds: number } {
  const sources = new Map<number, number>();
  const depth = new Map<number, number>([[0, 0]]);
  for (const a of agents) t.want(a);
  let rounds = 0;
  for (let pending = [...agents]; pending.length && rounds < 10_000; rounds++) {
    const got = t.assign();
    for (const { agent, source } of got) {
      expect(sources.has(agent)).toBe(false); // one source each, while nothing fails
      sources.set(agent, source);
      depth.set(agent, depth.get(source)! + 1);
      t.canRelay(agent);
    }
    if (got.length === 0) {
      // Nothing new could be placed: the oldest receiving agent completes (frees its slot at its source).
      const next = pending.find((a) => sources.has(a));
      expect(next).toBeDefined();
      t.complete(next!);
      pending = pending.filter((a) => a !== next);
    }
  }
  return { sources, depth, rounds };
}

describe('ShareTree', () => {
  it('1,000 agents asking at once: each gets exactly one source, the coordinator serves 2, depth stays logarithmic', () => {
    const t = new ShareTree(2, 2);
    const agents = Array.from({ length: 1000 }, (_, i) => i + 1);
    const { sources, depth } = settle(t, agents);
    expect(sources.size).toBe(1000);
    expect([...sources.values()].filter((s) => s === 0)).toHaveLength(2);
    expect(t.directAssignments).toBe(2);
    expect(Math.max(...depth.values())).toBeLessThanOrEqual(10); // log2(1000) ≈ 10: a binary tree, not a chain
    // no agent serves more than 2 at once (each served at most 2 in this run: nobody completed before it filled)
    const kids = new Map<number, number>();
    for (const s of sources.values()) if (s) kids.set(s, (kids.get(s) ?? 0) + 1);
    expect(Math.max(...kids.values())).toBeLessThanOrEqual(2);
  });

  it('agents that cannot relay (in-process, no port) are all served by the coordinator, 2 at a time', () => {
    const t = new ShareTree(2, 2);
    for (const a of [1, 2, 3, 4, 5]) t.want(a);
    expect(t.assign()).toEqual([
      { agent: 1, source: 0 },
      { agent: 2, source: 0 },
    ]);
    expect(t.assign()).toEqual([]);
    t.complete(1);
    expect(t.assign()).toEqual([{ agent: 3, source: 0 }]);
  });

  it('a complete holder is preferred to one still receiving; a late joiner takes a complete one', () => {
    const t = new ShareTree(2, 1);
    t.want(1);
    expect(t.assign()).toEqual([{ agent: 1, source: 0 }]);
    t.canRelay(1);
    t.want(2);
    expect(t.assign()).toEqual([{ agent: 2, source: 1 }]); // 1 still receiving: pipelined
    t.canRelay(2);
    t.complete(2); // (2 may finish first if 1 stalls; only its slot at 1 frees)
    t.want(3);
    expect(t.assign()).toEqual([{ agent: 3, source: 2 }]); // complete before receiving
  });

  it('a lost parent: its children wait again and are placed elsewhere; the lost one is never a source again', () => {
    const t = new ShareTree(2, 1);
    t.want(1);
    t.assign();
    t.canRelay(1);
    t.complete(1);
    for (const a of [2, 3]) t.want(a);
    expect(t.assign()).toEqual([
      { agent: 2, source: 1 },
      { agent: 3, source: 1 },
    ]);
    t.canRelay(2);
    t.canRelay(3);
    t.want(4);
    expect(t.assign()).toEqual([{ agent: 4, source: 2 }]);
    expect(t.lost(1).sort()).toEqual([2, 3]);
    // 2 serves 4, so it may take only a complete holder or the coordinator; 3 has no children.
    const again = t.assign();
    expect(again).toContainEqual({ agent: 2, source: 0 });
    expect(again.find((x) => x.agent === 3)?.source).not.toBe(1);
    expect(again.every((x) => x.source !== 1)).toBe(true);
  });

  it('an agent with children never takes a parent that is still receiving (it could be its own descendant)', () => {
    const t = new ShareTree(2, 1);
    t.want(1);
    t.assign(); // 1 ← coordinator
    t.canRelay(1);
    t.want(2);
    t.assign(); // 2 ← 1
    t.canRelay(2);
    t.want(3);
    t.want(4);
    expect(t.assign()).toEqual([
      { agent: 3, source: 1 },
      { agent: 4, source: 2 },
    ]);
    t.canRelay(4);
    // 2 loses its source (1 failed it): 2 serves 4, which is receiving and open, so 2 must not take 4.
    t.failed(2);
    expect(t.assign()).toEqual([]); // coordinator busy with 1, no complete holder: 2 waits
    t.complete(1); // the coordinator's stream frees… but 1 failed a child: it serves no one now
    const a = t.assign();
    expect(a).toEqual([{ agent: 2, source: 0 }]);
  });

  it('a parent that failed a child serves no one else; the child is placed again', () => {
    const t = new ShareTree(2, 1);
    t.want(1);
    t.assign();
    t.canRelay(1);
    t.complete(1);
    t.want(2);
    expect(t.assign()).toEqual([{ agent: 2, source: 1 }]);
    t.failed(2);
    expect(t.assign()).toEqual([{ agent: 2, source: 0 }]);
    t.want(3);
    expect(t.assign()).toEqual([]); // 1 is no longer a source, the coordinator's one stream is busy
  });
});
