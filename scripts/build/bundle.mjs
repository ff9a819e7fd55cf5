// After tsc: the pool's entry (dist/index.js) and the worker thread's file (dist/agent/worker.js) each
// become one script, run through V8's code cache. Start-up on Node 20, which has no compile cache,
// pays per ES module it loads (resolve, read, compile, link: about 1 ms each; a local pool loaded 33
// modules in its main thread and 7 in every worker), and then compiles every function on its first
// call. Everything else in dist/ stays as tsc wrote it (the CLI, the agent, the report, the modules
// loaded on demand).
//
// Each entry becomes two files:
// - `<name>.bundle.js`: every module it imports, bundled (rolldown, CommonJS output) and wrapped as
//   `(function (exports, require, module, __filename, __dirname, __import) { … })` on the file's first
//   line, so that its lines are the file's lines in stack traces. Not a module: the stub runs it.
// - `<name>.js`, the published ES module (the stub): imports what the bundle shares with the rest of
//   the package, runs the bundle through src/util/code-cache.ts (runBundle: V8's cached data made after
//   the code last ran, so that the next process skips compiling what this one compiled), and exports
//   the bundle's exports. Its export list is the entry's own, as rolldown found it.
//
// What stays a module of its own, handed to the bundle by the stub:
// - dist/errors.js and dist/slurm/hostlist.js: one copy of each error class in a process, whichever
//   files import them (instanceof holds between the pool, the CLI, tests and a task module that
//   imports slurmpool);
// - dist/util/code-cache.js (inlined into the stub): the code that runs the bundle is not in it, and
//   the bundle's own uses (msgpackr's cache, codeWarm) share the stub's state.
// Every module loaded by a dynamic import() (launchers, the Python slots, the shell runner) is loaded
// from where tsc put it, through the stub's import() (`__import`), so that its own relative URLs (the
// CLI, the spawn helper, the Python worker) hold. `new URL('./x', import.meta.url)` in a bundled module
// is rewritten relative to the bundle's place.
import { rolldown } from 'rolldown';
import { parseAst } from 'rolldown/parseAst';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dist = join(root, 'dist');
const at = (...files) => new Set(files.map((f) => join(dist, f)));
// Per entry, the modules it shares. The worker thread uses no error class (only toErrorRecord, which
// holds no state): errors.js is inlined there, one ES module fewer to load before the thread is ready
// (about 2 ms); the build checks that no class of it came along.
const ENTRIES = [
  ['index.js', at('errors.js', 'slurm/hostlist.js', 'util/code-cache.js')],
  ['agent/worker.js', at('util/code-cache.js')],
];
const WRAPPER = '(function (exports, require, module, __filename, __dirname, __import) {"use strict";';

