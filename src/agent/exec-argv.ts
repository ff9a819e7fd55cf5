// Which of this process's Node flags worker threads get: those a worker accepts.

/** Flags about how the main script is given (or what the process does instead of running it); a worker given them fails to start. */
const MAIN_ONLY = new Set(['--input-type', '--eval', '-e', '--print', '-p', '--check', '-c', '--interactive', '-i', '--test', '--watch', '--watch-path', '--watch-preserve-output']);
/** Of those, the ones whose value may come as the next argument. */
const TAKES_VALUE = new Set(['--input-type', '--eval', '-e', '--print', '-p', '--watch-path']);

/** `process.execArgv` without the flags worker threads reject (e.g. `--input-type=module` under `node --input-type=module -e …`). */
export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (!MAIN_ONLY.has(flag) && !/^--test-/.test(flag)) {
      out.push(a);
      continue;
    }
    if (eq < 0 && TAKES_VALUE.has(flag) && i + 1 < argv.length) i++;
  }
  return out;
}

/** Flags Node refused for worker threads in this process (per-process V8 flags such as --trace-gc): not passed again. */
const refused = new Set<string>();

/**
 * Construct a worker with this process's flags, less those Node refuses for threads: it names them
 * in ERR_WORKER_INVALID_EXEC_ARGV (per-process V8 flags such as --trace-gc or --expose-gc, which the
 * threads share with the process anyway); they are dropped and the worker made again.
 */
export function withWorkerFlags<T>(make: (execArgv: string[]) => T, argv: readonly string[] = process.execArgv): T {
  for (let tries = 0; ; tries++) {
    const flags = workerExecArgv(argv).filter((a) => !refused.has(a.split('=')[0]!) && !refused.has(a));
    try {
      return make(flags);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const m = err.code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? /flags: (.*)$/.exec(err.message) : null;
      if (!m || tries > 2) throw e;
      const before = refused.size;
      for (const f of m[1]!.split(',').map((x) => x.trim()).filter(Boolean)) {
        refused.add(f);
        refused.add(f.split('=')[0]!);
      }
      if (refused.size === before) throw e;
    }
  }
}
