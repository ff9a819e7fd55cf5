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
