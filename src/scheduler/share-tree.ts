// Who sends one shared value to whom: a tree through the agents, so that the coordinator sends each
// value a few times, not once per node. Pure: agent ids in, assignments out; no sockets, no clock.
//
// Every agent that needs the value waits here until it is given a source: another agent that holds
// or is receiving the value and has a free relay slot (at most `fanout` children at once), or else
// the coordinator (at most `direct` streams at once). Agents relay as the pieces arrive, so a
// value crosses a tree of depth log_fanout(N) in about the time of one copy plus one piece per level.

/** Children an agent serves one value to at once. */
export const RELAY_FANOUT = 2;
/** The coordinator's own streams of one value at once. */
export const DIRECT_STREAMS = 2;

/** 0 = the coordinator. */
export type SourceId = number;

interface Member {
  /** Where it gets the value from now; -1 while waiting for a source. */
  source: SourceId;
  complete: boolean;
  /** Its relay port is known (it may serve others). */
  relays: boolean;
  /** Children it serves now. */
  children: number;
}

export interface Assignment {
  agent: number;
  /** 0: the coordinator streams it; otherwise the agent to fetch from. */
  source: SourceId;
}

export class ShareTree {
  private readonly members = new Map<number, Member>();
  /** Agents waiting for a source, in the order they asked. */
  private readonly waiting = new Set<number>();
  /** Agents that may take one more child now: complete ones first (they can never stall a child). */
  private readonly openComplete = new Set<number>();
  private readonly openReceiving = new Set<number>();
  /** The coordinator's streams now. */
  private direct = 0;
  /** Bytes' worth of copies the coordinator was asked to send (assignments to it), for the egress check. */
  directAssignments = 0;

  constructor(
    readonly fanout = RELAY_FANOUT,
    readonly directMax = DIRECT_STREAMS,
  ) {}

  /** An agent needs the value (it joined, or the value was just shared). */
  want(agent: number): void {
    if (this.members.has(agent)) return;
    this.members.set(agent, { source: -1, complete: false, relays: false, children: 0 });
    this.waiting.add(agent);
  }

  /** The agent's relay port is open: it may serve the value to others. */
  canRelay(agent: number): void {
    const m = this.members.get(agent);
    if (!m || m.relays) return;
    m.relays = true;
    this.reopen(agent, m);
  }

  /** The agent holds the whole value. */
  complete(agent: number): void {
    const m = this.members.get(agent);
    if (!m || m.complete) return;
    this.release(m);
    m.complete = true;
    m.source = -1;
    this.waiting.delete(agent);
    this.reopen(agent, m);
  }

  /**
   * Fetching from its source failed (the parent's port refused it, the link broke). It waits for a
   * new source; a parent that failed a child serves no one else (it may be broken).
   */
  failed(agent: number): void {
    const m = this.members.get(agent);
    if (!m || m.complete) return;
    const parent = m.source > 0 ? this.members.get(m.source) : undefined;
    this.release(m);
    if (parent && m.source > 0) {
      parent.relays = false;
      this.openComplete.delete(m.source);
      this.openReceiving.delete(m.source);
    }
    m.source = -1;
    this.openReceiving.delete(agent); // stalled until it has a new source: no new children meanwhile
    this.waiting.add(agent);
  }

  /** The agent is gone: its children wait for a new source. Returns them. */
  lost(agent: number): number[] {
    const m = this.members.get(agent);
    if (!m) return [];
    this.release(m);
    this.members.delete(agent);
    this.waiting.delete(agent);
    this.openComplete.delete(agent);
    this.openReceiving.delete(agent);
    const orphans: number[] = [];
    for (const [id, c] of this.members) {
      if (c.source === agent) {
        c.source = -1;
        this.openReceiving.delete(id);
        this.waiting.add(id);
        orphans.push(id);
      }
    }
    return orphans;
  }

  /** Sources for as many waiting agents as there is room for now, in the order they asked. */
  assign(): Assignment[] {
    const out: Assignment[] = [];
    for (const agent of this.waiting) {
      const m = this.members.get(agent)!;
      const parent = this.pickParent(agent, m);
      if (parent > 0) {
        const p = this.members.get(parent)!;
        p.children++;
        if (p.children >= this.fanout) {
          this.openComplete.delete(parent);
          this.openReceiving.delete(parent);
        }
      } else if (this.direct < this.directMax) {
        this.direct++;
        this.directAssignments++;
      } else if (this.openComplete.size === 0 && this.openReceiving.size === 0) {
        break; // no room anywhere: the rest wait, in order
      } else {
        continue; // only a parent it may not take (its own subtree) has room: the next may
      }
      m.source = parent;
      this.waiting.delete(agent);
      this.reopen(agent, m);
      out.push({ agent, source: parent });
    }
    return out;
  }

  /** Agents that hold or receive the value now, and those still waiting for a source. */
  get size(): { members: number; waiting: number; direct: number } {
    return { members: this.members.size, waiting: this.waiting.size, direct: this.direct };
  }

  /** Where an agent gets the value from now (-1: waiting or complete; undefined: not a member). */
  sourceOf(agent: number): SourceId | undefined {
    return this.members.get(agent)?.source;
  }

  /**
   * A parent for a waiting agent: a complete holder first, then one still receiving — but an agent
   * that serves children itself takes only a complete holder, since one still receiving might be its
   * own descendant (and then both would wait for each other). 0 = none.
   */
  private pickParent(agent: number, m: Member): number {
    for (const p of this.openComplete) if (p !== agent) return p;
    if (m.children > 0) return 0;
    for (const p of this.openReceiving) if (p !== agent) return p;
    return 0;
  }

  /** A child stopped using its source: the source has a free slot again. */
  private release(m: Member): void {
    if (m.source === 0) this.direct--;
    else if (m.source > 0) {
      const p = this.members.get(m.source);
      if (p) {
        p.children--;
        this.reopen(m.source, p);
      }
    }
  }

  private reopen(id: number, m: Member): void {
    if (!m.relays || m.children >= this.fanout) return;
    if (m.complete) {
      this.openReceiving.delete(id);
      this.openComplete.add(id);
    } else if (m.source !== -1) {
      this.openReceiving.add(id); // receiving now: a child gets what it has and then each piece as it comes
    }
  }
}
