// A Link moves whole messages between a coordinator and one agent; it knows nothing of their meaning.

export interface Link<Out, In> {
  /** Queue one message for the peer. Never throws for a closed link; the message is dropped. */
  send(msg: Out): void;
  /** Set the handler for messages from the peer (one handler). */
  onMessage(handler: (msg: In) => void): void;
  /** Called once when the link closes, with the reason when it was not a plain close. */
  onClose(handler: (reason?: Error) => void): void;
  close(reason?: Error): void;
  /**
   * Send one results message whose list is `results` followed by the elements of each of `encoded`
   * (msgpack arrays of results as workers encoded them), without decoding them: links that write
   * msgpack frames (TCP) have it; the others are sent objects.
   */
  sendResults?(results: unknown[], encoded: Uint8Array[]): void;
  /** Resolves when the link can take more bulk data (bounded buffering for large transfers). */
  drained?(): Promise<void>;
  /** Bytes sent so far, where the link counts them. */
  readonly bytesOut?: number;
  /** Who is on the other side, for log lines. */
  readonly peer: string;
  readonly closed: boolean;
}
