// The pool's input for one CLI run: the tasks still to do, read lazily, so that a stop or a time
// limit simply ends it. Records come back numbered by feed position; originalIndex maps them back.

/** Why the feed stopped handing out tasks. */
export interface StopReason {
  /** "SIGTERM", "SIGUSR1", "time", … */
  kind: string;
  message: string;
}

/**
 * An iterable without a length (so the pool sizes chunks adaptively, about 50 ms of work each) over
 * the task indices in [0, total) that are not in `done`.
 */
export class Feed implements Iterable<unknown> {
  private next = 0;
  private readonly positions: number[] = [];
  /** Tasks handed to the pool so far. */
  handedOut = 0;
  stopped: StopReason | null = null;
  /** Asked before each task is handed out; a reason stops the feed for good. */
  gate: (() => StopReason | null) | null = null;

  /** Tasks this run has to do. */
  readonly pending: number;

  constructor(
    readonly total: number,
    private readonly done: ReadonlySet<number>,
    private readonly make: (index: number) => unknown,
  ) {
    let skip = 0;
    for (const i of done) if (i < total) skip++;
    this.pending = total - skip;
  }

  /** Hand out no more tasks. */
  stop(reason: StopReason): void {
    this.stopped ??= reason;
  }

  /** The task index of feed position `pos` (a record's index). */
  originalIndex(pos: number): number {
    return this.done.size === 0 ? pos : (this.positions[pos] ?? pos);
  }

  /** Tasks not yet handed out when the feed stopped. */
  get notHandedOut(): number {
    return this.pending - this.handedOut;
  }

  [Symbol.iterator](): Iterator<unknown> {
    return {
      next: (): IteratorResult<unknown> => {
        if (this.stopped) return { done: true, value: undefined };
        while (this.next < this.total && this.done.has(this.next)) this.next++;
        if (this.next >= this.total) return { done: true, value: undefined };
        const why = this.gate?.();
        if (why) {
          this.stop(why);
          return { done: true, value: undefined };
        }
        const i = this.next++;
        // Nothing skipped: position and index are the same, and millions of tasks need no table.
        if (this.done.size > 0) this.positions.push(i);
        this.handedOut++;
        return { done: false, value: this.make(i) };
      },
      return: (): IteratorResult<unknown> => ({ done: true, value: undefined }),
    };
  }
}
