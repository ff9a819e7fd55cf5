// W4 A/B, one whole process at a time: this tree's build against another tree's (--base DIR, a tree
// with dist/ and bench/peers/ of its own, e.g. a copy of main), with the floor and piscina rows in the
// same alternation. Prints medians of the wall time of each process and of its CPU (user + system,
// from /usr/bin/time), and the load average over the run: on a shared machine, quote it with them.
//   node bench/w4-ab.mjs --reps 15 [--base /tmp/base-tree] [--only floor,piscina,base,new]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '15' }, base: { type: 'string' }, only: { type: 'string' } } });
const here = fileURLToPath(new URL('..', import.meta.url));
const rows = [
  ['floor', here, 'bench/peers/w4-floor.mjs'],
  ['piscina', here, 'bench/peers/w4-piscina.mjs'],
  ...(values.base ? [['base', values.base, 'bench/peers/w4-slurmpool.mjs']] : []),
  ['new', here, 'bench/peers/w4-slurmpool.mjs'],
].filter(([l]) => !values.only || values.only.split(',').includes(l));
const time = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const res = Object.fromEntries(rows.map(([l]) => [l, { wall: [], cpu: [] }]));
const loads = [];
for (let i = 0; i < Number(values.reps); i++) {
  for (const [l, cwd, script] of rows) {
    const t0 = process.hrtime.bigint();
    const r = time
      ? spawnSync(time, ['-f', '%U %S', process.execPath, script], { cwd, encoding: 'utf8' })
      : spawnSync(process.execPath, [script], { cwd, encoding: 'utf8' });
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${l}: ${script} in ${cwd} exited with ${r.status}: ${r.stderr}`);
    res[l].wall.push(wall);
    if (time) {
      const [u, s] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
      res[l].cpu.push((u + s) * 1000);
    }
  }
  loads.push(loadavg()[0]);
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const m = {};
for (const [l] of rows) {
  m[l] = median(res[l].wall);
  const cpu = res[l].cpu.length ? `  cpu ${median(res[l].cpu).toFixed(0)} ms` : '';
  console.log(`${l.padEnd(8)} wall ${m[l].toFixed(0)} ms${cpu}  (fastest ${Math.min(...res[l].wall).toFixed(0)} ms)`);
}
for (const l of ['base', 'new']) {
  if (m[l] === undefined) continue;
  const parts = [];
  if (m.piscina) parts.push(`÷ piscina ${(m[l] / m.piscina).toFixed(2)}`);
  if (m.floor) parts.push(`÷ floor ${(m[l] / m.floor).toFixed(2)}`);
  if (parts.length) console.log(`${l} ${parts.join('  ')}`);
}
console.log(`load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}, ${values.reps} processes each`);
