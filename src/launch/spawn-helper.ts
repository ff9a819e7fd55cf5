// The only file that runs in the spawn helper: a small child process that starts agent processes
// (srun steps, emulated agents) for the coordinator, so that a thousand forks never block the
// coordinator's event loop (a fork from a large process costs it 10-40 ms of CPU each).
//
// IPC in: {t:'env', env, secret} once (the base environment, and the secret that each child gets
// on its standard input: over pipes only, never a command line or an environment), {t:'spawn', key,
// cmd, args, env, detached}, {t:'kill', key, signal}.
// IPC out: {t:'stderr', key, data}, {t:'exit', key, code, signal, error}.
// Agents' stdout goes to this process's stderr (the coordinator's), never its stdout, which may carry results.
import { spawn, type ChildProcess } from 'node:child_process';

type In =
  | { t: 'env'; env: Record<string, string>; secret: string | null }
  | { t: 'spawn'; key: string; cmd: string; args: string[]; env: Record<string, string>; detached: boolean }
  | { t: 'kill'; key: string; signal: NodeJS.Signals };

const send = (m: unknown): void => {
  if (process.connected) process.send!(m);
};
let base: Record<string, string> = {};
/** Written to each child's standard input, one line, then closed: never an environment variable or argument. */
let secret: string | null = null;
const children = new Map<string, ChildProcess>();

process.on('message', (m: In) => {
  switch (m.t) {
    case 'env':
      base = m.env;
      secret = m.secret;
      break;
    case 'spawn': {
      let child: ChildProcess;
      try {
        child = spawn(m.cmd, m.args, { env: { ...base, ...m.env }, stdio: [secret === null ? 'ignore' : 'pipe', 2, 'pipe'], detached: m.detached });
        if (secret !== null) {
          child.stdin?.on('error', () => undefined);
          child.stdin?.end(`${secret}\n`);
        }
      } catch (e) {
        send({ t: 'exit', key: m.key, code: null, signal: null, error: (e as Error).message });
        return;
      }
      children.set(m.key, child);
      child.stderr?.on('data', (d: Buffer) => send({ t: 'stderr', key: m.key, data: d.toString('utf8') }));
      let reported = false;
      const report = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
        if (reported) return;
        reported = true;
        children.delete(m.key);
        send({ t: 'exit', key: m.key, code, signal, ...(error ? { error } : {}) });
      };
      child.on('error', (e: NodeJS.ErrnoException) => report(null, null, e.code === 'ENOENT' ? `ENOENT: ${m.cmd} not found on PATH` : e.message));
      // 'close' (not 'exit'): the stderr pipe is drained, so the last words reach the coordinator before the exit.
      child.on('close', (code, signal) => report(code, signal));
      break;
    }
    case 'kill': {
      const c = children.get(m.key);
      if (c && c.exitCode === null && c.signalCode === null) c.kill(m.signal);
      break;
    }
  }
});

// Ctrl-C on a terminal goes to the whole foreground group: the coordinator decides what stops.
process.on('SIGINT', () => undefined);
// The coordinator is gone: the agents notice their closed connections and exit by themselves.
process.on('disconnect', () => process.exit(0));
