// yargs commands; placeholder until the CLI issue lands.
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`slurmpool: commands are not built yet (${argv.join(' ')})\n`);
  return 2;
}
