#!/usr/bin/env node
// Randomized faults on the real Slurm test cluster (scripts/slurm/test-cluster.sh up):
// node crashes, agent kills, silent agents, worker deaths, and SIGTERM then --resume.
// Prints runs, tasks, tasks lost, duplicate records, hangs, median time to notice a lost node,
// and median time to finish after a fault against the same job without one.
//   node bench/faults.mjs [--runs 8] [--seed 1]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const runs = Number(opt('--runs', '8'));
let seed = Number(opt('--seed', '1'));
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const env = { ...process.env, SLURM_CONF: process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf', SLURMPOOL_BIND: '127.0.0.1' };
const cluster = join(root, 'scripts/slurm/test-cluster.sh');
const sh = (cmd, args, timeout = 60_000) => execFileSync(cmd, args, { env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

try {
  sh('bash', [cluster, 'status']);
} catch {
  console.error('bench:faults needs the Slurm test cluster: bash scripts/slurm/test-cluster.sh up');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'slurmpool-faults-'));
const TASKS = 80;
const MS = 150;

function submit(args) {
  return sh('sbatch', ['--parsable', '-N3', '--no-kill', '--no-requeue', `--chdir=${root}`, ...args]).trim().split(';')[0];
}
function state(id) {
  try {
    return /JobState=(\S+)/.exec(sh('scontrol', ['show', 'job', id, '-o']))?.[1] ?? 'GONE';
  } catch {
    return 'GONE';
  }
}
async function waitEnd(id, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(state(id))) return true;
    await sleep(200);
  }
  spawnSync('scancel', [id], { env });
  return false;
}
const lines = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []);
async function waitLine(file, re, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const l = lines(file).find((x) => re.test(x));
    if (l) return l;
    await sleep(100);
  }
  return null;
}
/** The agent pid of a node, from the coordinator's "started n1:pid,…" line (all nodes share this machine). */
function agentPid(startedLine, node) {
  const m = new RegExp(`${node}:(\\d+)`).exec(startedLine);
  return m ? Number(m[1]) : null;
}

const kinds = ['none', 'crash-node', 'kill-agent', 'silent-agent', 'kill-worker', 'sigterm-resume'];
const plan = Array.from({ length: runs }, (_, i) => (i < kinds.length ? kinds[i] : kinds[1 + Math.floor(rnd() * (kinds.length - 1))]));
const rows = [];
for (const [k, kind] of plan.entries()) {
  const out = join(dir, `run${k}.out`);
  const row = { kind, tasks: TASKS, lost: 0, duplicates: 0, hang: false, noticeMs: NaN, mapMs: NaN };
  const t0 = Date.now();
  if (kind === 'sigterm-resume') {
    const tasksFile = join(dir, `cmds${k}.txt`);
    writeFileSync(tasksFile, Array.from({ length: TASKS }, (_, i) => `sleep 0.15; echo ${i}`).join('\n') + '\n');
    const res = join(dir, `res${k}.jsonl`);
    const cmd = `node ${join(root, 'dist/cli/main.js')} run ${tasksFile} -o ${res} --resume --grace 5s --quiet`;
    const a = submit([`--output=${out}`, '--wrap', cmd]);
    await waitLine(res, /"index"/, 60_000);
    await sleep(800);
    spawnSync('scancel', ['--batch', '--signal=TERM', a], { env });
    const endedA = await waitEnd(a, 60_000);
    const b = submit([`--output=${out}.2`, '--wrap', cmd]);
    const endedB = await waitEnd(b, 120_000);
    row.hang = !endedA || !endedB;
    const recs = lines(res).filter(Boolean).map((l) => JSON.parse(l));
    const idx = recs.filter((r) => r.ok).map((r) => r.index);
    row.lost = TASKS - new Set(idx).size;
    row.duplicates = idx.length - new Set(idx).size;
    row.mapMs = Date.now() - t0;
    rows.push(row);
    console.error(`run ${k} ${kind}: ${JSON.stringify(row)}`);
    continue;
  }
  const markers = kind === 'kill-worker' ? mkdirSync(join(dir, `m${k}`), { recursive: true }) ?? join(dir, `m${k}`) : '';
  if (markers) for (let j = 0; j < 3; j++) writeFileSync(join(markers, `die-${Math.floor(rnd() * TASKS)}`), '');
  const id = submit([`--output=${out}`, '--wrap', `node bench/faults-job.mjs ${TASKS} ${MS} ${markers}`]);
  const started = await waitLine(out, / started /, 60_000);
  let faultAt = 0;
  const victim = rnd() < 0.5 ? 'n2' : 'n3';
  if (started && kind !== 'none' && kind !== 'kill-worker') {
    await sleep(1000 + Math.floor(rnd() * 800));
    faultAt = Date.now();
    const pid = agentPid(started, victim);
    if (kind === 'crash-node') sh('bash', [cluster, 'crash-node', victim]);
    else if (kind === 'kill-agent' && pid) process.kill(pid, 'SIGKILL');
    else if (kind === 'silent-agent' && pid) process.kill(pid, 'SIGSTOP');
  }
  const ended = await waitEnd(id, 120_000);
  if (kind === 'silent-agent') {
    const pid = started && agentPid(started, victim);
    if (pid) spawnSync('kill', ['-KILL', String(pid)]);
  }
  if (kind === 'crash-node') sh('bash', [cluster, 'restart-node', victim], 90_000);
  row.hang = !ended;
  const text = lines(out);
  const result = text.find((l) => / result /.test(l));
  if (result) {
    const r = JSON.parse(result.slice(result.indexOf('{')));
    row.lost = TASKS - r.distinct;
    row.duplicates = r.results - r.distinct;
    if (!r.inOrder) row.lost = Math.max(row.lost, 1);
    row.mapMs = r.mapMs;
  } else {
    row.lost = TASKS;
  }
  const lostLine = text.find((l) => /log node n\d: agent lost/.test(l));
  if (lostLine && faultAt) row.noticeMs = Number(lostLine.split(' ')[0]) - faultAt;
  rows.push(row);
  console.error(`run ${k} ${kind}: ${JSON.stringify(row)}`);
}

const base = median(rows.filter((r) => r.kind === 'none').map((r) => r.mapMs));
const faulted = rows.filter((r) => !['none', 'sigterm-resume'].includes(r.kind));
const summary = {
  runs: rows.length,
  tasks: rows.reduce((s, r) => s + r.tasks, 0),
  tasksLost: rows.reduce((s, r) => s + r.lost, 0),
  duplicateRecords: rows.reduce((s, r) => s + r.duplicates, 0),
  hangs: rows.filter((r) => r.hang).length,
  medianNoticeLostNodeMs: median(faulted.map((r) => r.noticeMs)),
  medianMapMsAfterFault: median(faulted.map((r) => r.mapMs)),
  medianMapMsWithoutFault: base,
};
console.log('fault bench (real Slurm test cluster, 3 nodes; lostAfterMs 3000, heartbeat 250 ms)');
console.log('kind            tasks  lost  dup  hang  notice(ms)  map(ms)');
for (const r of rows) console.log(`${r.kind.padEnd(15)} ${String(r.tasks).padStart(5)} ${String(r.lost).padStart(5)} ${String(r.duplicates).padStart(4)} ${String(r.hang).padStart(5)} ${String(Number.isFinite(r.noticeMs) ? r.noticeMs : '-').padStart(11)} ${String(r.mapMs).padStart(8)}`);
console.log(JSON.stringify(summary));
process.exitCode = summary.tasksLost || summary.duplicateRecords || summary.hangs ? 1 : 0;