const rel = (from, to) => {
  const r = relative(dirname(from), to).split(sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
};

function plugin(out, shared) {
  return {
    name: 'slurmpool-bundle',
    resolveId(source, importer, extra) {
      if (!importer) return null;
      if (!source.startsWith('.')) return { id: source, external: true };
      const abs = resolve(dirname(importer), source);
      if (shared.has(abs) || extra?.kind === 'dynamic-import') return { id: abs, external: true };
      return null;
    },
    transform(code, id) {
      if (!code.includes('import.meta.url')) return null;
      return code.replace(/new URL\((['"])(\.\.?\/[^'"]+)\1, import\.meta\.url\)/g, (_, q, r) => `new URL(${q}${rel(out, resolve(dirname(id), r))}${q}, import.meta.url)`);
    },
  };
}

/** Every node of an ESTree, depth first. */
function* walk(node) {
  if (Array.isArray(node)) for (const n of node) yield* walk(n);
  else if (node && typeof node === 'object') {
    if (typeof node.type === 'string') yield node;
    for (const k in node) if (k !== 'type' && node[k] && typeof node[k] === 'object') yield* walk(node[k]);
  }
}

async function build(input, options, output) {
  const bundle = await rolldown({ input, platform: 'node', logLevel: 'warn', ...options });
  const { output: out } = await bundle.generate(output);
  await bundle.close();
  const chunks = out.filter((o) => o.type === 'chunk');
  if (chunks.length !== 1) throw new Error(`bundling ${input}: expected one file, got ${chunks.map((c) => c.fileName).join(', ')}`);
  return chunks[0];
}

for (const [entry, SHARED] of ENTRIES) {
  const out = join(dist, entry);
  const name = `${basename(out, '.js')}.bundle.js`;
  const bundleFile = join(dirname(out), name);
  const chunk = await build(out, { plugins: [plugin(out, SHARED)] }, { format: 'cjs', entryFileNames: name, dir: dirname(out) });
  // import() becomes the stub's (a script run by vm has no import() of its own); import.meta is gone
  // (rolldown's CommonJS output reads __filename instead); require() of a relative file is only ever
  // one of the shared modules, which the stub hands over.
  let code = chunk.code;
  const edits = [];
  const required = new Set();
  for (const n of walk(parseAst(code))) {
    if (n.type === 'TaggedTemplateExpression' && /[^\0-\x7f]/.test(code.slice(n.quasi.start, n.quasi.end))) throw new Error(`bundling ${entry}: a tagged template holds a character beyond ASCII (its raw text would change): ${code.slice(n.start, n.start + 80)}`);
    if (n.type === 'ImportExpression') edits.push(n.start);
    else if (n.type === 'MetaProperty') throw new Error(`bundling ${entry}: import.meta left at ${n.start}`);
    else if (n.type === 'CallExpression' && n.callee.type === 'Identifier' && n.callee.name === 'require' && n.arguments[0]?.type === 'Literal' && String(n.arguments[0].value).startsWith('.')) required.add(n.arguments[0].value);
  }
  for (const at of edits.sort((a, b) => b - a)) code = `${code.slice(0, at)}__${code.slice(at)}`;
  for (const r of required) if (!SHARED.has(resolve(dirname(out), r))) throw new Error(`bundling ${entry}: requires ${r}, which is not a shared module`);
  for (const [id, m] of Object.entries(chunk.modules)) {
    if (id === join(dist, 'errors.js') && /\bclass\b/.test(m.code ?? '')) throw new Error(`bundling ${entry}: error classes of errors.js were copied into it`);
  }
  // ASCII only (\u escapes in the comments, strings and templates that held other characters): Node
  // reads it into a one-byte string, about half the time of a UTF-8 decode, and V8 scans it faster.
  code = `${WRAPPER}${code.replace(/[^\0-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n})`;
  writeFileSync(bundleFile, code);
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);

  // The stub, bundled in turn so that code-cache.js (and node-fs.js) are in it, not modules of their own.
  const specs = [...required];
  const cacheSpec = rel(out, join(dist, 'util/code-cache.js'));
  if (!specs.includes(cacheSpec)) specs.push(cacheSpec);
  const names = chunk.exports;
  for (const n of names) if (!/^[A-Za-z_$][\w$]*$/.test(n)) throw new Error(`bundling ${entry}: cannot re-export ${n}`);
  const stubSource = join(dirname(out), `${basename(out, '.js')}.stub-source.js`);
  writeFileSync(
    stubSource,
    [
      `// ${entry}: runs ${name} (scripts/build/bundle.mjs).`,
      ...specs.map((s, i) => `import * as m${i} from ${JSON.stringify(s)};`),
      `const bundle = m${specs.indexOf(cacheSpec)}.runBundle(new URL(${JSON.stringify(`./${name}`)}, import.meta.url), ${JSON.stringify(hash)}, { ${specs.map((s, i) => `${JSON.stringify(s)}: m${i}`).join(', ')} }, (specifier) => import(specifier));`,
      names.length ? `export const { ${names.join(', ')} } = bundle;` : '',
    ].join('\n'),
  );
  const stub = await build(stubSource, { plugins: [plugin(out, new Set([...SHARED].filter((f) => !f.endsWith('code-cache.js'))))] }, { format: 'esm' });
  rmSync(stubSource);
  writeFileSync(out, stub.code);
  // tsc's map describes the file the bundle replaced.
  rmSync(`${out}.map`, { force: true });
}
