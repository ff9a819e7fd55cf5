// After tsc: the pool's entry (dist/index.js) and the worker thread's file (dist/agent/worker.js) each
// become one file, in place. Start-up on Node 20, which has no compile cache, pays per ES module it
// loads (resolve, read, compile, link: about 1 ms each); a local pool loaded 33 modules in its main
// thread and 7 in every worker. Everything else in dist/ stays as tsc wrote it (the CLI, the agent,
// the report, the modules loaded on demand).
//
// What stays a module of its own, imported by the bundles:
// - dist/errors.js and dist/slurm/hostlist.js: one copy of each error class in a process, whichever
//   files import them (instanceof holds between the pool, the CLI, tests and a task module that
//   imports slurmpool);
// - every module loaded by a dynamic import() (launchers, the Python slots, the shell runner): loaded
//   from where tsc put it, so that its own relative URLs (the CLI, the spawn helper, the Python
//   worker) hold.
// `new URL('./x', import.meta.url)` in a bundled module is rewritten relative to the bundle's place.
import { rolldown } from 'rolldown';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dist = join(root, 'dist');
const SHARED = new Set(['errors.js', 'slurm/hostlist.js'].map((f) => join(dist, f)));
const ENTRIES = ['index.js', 'agent/worker.js'];

function plugin(out) {
  return {
    name: 'slurmpool-bundle',
    resolveId(source, importer, extra) {
      if (!importer) return null;
      if (!source.startsWith('.')) return { id: source, external: true };
      const abs = resolve(dirname(importer), source);
      if (SHARED.has(abs) || extra?.kind === 'dynamic-import') return { id: abs, external: true };
      return null;
    },
    transform(code, id) {
      if (!code.includes('import.meta.url')) return null;
      return code.replace(/new URL\((['"])(\.\.?\/[^'"]+)\1, import\.meta\.url\)/g, (_, q, rel) => {
        let moved = relative(dirname(out), resolve(dirname(id), rel)).split(sep).join('/');
        if (!moved.startsWith('.')) moved = `./${moved}`;
        return `new URL(${q}${moved}${q}, import.meta.url)`;
      });
    },
  };
}

for (const entry of ENTRIES) {
  const out = join(dist, entry);
  const name = `${basename(out, '.js')}.bundle.js`;
  const bundle = await rolldown({ input: out, platform: 'node', plugins: [plugin(out)], logLevel: 'warn' });
  // Written beside its entry, so that the imports of kept modules are relative to the right place.
  const { output } = await bundle.write({ dir: dirname(out), format: 'esm', entryFileNames: name });
  await bundle.close();
  const chunks = output.filter((o) => o.type === 'chunk');
  if (chunks.length !== 1 || chunks[0].fileName !== name) throw new Error(`bundling ${entry}: expected one file, got ${chunks.map((c) => c.fileName).join(', ')}`);
  await rename(join(dirname(out), name), out);
  // tsc's map describes the file the bundle replaced.
  await rm(`${out}.map`, { force: true });
}
