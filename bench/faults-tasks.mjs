// Tasks of the fault benchmark. With a marker folder, a chosen item kills its worker thread the first time it runs.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export async function work({ i, ms, markers }) {
  if (markers) {
    const poison = join(markers, `die-${i}`);
    if (existsSync(poison)) {
      const done = `${poison}.done`;
      if (!existsSync(done)) {
        writeFileSync(done, String(Date.now()));
        process.exit(9);
      }
    }
  }
  await new Promise((r) => setTimeout(r, ms));
  return i;
}
