// slurmpool run TASKFILE: one shell command a line, each on some node, with its own cores.
import { resolve } from 'node:path';
import { taskCommand, type CommandResult } from '../agent/shell.js';
import { commandRecord } from '../results/record.js';
import { execute, type Plan } from './engine.js';
import { CliError, EXIT } from './errors.js';
import { readStdin, readTaskFile } from './input.js';
import { parseTaskLine, RequestScan } from './task-requests.js';
import { resolveCommon } from './options.js';
import type { Renderer } from './render.js';
import { templateSource, type TemplateArgs } from './template.js';
import type { TaskSource } from './taskfile.js';

/** Run the commands of a task file, or of a template over its arguments; the exit status of the whole run. */
export async function runTaskFile(args: Record<string, unknown>, r: Renderer, argv: readonly string[], template: TemplateArgs | null = null): Promise<number> {
  const c = resolveCommon(args);
  // yargs reads a lone "-" (standard input) as an empty string.
  const name = args.taskfile === '' || args.taskfile === undefined ? '-' : String(args.taskfile);
  if (!template && args.taskfile === undefined) {
    throw new CliError('give a task file (- for standard input), or a command template with its arguments after ::: or ::::', EXIT.usage, "e.g. slurmpool run tasks.txt, or slurmpool run 'echo {}' ::: a b c; see slurmpool run --help");
  }
  if (template && args.taskfile !== undefined) throw new CliError(`give a task file or a command template with ::: / ::::, not both (task file: ${name})`);
  // `:::: -` reads arguments from standard input: read before the source is made (it reads synchronously).
  const stdinText = template?.groups.some((g) => g.sep.startsWith('::::') && g.words.includes('-')) ? await readStdin() : '';
  // Lines with their own requests (#SLURMPOOL …, {"cmd": …}) are checked in the pass that reads the file (templates carry none).
  const scan = new RequestScan(name === '-' ? 'standard input' : `task file ${name}`);
  const tf: TaskSource = template ? templateSource(template, () => stdinText) : await readTaskFile(name, (text, line) => scan.add(text, line));
  const packed = scan.lines > 0;
  const split = (text: string, line: number) => (packed ? parseTaskLine(text, `${scan.name} line ${line}`) : { command: text, request: null });
  const total = tf.count;
  const dry = typeof args['dry-run'] === 'boolean' ? args['dry-run'] : ['1', 'true', 'yes', 'on'].includes((process.env.SLURMPOOL_DRY_RUN ?? '').trim().toLowerCase());
  if (dry) {
    // The commands as they would run, in order; nothing is started and no file is written.
    let closed = false;
    process.stdout.on('error', () => (closed = true)); // `| head`: stop printing
    try {
      let text = '';
      for (let i = 0; i < total; i++) {
        const t = tf.at(i);
        text += `${split(t.command, t.line).command}\n`;
        if (closed) break;
        if (text.length > 1 << 16) {
          process.stdout.write(text);
          text = '';
        }
      }
      process.stdout.write(text);
    } finally {
      tf.close();
    }
    return EXIT.ok;
  }
  const human = !c.output && !c.json;
  // Lines of the commands handed out and not yet recorded: records come back in completion order, and
  // reading them back from the file would move its cursor away from where the feed reads.
  const lineOf = new Map<number, number>();
  let recorded: { i: number; line: number } | null = null;
  const plan: Plan = {
    command: 'run',
    kind: 'shell',
    fn: '',
    total,
    item: (i) => {
      const t = tf.at(i);
      lineOf.set(i, t.line);
      const p = split(t.command, t.line);
      return taskCommand(i, p.command, p.request);
    },
    record: (i, rec) => {
      const line = lineOf.get(i) ?? tf.at(i).line;
      lineOf.delete(i);
      recorded = { i, line };
      // A template's tasks have no line: their number is the index + 1 ({#}). A task stopped before it
      // finished (--halt) has no result, and its record still says which command it was.
      return commandRecord(i, template ? undefined : line, rec, rec.value === undefined ? split(tf.at(i).command, line).command : undefined);
    },
    place: (i) => (template ? { unit: 'task', n: i + 1 } : { unit: 'line', n: recorded?.i === i ? recorded.line : (lineOf.get(i) ?? tf.at(i).line) }),
    check: (saved) => {
      const i = saved.index;
      if (i >= total) return `it records task ${i}, but ${tf.name} has only ${total} commands now`;
      const cmd = saved.record.command;
      if (typeof cmd !== 'string') return null;
      const at = tf.at(i);
      const now = { line: at.line, command: split(at.command, at.line).command };
      if (cmd !== now.command) {
        return template
          ? `task ${i + 1} ran \`${cmd}\`, but ${tf.name} makes \`${now.command}\` now: the template or its arguments changed since that run`
          : `task ${i} ran \`${cmd}\`, but ${tf.name} line ${now.line} is now \`${now.command}\`: the task file changed since that run`;
      }
      return null;
    },
    recordsToStdout: c.json && !c.output,
    work: { taskFile: template ? tf.name : name === '-' ? '-' : resolve(name), sha256: tf.sha256 },
    ...(packed ? { taskResources: true, misfit: (nodes) => scan.misfit(nodes, { cpus: c.cpusPerTask ?? 1, gpus: c.gpusPerTask ?? 0 }) } : {}),
  };
  if (human) {
    // No results file: each command's output as it finishes, whole (GNU parallel's --group).
    let closed = false;
    process.stdout.on('error', () => (closed = true)); // `| head`: stop printing, keep running
    plan.show = (i, rec) => {
      const v = rec.value as CommandResult | undefined;
      if ((v?.stdout && process.stdout.isTTY) || v?.stderr) r.clearLive();
      if (v?.stdout && !closed) process.stdout.write(v.stdout);
      if (v?.stderr) process.stderr.write(v.stderr);
      if (v?.stdoutFile) r.note(`task ${i}: stdout is in ${v.stdoutFile}`);
      if (v?.stderrFile) r.note(`task ${i}: stderr is in ${v.stderrFile}`);
    };
  }
  try {
    return await execute(plan, c, r, argv);
  } finally {
    tf.close();
  }
}
