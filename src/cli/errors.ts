// Exit statuses of the slurmpool command and the one error type its commands throw.

/** Exit statuses, documented in docs/cli.md. */
export const EXIT = {
  /** Every task succeeded. */
  ok: 0,
  /** Some tasks failed; their indices are listed. */
  failed: 1,
  /** Bad usage or input, found before any task ran. */
  usage: 2,
  /** Stopped early (signal, time limit): resumable with --resume. */
  stopped: 3,
  /** Workers or agents could not start, or every node was lost. */
  launch: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports in one message, with the exit status it ends with and an optional hint. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.usage,
    readonly hint?: string,
  ) {
    super(message);
  }
}
