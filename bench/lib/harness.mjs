// The runner's side of a measurement: start one child per repetition, bound it in time, read its JSON line.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Median of numbers (mean of the middle two for an even count); NaN for none. */
export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Kills a child's whole process group (pool workers included); quiet when it is already gone. */
function killGroup(pid, signal = 'SIGKILL') {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Runs one command in its own process group, at most `timeoutMs`, and returns
 * { ok, wallSeconds, json, error, timedOut, code, signal, stdout, stderr }.
 * `json` is the last stdout line that parses as a JSON object; a child that prints
 * {ok:false,error} or exits non-zero gives ok:false and the error text.
 */
export function runChild(cmd, args, { timeoutMs = 60_000, cwd, env, stdinFile } = {}) {
  return new Promise((resolve) => {
    const stdinFd = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
    let child;
    const t0 = performance.now();
    try {
      child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: [stdinFd, 'pipe', 'pipe'], detached: true });
    } catch (err) {
      if (typeof stdinFd === 'number') closeSync(stdinFd);
      resolve({ ok: false, error: `cannot start ${cmd}: ${err.message}`, timedOut: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    let wallSeconds = NaN;
    let timedOut = false;
    let exitInfo = null;
    let spawnError = null;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout = (stdout + d).slice(-1_000_000)));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-100_000)));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (err) => (spawnError = err));
    child.on('exit', (code, signal) => {
      wallSeconds = (performance.now() - t0) / 1000;
      exitInfo = { code, signal };
      clearTimeout(timer);
      // Leftover grandchildren (a pool that outlived its script) must not disturb the next measurement.
      killGroup(child.pid);
    });
    child.on('close', () => {
      clearTimeout(timer);
      if (typeof stdinFd === 'number') closeSync(stdinFd);
      const { code, signal } = exitInfo ?? { code: null, signal: null };
      const json = lastJsonLine(stdout);
      let ok = !timedOut && !spawnError && code === 0;
      let error;
      if (spawnError) error = spawnError.code === 'ENOENT' ? `${cmd} not found` : spawnError.message;
      else if (timedOut) error = `timed out after ${+(timeoutMs / 1000).toFixed(1)} s`;
      else if (json && json.ok === false) error = json.error ?? 'failed';
      else if (code !== 0) error = lastLine(stderr) || `exit ${code ?? signal}`;
      if (json && json.ok === false) ok = false;
      resolve({ ok, wallSeconds, json, error, timedOut, code, signal, stdout, stderr });
    });
  });
}

function lastJsonLine(text) {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (!line.startsWith('{')) continue;
    try {
      return JSON.parse(line);
    } catch {
      /* not JSON */
    }
  }
  return null;
}

function lastLine(text) {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  // Prefer the error line of a stack trace over its last frame.
  const errLine = [...lines].reverse().find((l) => /^(\w*Error|Error)\b|^error:/i.test(l));
  return errLine ?? lines.at(-1) ?? '';
}

/**
 * Runs repetitions interleaved: for each repetition, every block in turn (the order rotated by one
 * each repetition, so no contender always goes first), each run in its own child.
 * A run is { key, cmd, args, timeoutMs?, stdinFile?, reps? (at most this many), value(result) -> number,
 *            skip?: string (never run; the reason), stopOnError?: true (no more reps after one failure) }.
 * A run stops early after a timeout or a second failure, to keep the whole bench within its time.
 * `unit` and `better` ('higher' | 'lower') let a timeout's error say what it implies (`< 35 MB/s`).
 * `alternate`: the runs inside each block go in reverse order every other repetition (a pair whose
 * ratio is taken: neither always runs first, so a drift in the machine's load does not favour one).
 * Returns Map key -> { values: number[], results: object[], errors: string[], skipped?: string, planned, note? }.
 */
export async function measure({ reps, blocks, cwd, unit, better = 'higher', alternate = false, log = () => {} }) {
  const out = new Map();
  for (const block of blocks) {
    for (const run of block) {
      const planned = Math.min(reps, run.reps ?? reps);
      out.set(run.key, { values: [], results: [], errors: [], skipped: run.skip, planned, runs: 0 });
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    const order = blocks.map((_, i) => blocks[(i + rep) % blocks.length]);
    for (const block of order) {
      for (const run of alternate && rep % 2 === 1 ? [...block].reverse() : block) {
        const rec = out.get(run.key);
        if (rec.skipped || rec.runs >= rec.planned || rec.stop) continue;
        rec.runs++;
        const res = await runChild(run.cmd, run.args, { timeoutMs: run.timeoutMs, cwd, stdinFile: run.stdinFile });
        if (res.ok) {
          let v;
          try {
            v = run.value(res);
          } catch (err) {
            res.ok = false;
            res.error = err.message;
          }
          if (res.ok && Number.isFinite(v)) {
            rec.values.push(v);
            rec.results.push({ wallSeconds: res.wallSeconds, ...(res.json ?? {}), value: v });
            log(`  ${run.key} rep ${rep + 1}: ${fmtNum(v)}`);
            // A run that took over half its bound gets no more repetitions: the bench must stay short.
            if (res.wallSeconds * 1000 > (run.timeoutMs ?? 60_000) / 2 && rec.runs < rec.planned) {
              rec.stop = true;
              rec.note = `stopped after a slow repetition (${res.wallSeconds.toFixed(0)} s)`;
            }
            continue;
          }
          if (res.ok) res.error = `no figure (${JSON.stringify(res.json)})`;
        }
        if (res.timedOut && unit) {
          // What the timeout says about the figure: a rate below, or a time above, this.
          const t = run.timeoutMs / 1000;
          let bound = NaN;
          try {
            bound = run.value({ json: { ...(res.json ?? {}), seconds: t }, wallSeconds: t });
          } catch {
            /* no bound */
          }
          if (Number.isFinite(bound)) res.error += ` (${better === 'lower' ? '>' : '<'} ${fmtNum(bound)} ${unit})`;
        }
        rec.errors.push(res.error);
        rec.results.push({ error: res.error });
        log(`  ${run.key} rep ${rep + 1}: error: ${res.error}`);
        // A timeout or a deterministic failure would only repeat: do not spend the time budget on it.
        if (res.timedOut || run.stopOnError || rec.errors.length >= 2) rec.stop = true;
        if (res.timedOut && rec.runs < rec.planned) rec.note = 'no more repetitions after a timeout';
      }
    }
  }
  return out;
}

function fmtNum(v) {
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(4);
}
