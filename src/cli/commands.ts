// The slurmpool command: yargs commands run, map, env, emulate, demo (and the hidden agent); each computes, a renderer prints.
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { CliError, EXIT } from './errors.js';
import { COMMON_OPTIONS, envName } from './options.js';
import { makeRenderer, type Renderer } from './render.js';
import { splitTemplateArgv } from './template.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** --json / --quiet from the command line or SLURMPOOL_JSON / SLURMPOOL_QUIET, read leniently (resolveCommon checks them). */
function rendererFor(args: Record<string, unknown>): Renderer {
  const flag = (name: string) => {
    if (typeof args[name] === 'boolean') return args[name] as boolean;
    const v = process.env[envName(name)];
    return v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
  };
  return makeRenderer({ json: flag('json'), quiet: flag('quiet') });
}

const EPILOGUE = [
  'Every option also comes from a SLURMPOOL_* variable: --cpus-per-task 4 is SLURMPOOL_CPUS_PER_TASK=4; the command line wins.',
  'Exit status: 0 every task succeeded; 1 some failed (listed); 2 bad usage or input; 3 stopped early (signal or time limit), continue with --resume; 4 workers could not start or every node was lost. A run that --halt stopped ends as GNU parallel: success=… 0; fail=1 the failed command\'s exit status; fail=P% the percentage failed; else the number failed (at most 101).',
  'slurmpool agent is the per-node process that srun, ssh or emulation start; it is not run by hand.',
  'Docs: docs/cli.md, recipes for sbatch scripts: docs/sbatch-recipes.md, growing past one allocation: docs/elastic.md',
].join('\n\n');

function withCommon<T>(y: Argv<T>): Argv<T> {
  return y.options(COMMON_OPTIONS) as unknown as Argv<T>;
}

/** yargs does not take a lone "-" (standard input) as an option's value: `--input -` becomes `--input=-`. */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const prev = out[out.length - 1];
    if (a === '-' && prev !== undefined && /^(--input|-i)$/.test(prev)) out[out.length - 1] = `${prev}=-`;
    else out.push(a);
  }
  return out;
}

