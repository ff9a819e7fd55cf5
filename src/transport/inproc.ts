// Two ends of an in-process link: messages are handed over as objects, on a later microtask.
import type { Link } from './link.js';

class InprocEnd<Out, In> implements Link<Out, In> {
  other!: InprocEnd<In, Out>;
  private handler: ((msg: In) => void) | undefined;
  private closeHandler: ((reason?: Error) => void) | undefined;
  private inbox: In[] = [];
  private scheduled = false;
  closed = false;
  constructor(readonly peer: string) {}

  send(msg: Out): void {
    if (this.closed) return;
    this.other.deliver(msg);
  }

  private deliver(msg: In): void {
    if (this.closed) return;
    this.inbox.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const msgs = this.inbox;
    this.inbox = [];
    for (const m of msgs) {
      if (this.closed) return;
      this.handler?.(m);
    }
  }

  onMessage(handler: (msg: In) => void): void {
    this.handler = handler;
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandler = handler;
  }

  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.closeHandler?.(reason));
    this.other.close(reason);
  }
}

/** A connected pair: what one end sends, the other receives. */
export function inprocPair<A, B>(peerOfA: string, peerOfB: string): [Link<A, B>, Link<B, A>] {
  const a = new InprocEnd<A, B>(peerOfA);
  const b = new InprocEnd<B, A>(peerOfB);
  a.other = b;
  b.other = a;
  return [a, b];
}
