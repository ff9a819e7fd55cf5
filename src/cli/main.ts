#!/usr/bin/env node
// The slurmpool command. `slurmpool agent` takes a fast path that loads nothing of the CLI.
if (process.argv[2] === 'agent') {
  const { runAgent } = await import('../agent/main.js');
  await runAgent();
  process.exit(0);
} else {
  const { main } = await import('./commands.js');
  process.exitCode = await main(process.argv.slice(2));
}