/** Parse argv, run the command, return the exit status. */
export async function main(argv: string[]): Promise<number> {
  let status: number = EXIT.ok;
  let renderer: Renderer | null = null;
  // `run CMD ::: ARGS`: the template and its sources are taken out before yargs reads the rest.
  let split;
  try {
    split = splitTemplateArgv(argv, COMMON_OPTIONS);
  } catch (e) {
    return makeRenderer({ json: argv.includes('--json'), quiet: false }).error(e);
  }
  const handle = (fn: (args: Record<string, unknown>, r: Renderer) => Promise<number>) => async (args: Record<string, unknown>) => {
    renderer = rendererFor(args);
    status = await fn(args, renderer);
  };
  const parser = yargs(joinDashValues(split?.argv ?? argv))
    .scriptName('slurmpool')
    .usage('$0 <command> [options]\n\nmultiprocessing.Pool across every node of a Slurm allocation: shell commands, module maps, resume after walltime.')
    .command(
      'run [taskfile]',
      'Run a file of shell commands, one a line, or a command template over arguments (::: a b c, :::: FILE), on every node of the allocation',
      (y) =>
        withCommon(y)
          .usage('$0 run [options] TASKFILE\n$0 run [options] COMMAND… ::: ARGS… [::: ARGS…] [:::: FILE…]')
          .positional('taskfile', { type: 'string', describe: 'One shell command a line (blank lines and # comments skipped; #SLURMPOOL OPTIONS -- CMD and {"cmd": …} lines carry their own request); - reads standard input' })
          .option('dry-run', { type: 'boolean', group: 'Input:', describe: 'Print the commands that would run, one a line, and run nothing' })
          .example('$0 run tasks.txt', 'run every line of tasks.txt, as many at once as there are cores')
          .example('$0 run tasks.txt -c 4 -o results.jsonl', 'each command gets 4 cores of its own (OMP_NUM_THREADS=4, pinned); records in results.jsonl')
          .example('$0 run jobs.txt', 'a line "#SLURMPOOL -c 4 --gpus 1 -- ./train 3" (or {"cmd": "./train 3", "cpus": 4, "gpus": 1}) asks for its own CPUs and GPUs')
          .example('$0 run tasks.txt --gpus-per-task 1', 'in sbatch --gpus-per-node=4: 4 commands at once per node, each with its own CUDA_VISIBLE_DEVICES')
          .example('$0 run tasks.txt -o results.jsonl --resume', 'after a walltime kill: run only the commands not yet recorded')
          .example('seq 100 | sed "s/^/echo /" | $0 run -', 'commands from standard input')
          .example("$0 run 'gzip -k {}' ::: *.csv", 'a template as GNU parallel writes it: one command per argument, each quoted for the shell')
          .example("$0 run -o r.jsonl 'sim --a {1} --b {2} > out/{#}.txt' ::: 1 2 3 :::: b-values.txt", 'every pair of the two sources (:::: reads one argument a line); {#} is the task number')
          .example("$0 run --dry-run 'convert {} {.}.png' ::: a.jpg b.jpg", 'print the commands, run nothing')
          .example('$0 run tasks.txt --retries 2 --halt soon,fail=10%', 'run a failed command up to twice more; stop starting commands once 10% have failed')
          .epilogue(
            'Templates (as GNU parallel): options go before the command; the words from the first non-option word to the first ::: are the command. ' +
              '{} all arguments, {1}…{n} the n-th source, {.} without extension, {/} basename, {//} dirname, {/.} basename without extension, ' +
              '{n.} {n/} {n//} {n/.} the same for source n, {#} the task number (1-based). Arguments are shell-quoted; with no replacement string they are appended. ' +
              'Several sources give every combination (the first varies slowest); :::+ and ::::+ pair a source with the one before it instead.\n\n' +
              EPILOGUE,
          ),
      handle(async (a, r) => (await import('./run.js')).runTaskFile(a, r, argv, split?.template ?? null)),
    )
    .command(
      'map <module> <export>',
      "Apply a module's export to JSON inputs; records as JSON Lines",
      (y) =>
        withCommon(y)
          .positional('module', { type: 'string', describe: 'ES module file, or a Python .py file run by one interpreter per worker (SLURMPOOL_PYTHON), on a filesystem every node sees' })
          .positional('export', { type: 'string', describe: 'Name of the exported function' })
          .option('input', { alias: 'i', type: 'string', group: 'Input:', describe: 'JSON Lines file of items, one JSON value a line (- for standard input)' })
          .option('range', { type: 'string', group: 'Input:', describe: 'Items START, START+STEP, … below END: START:END[:STEP]' })
          .option('star', { type: 'boolean', group: 'Input:', describe: 'Each item is an array of arguments (starmap)' })
          .example('$0 map tasks.mjs simulate --input params.jsonl -o results.jsonl', 'one record per line of params.jsonl')
          .example('$0 map tasks.mjs square --range 0:1000', 'items 0..999; records on standard output')
          .example('$0 map tasks.py simulate -i params.jsonl -o results.jsonl', 'a Python function over the same inputs')
          .example('$0 map tasks.mjs add --star --input pairs.jsonl', 'each line is [a, b]: add(a, b)'),
      handle(async (a, r) => (await import('./map.js')).mapModule(a, r, argv)),
    )
    .command(
      'env',
      'Show what slurmpool sees: the mode it would use and why, the allocation, CPUs and time left',
      (y) =>
        y
          .option('json', { type: 'boolean', describe: 'One JSON object, for scripts' })
          .option('emulate', COMMON_OPTIONS.emulate!)
          .option('hosts', COMMON_OPTIONS.hosts!)
          .option('hostfile', COMMON_OPTIONS.hostfile!)
          .option('local', COMMON_OPTIONS.local!)
          .option('cpus-per-task', COMMON_OPTIONS['cpus-per-task']!)
          .option('gpus-per-task', COMMON_OPTIONS['gpus-per-task']!)
          .option('workers', COMMON_OPTIONS.workers!)
          .option('time-left', COMMON_OPTIONS['time-left']!)
          .example('$0 env', 'inside an sbatch script: nodes, CPUs per node, time left, and where each came from')
          .example('$0 env --json | jq .allocation.nodes', 'for scripts'),
      handle(async (a, r) => (await import('./env.js')).envCommand(a, r)),
    )
    .command(
      'emulate [script] [args..]',
      'Run an sbatch script on this machine as Slurm would, with an emulated allocation',
      (y) =>
        y
          .positional('script', { type: 'string', describe: 'The batch script (#! line and #SBATCH options as for sbatch); may follow --' })
          .positional('args', { type: 'string', array: true, describe: 'Arguments of the script (after --)' })
          .option('nodes', { alias: 'N', type: 'string', describe: 'Nodes [default: #SBATCH --nodes, else 1]' })
          .option('cpus-per-node', { type: 'string', describe: 'CPUs of each node [default: #SBATCH -c × --ntasks-per-node, else 1]' })
          .option('time', { alias: 't', type: 'string', describe: 'Time limit as sbatch reads it (10 = 10 minutes, 1:30:00) [default: #SBATCH --time, else none]' })
          .option('kill-wait', { type: 'string', describe: 'From SIGTERM at the limit to SIGKILL, as Slurm\'s KillWait [default: 30s]' })
          .option('signal', { type: 'string', describe: 'As sbatch --signal=B:SIG@SECONDS: warn the script before the limit [default: #SBATCH --signal]' })
          .option('quiet', COMMON_OPTIONS.quiet!)
          .option('json', COMMON_OPTIONS.json!)
          .example('$0 emulate -- ./job.sbatch', 'run job.sbatch with its #SBATCH -N/-c/--time as the allocation')
          .example('$0 emulate --nodes 4 --cpus-per-node 2 --time 10:00 -- ./job.sbatch input.txt', 'command-line options win over #SBATCH lines'),
      handle(async (a, r) => (await import('./emulate.js')).emulateCommand(a, r)),
    )
    .command(
      'report <results>',
      'Write a self-contained HTML report of a run from its results file',
      (y) =>
        y
          .positional('results', { type: 'string', describe: 'A results file (JSON Lines) written by run or map --output' })
          .option('out', { alias: 'o', type: 'string', describe: 'The HTML file [default: RESULTS with .html]' })
          .option('quiet', COMMON_OPTIONS.quiet!)
          .option('json', COMMON_OPTIONS.json!)
          .example('$0 report results.jsonl', 'writes results.html: per-worker timeline, utilization, slowest and failed tasks')
          .example('$0 report results.jsonl -o /shared/www/run42.html', 'one file, no network needed to open it'),
      handle(async (a, r) => (await import('./report.js')).reportCommand(a, r)),
    )
    .command(
      'status <results>',
      'Progress per node of a run in progress (or finished), read from its results file',
      (y) =>
        y
          .positional('results', { type: 'string', describe: 'The --output file of a running slurmpool run or map' })
          .option('watch', { type: 'string', describe: 'Print again every SECONDS until interrupted' })
          .option('json', COMMON_OPTIONS.json!)
          .example('$0 status results.jsonl', 'in another shell on the same job (it reads the file; no connection to the job)')
          .example('$0 status results.jsonl --watch 10', 'every 10 s'),
      handle(async (a, r) => (await import('./report.js')).statusCommand(a, r)),
    )
    .command(
      'demo',
      'Count primes below 5,000,000 on an emulated 2-node pool and show the speedup over one worker',
      (y) =>
        y
          .option('emulate', { type: 'string', describe: 'Emulated allocation NxC [default: 2x1]' })
          .option('local', { type: 'boolean', describe: 'Worker threads on this machine instead of emulated nodes' })
          .option('limit', { type: 'string', describe: 'Count primes below this [default: 5000000]' })
          .option('json', COMMON_OPTIONS.json!)
          .example('$0 demo', '348,513 primes, the time, and the speedup')
          .example('$0 demo --local', 'with worker threads on this machine'),
      handle(async (a, r) => (await import('./demo.js')).demoCommand(a, r)),
    )
    .command(
      'join <file>',
      "Join a running pool from this allocation: one agent per node (srun), through the pool's join file",
      (y) =>
        y
          .positional('file', { type: 'string', describe: 'The join file the pool wrote (--join-file, --grow); must be readable by its owner only' })
          .option('local', { type: 'boolean', describe: 'One agent on this machine, even inside an allocation' })
          .option('leave-margin', { type: 'string', describe: 'Seconds before this allocation ends at which the agents stop taking work and leave [default: 60, at most a tenth of the time left]' })
          .option('quiet', COMMON_OPTIONS.quiet!)
          .option('json', COMMON_OPTIONS.json!)
          .example('$0 join ~/.slurmpool/join-12345.json', 'in an sbatch script: this job\'s nodes take work from that pool until the job ends')
          .example('sbatch -N4 -t 2:00:00 --wrap "slurmpool join ~/.slurmpool/join-12345.json"', 'add 4 nodes to a running pool for two hours'),
      handle(async (a, r) => (await import('./join.js')).joinCommand(a, r)),
    )
    .command({
      command: 'agent',
      describe: false,
      handler: async () => {
        const { runAgent } = await import('../agent/main.js');
        await runAgent();
        status = EXIT.ok;
      },
    })
    .demandCommand(1, 'give a command: run, map, join, env, emulate, report, status or demo')
    .strict()
    .parserConfiguration({ 'populate--': true })
    .epilogue(EPILOGUE)
    .version(version())
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new CliError(msg, EXIT.usage, `see: slurmpool ${argv.find((a) => !a.startsWith('-')) ?? ''} --help`.replace('  ', ' '));
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    const r: Renderer = renderer ?? makeRenderer({ json: argv.includes('--json'), quiet: false });
    return r.error(e instanceof CliError ? e : e instanceof Error ? new CliError(e.message, EXIT.launch) : e);
  }
  return status;
}
