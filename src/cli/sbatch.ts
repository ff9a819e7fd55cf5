// Reading a batch script as sbatch does: its interpreter line and the #SBATCH options before the first command.
import { CliError } from './errors.js';

/** The #SBATCH options emulation uses. */
export interface SbatchDirectives {
  nodes?: number;
  cpusPerTask?: number;
  ntasksPerNode?: number;
  ntasks?: number;
  time?: string;
  jobName?: string;
  /** --signal=[{R|B}:]SIG[@TIME] */
  signal?: { batchOnly: boolean; signal: string; beforeSec: number };
  /** Line numbers and text of options read, for messages. */
  seen: string[];
}

const SHORT: Record<string, string> = { N: 'nodes', c: 'cpus-per-task', n: 'ntasks', t: 'time', J: 'job-name' };

/** Split an #SBATCH line's options as the shell would (quotes kept simple). */
function words(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function count(v: string, what: string, line: number): number {
  // "2" or a range "2-4": Slurm allocates at least the minimum; emulation uses it.
  const m = /^(\d+)(?:-\d+)?$/.exec(v.trim());
  if (!m || Number(m[1]) < 1) throw new CliError(`#SBATCH ${what}=${v} on line ${line} is not a positive count`);
  return Number(m[1]);
}

/** Parse `--signal=[{R|B}:]SIG[@TIME]`. */
export function parseSignalSpec(v: string): { batchOnly: boolean; signal: string; beforeSec: number } {
  const m = /^(?:([RB]+):)?([A-Z0-9]+)(?:@(\d+))?$/i.exec(v.trim());
  if (!m) throw new CliError(`--signal must look like [B:]SIG[@SECONDS], got ${JSON.stringify(v)}`);
  let sig = m[2]!.toUpperCase();
  if (/^\d+$/.test(sig)) {
    const names: Record<string, string> = { '1': 'SIGHUP', '2': 'SIGINT', '10': 'SIGUSR1', '12': 'SIGUSR2', '15': 'SIGTERM' };
    sig = names[sig] ?? `SIG${sig}`;
  } else if (!sig.startsWith('SIG')) sig = `SIG${sig}`;
  return { batchOnly: (m[1] ?? '').toUpperCase().includes('B'), signal: sig, beforeSec: m[3] === undefined ? 60 : Number(m[3]) };
}

/** The #SBATCH directives of a batch script: read up to the first line that is not a comment or blank, as sbatch does. */
export function parseSbatch(text: string): SbatchDirectives {
  const d: SbatchDirectives = { seen: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const t = raw.trim();
    if (i === 0 && t.startsWith('#!')) continue;
    if (t === '') continue;
    if (!t.startsWith('#')) break;
    const m = /^#SBATCH\s+(.*)$/.exec(t);
    if (!m) continue;
    const ws = words(m[1]!.replace(/\s#.*$/, ''));
    for (let k = 0; k < ws.length; k++) {
      const w = ws[k]!;
      let name: string;
      let value: string | undefined;
      if (w.startsWith('--')) {
        const eq = w.indexOf('=');
        name = eq > 0 ? w.slice(2, eq) : w.slice(2);
        value = eq > 0 ? w.slice(eq + 1) : undefined;
      } else if (/^-[A-Za-z]/.test(w)) {
        name = SHORT[w[1]!] ?? w.slice(1, 2);
        value = w.length > 2 ? w.slice(2).replace(/^=/, '') : undefined;
      } else continue;
      const needs = ['nodes', 'cpus-per-task', 'ntasks-per-node', 'ntasks', 'time', 'job-name', 'signal'].includes(name);
      if (needs && value === undefined) value = ws[++k];
      if (value === undefined) continue;
      const line = i + 1;
      switch (name) {
        case 'nodes':
          d.nodes = count(value, '--nodes', line);
          break;
        case 'cpus-per-task':
          d.cpusPerTask = count(value, '--cpus-per-task', line);
          break;
        case 'ntasks-per-node':
          d.ntasksPerNode = count(value, '--ntasks-per-node', line);
          break;
        case 'ntasks':
          d.ntasks = count(value, '--ntasks', line);
          break;
        case 'time':
          d.time = value;
          break;
        case 'job-name':
          d.jobName = value;
          break;
        case 'signal':
          d.signal = parseSignalSpec(value);
          break;
        default:
          continue;
      }
      d.seen.push(`--${name}=${value}`);
    }
  }
  return d;
}

/** The interpreter of a batch script from its #! line; sbatch refuses a script without one. */
export function interpreterOf(text: string, path: string): string[] {
  const first = text.split('\n', 1)[0] ?? '';
  if (!first.startsWith('#!')) {
    throw new CliError(`${path} does not look like a batch script: its first line must start with #! and the path of an interpreter (as sbatch requires)`);
  }
  const parts = first.slice(2).trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) throw new CliError(`${path}: the #! line names no interpreter`);
  // Linux passes everything after the interpreter as one argument.
  const [interp, ...rest] = parts;
  return rest.length ? [interp!, rest.join(' ')] : [interp!];
}
