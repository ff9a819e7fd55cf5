// The report as one self-contained HTML file: inline CSS and script, data as compact JSON, nothing fetched.
import { CLIENT_JS } from './client.js';
import { duration, num, pct, rate, utc } from './format.js';
import type { Bars, ReportModel, TaskRow } from './model.js';
import { OUTCOMES, type Outcome } from './records.js';

export interface RenderOptions {
  /** The page title; by default from the command. */
  title?: string;
  /** When the report was made (shown in the footer). Default: now. */
  generatedAt?: Date;
}

/** Colours by outcome, in OUTCOMES order: ok, retried, re-dispatched, failed. */
export const COLORS: Record<Outcome, string> = { ok: '#3f9d6e', retried: '#e89a0c', redispatched: '#7b61c9', failed: '#d93a3a' };
const LABELS: Record<Outcome, string> = { ok: 'ok', retried: 'retried', redispatched: 're-dispatched', failed: 'failed' };

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** The lane height (CSS px) for this many lanes: roomy for a few, a hairline for thousands. */
function laneHeight(lanes: number): number {
  return lanes <= 40 ? 20 : lanes <= 160 ? 12 : lanes <= 600 ? 5 : 2;
}

function b64(a: Uint8Array | Uint16Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function barsJson(b: Bars): Record<string, number[]> {
  return { l: b.lane, s: b.start, d: b.dur, o: b.outcome, i: b.index, c: b.count };
}

/** What the page's script needs, as compact JSON (columns, base64 bins, utilization in permille). */
function clientData(m: ReportModel): unknown {
  const tl = m.timeline;
  const errors: Record<number, string> = {};
  for (const f of m.failed) if (f.error) errors[f.index] = clip(`${f.error.name}: ${f.error.message}`, 240);
  return {
    t0: m.t0,
    span: Math.max(1, m.t1 - m.t0),
    lanes: m.lanes.map((l) => l.label),
    nodes: m.nodes.map((n) => ({ n: n.node, f: n.firstLane, c: n.laneCount, w: n.workers })),
    mode: tl.mode,
    bars: barsJson(tl.mode === 'bars' ? tl.bars : tl.special),
    bins: tl.mode === 'bins' ? { n: tl.bins, ms: tl.binMs, busy: b64(tl.busy), tasks: b64(tl.tasks) } : null,
    util: {
      n: m.utilization.bins,
      ms: m.utilization.binMs,
      all: m.utilization.overall.map((u) => Math.round(u * 1000)),
      node: m.utilization.perNode.map((a) => a.map((u) => Math.round(u * 1000))),
      workers: m.header.workers,
    },
    err: errors,
    colors: OUTCOMES.map((o) => COLORS[o]),
    names: OUTCOMES.map((o) => LABELS[o]),
  };
}

function retriedSub(m: ReportModel): string {
  if (m.retriesTotal === 0) return 'none';
  const parts: string[] = [];
  const okAfter = m.retriesTotal - m.retriesFailed;
  if (okAfter) parts.push(`${num(okAfter)} then ok`);
  if (m.retriesFailed) parts.push(`${num(m.retriesFailed)} failed anyway`);
  if (m.counts.redispatched) parts.push(`${num(m.counts.redispatched)} re-dispatched`);
  return parts.join(' · ');
}

/** Core-hours with the digits that matter: 1,234 · 12.3 · 0.42 · 0.0031. */
function coreHours(v: number): string {
  if (v >= 1000) return num(v);
  if (v >= 10) return v.toFixed(1);
  if (v >= 0.1 || v === 0) return v.toFixed(2);
  return v.toPrecision(2);
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function fact(label: string, value: string, title?: string): string {
  return `<div class="fact"${title ? ` title="${esc(title)}"` : ''}><dt>${esc(label)}</dt><dd>${value}</dd></div>`;
}

function card(label: string, value: string, sub: string, cls = ''): string {
  return `<div class="card ${cls}"><div class="card-v">${value}</div><div class="card-l">${esc(label)}</div><div class="card-s">${sub}</div></div>`;
}

function outcomeCell(o: Outcome): string {
  return `<span class="pill ${o}"><i style="background:${COLORS[o]}"></i>${LABELS[o]}</span>`;
}

function taskCell(r: TaskRow): string {
  const label = r.count > 1 ? `#${num(r.index)}–${num(r.index + r.count - 1)}` : `#${num(r.index)}`;
  return `<a href="#task-${r.index}" class="task" data-task="${r.index}">${label}</a>${r.count > 1 ? ` <small>(${r.count} tasks, one chunk)</small>` : ''}`;
}

const where = (r: TaskRow) => `${esc(r.node)}/${r.worker < 0 ? '?' : r.worker}`;
const when = (r: TaskRow) => (Number.isFinite(r.start) ? `+${duration(r.start)}` : '–');
const dur = (r: TaskRow) => (Number.isFinite(r.durMs) ? duration(r.durMs) : '–');

function errorCell(r: TaskRow): string {
  if (!r.error) return '';
  const e = r.error;
  const what = r.what ? `<div class="what"><code>${esc(clip(r.what, 200))}</code></div>` : '';
  const stack = e.stack ? `<details><summary>stack</summary><pre>${esc(e.stack)}</pre></details>` : '';
  const stderr = r.stderrTail ? `<pre class="stderr" title="the end of its stderr">${esc(r.stderrTail)}</pre>` : '';
  return `${what}<b>${esc(e.name)}</b>${e.kind && e.kind !== 'error' ? ` <small>(${esc(e.kind)})</small>` : ''}: ${esc(clip(e.message, 600))}${stderr}${stack}`;
}

function more(shown: number, total: number, what: string): string {
  return total > shown ? `<p class="note">Showing ${num(shown)} of ${num(total)} ${what}.</p>` : '';
}

function slowestTable(m: ReportModel): string {
  if (m.slowest.length === 0) return '<p class="note">No timed tasks.</p>';
  const rows = m.slowest
    .map((r, i) => `<tr class="${r.outcome}" data-index="${r.index}"><td class="n">${i + 1}</td><td>${taskCell(r)}</td><td class="n">${dur(r)}</td><td>${where(r)}</td><td>${outcomeCell(r.outcome)}</td><td class="n">${when(r)}</td></tr>`)
    .join('');
  return `<table id="slowest"><thead><tr><th class="n">#</th><th>task</th><th class="n">duration</th><th>node/worker</th><th>outcome</th><th class="n">started</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function failedTable(m: ReportModel): string {
  if (m.failedTotal === 0) return '<p class="note ok-note" id="no-failures">No task failed.</p><table id="failed" hidden><tbody></tbody></table>';
  const rows = m.failed
    .map((r) => `<tr class="failed" data-index="${r.index}"><td>${taskCell(r)}</td><td>${where(r)}</td><td class="err">${errorCell(r)}</td><td class="n">${r.attempts}</td><td class="n">${when(r)}</td><td class="n">${dur(r)}</td></tr>`)
    .join('');
  return `<table id="failed"><thead><tr><th>task</th><th>node/worker</th><th>error</th><th class="n">attempts</th><th class="n">started</th><th class="n">duration</th></tr></thead><tbody>${rows}</tbody></table>${more(m.failed.length, m.failedTotal, 'failed tasks')}`;
}

function retriesTable(m: ReportModel): string {
  if (m.retriesTotal === 0) return '<p class="note">No task was retried or re-dispatched.</p>';
  const rows = m.retries
    .map((r) => `<tr class="${r.outcome}" data-index="${r.index}"><td>${taskCell(r)}</td><td class="n">${r.attempts}</td><td>${outcomeCell(r.outcome)}</td><td>${where(r)}</td><td class="err">${errorCell(r)}</td></tr>`)
    .join('');
  return `<table id="retries"><thead><tr><th>task</th><th class="n">attempts</th><th>outcome</th><th>node/worker (last)</th><th>error</th></tr></thead><tbody>${rows}</tbody></table>${more(m.retries.length, m.retriesTotal, 'retried records')}`;
}

function nodesTable(m: ReportModel): string {
  const rows = m.nodes
    .map(
      (n) =>
        `<tr data-node="${esc(n.node)}"${n.lost ? ' class="lost"' : ''}><td>${esc(n.node)}${n.lost ? ` <span class="bad" title="${esc(n.lost.reason)}">lost${n.lost.times > 1 ? ` ×${n.lost.times}` : ''} at ${esc(utc(n.lost.at))}</span>` : ''}</td><td class="n">${n.workers}</td><td class="n">${num(n.cpus)}</td><td class="n">${num(n.tasks)}</td><td class="n${n.failed ? ' bad' : ''}">${num(n.failed)}</td><td class="n">${num(n.retried + n.redispatched)}</td><td class="n">${duration(n.meanTaskMs)}</td><td class="n"><span class="bar-cell"><span style="width:${Math.min(100, n.utilization * 100).toFixed(1)}%"></span></span>${pct(n.utilization)}</td><td class="n">${coreHours(n.idleCoreHours)}</td></tr>`,
    )
    .join('');
  return `<table id="nodes"><thead><tr><th>node</th><th class="n">workers</th><th class="n">CPUs</th><th class="n">tasks</th><th class="n">failed</th><th class="n">retried</th><th class="n">mean task</th><th class="n">busy</th><th class="n">idle core-h</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function laneLabels(m: ReportModel, laneH: number): string {
  const showLanes = laneH >= 12;
  return m.nodes
    .map((n) => {
      const lanes = m.lanes
        .slice(n.firstLane, n.firstLane + n.laneCount)
        .map((l, k) => `<div class="lane-label" data-lane="${n.firstLane + k}" data-node="${esc(l.node)}" data-worker="${l.worker}" title="${esc(l.label)}: ${num(l.tasks)} tasks, ${duration(l.busyMs)} busy">${showLanes ? esc(l.label) : ''}</div>`)
        .join('');
      return `<div class="node-group" data-node="${esc(n.node)}"><div class="node-label" title="${esc(n.node)}: ${n.workers} workers, ${num(n.cpus)} CPUs, ${pct(n.utilization)} busy"><b>${esc(n.node)}</b> <small>${n.workers}w · ${num(n.cpus)} CPU · ${pct(n.utilization, 0)}</small></div>${lanes}</div>`;
    })
    .join('');
}

/** The report page: one string of HTML, with everything it needs inline. */
export function renderReport(m: ReportModel, options?: RenderOptions): string {
  const h = m.header;
  const c = m.counts;
  const title = options?.title ?? (h.command ? `slurmpool report: ${clip(h.command, 80)}` : 'slurmpool report');
  const laneH = laneHeight(m.lanes.length);
  const tl = m.timeline;
  const shownBars = tl.mode === 'bars' ? tl.bars.lane.length : tl.special.lane.length;
  const shownTasks = (tl.mode === 'bars' ? tl.bars.count : tl.special.count).reduce((a, b) => a + b, 0);
  const data = JSON.stringify(clientData(m)).replace(/</g, '\\u003c');
  const legend = OUTCOMES.map((o) => {
    const n = o === 'ok' ? c.ok - c.retried - c.redispatched : o === 'failed' ? c.failed : o === 'retried' ? c.retried : c.redispatched;
    return `<span class="key" data-outcome="${o}"><i style="background:${COLORS[o]}"></i>${LABELS[o]} <b>${num(n)}</b></span>`;
  }).join('');
  const timelineNote =
    tl.mode === 'bins'
      ? `${num(c.bars)} bars are more than the screen has pixels: each worker's row shows how busy it was in each of ${num(tl.bins)} time bins (${duration(tl.binMs)} each; darker is busier); failed, retried and re-dispatched tasks are drawn one by one on top${tl.specialDropped ? ` (the first ${num(tl.special.lane.length)}; ${num(tl.specialDropped)} more are only in the bins)` : ''}.`
      : `One bar per task (the items of a chunk that ran together share one bar).`;
  const untimed = c.untimed ? ` ${num(c.untimed)} record(s) carry no start and end time (a task whose worker died, or lost with its node) and appear only in the tables.` : '';
  const facts = [
    h.jobId ? fact('job', esc(h.jobId)) : '',
    h.grown?.length ? fact('grown by', `${h.grown.length} job${h.grown.length === 1 ? '' : 's'} <small>(${esc(h.grown.join(', '))})</small>`, 'jobs the pool submitted with sbatch (--grow); their nodes joined it') : '',
    fact('mode', esc(h.mode ?? '–')),
    h.fn ? fact('task', `<code>${esc(h.fn)}</code>`) : '',
    fact('nodes', num(h.nodes)),
    fact('CPUs', num(h.cpus)),
    fact('workers', num(h.workers)),
    fact('start', utc(h.started)),
    fact('end', utc(h.ended)),
    fact('wall time', duration(h.wallMs)),
    fact('tasks/s', rate(h.tasksPerSec)),
    fact('overhead', `${duration(h.overheadMs)} <small>(${pct(h.wallMs > 0 ? h.overheadMs / h.wallMs : 0)} of wall)</small>`, 'wall time beyond a perfect packing of the busy time on all workers: wall − busy ÷ workers'),
    c.records !== c.tasks ? fact('records', `${num(c.records)} <small>(for ${num(c.tasks)} tasks)</small>`) : '',
  ].join('');
  const cards = [
    card('tasks', num(c.tasks), `${num(c.ok)} ok`),
    card('failed', num(c.failed), c.failed ? `${pct(c.tasks ? c.failed / c.tasks : 0, 2)} of tasks` : 'none', c.failed ? 'bad' : 'good'),
    card('retried', num(m.retriesTotal), retriedSub(m), m.retriesTotal ? 'warn' : ''),
    card('wall time', duration(h.wallMs), `${rate(h.tasksPerSec)} tasks/s`),
    card('utilization', pct(h.utilization), `busy ${duration(h.busyMs)} of ${num(h.workers)} workers × wall`),
    card('idle allocation', `${coreHours(h.idleCoreHours)} <small>core-h</small>`, `of ${coreHours(h.allocCoreHours)} core-h (${pct(h.allocCoreHours > 0 ? h.idleCoreHours / h.allocCoreHours : 0)})`),
  ].join('');
  const warnings = m.warnings.length ? `<section id="warnings"><h2>Skipped lines</h2><ul>${m.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></section>` : '';
  const generated = (options?.generatedAt ?? new Date()).getTime();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="slurmpool report">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style>${CSS.replace('LANE_H', `${laneH}px`)}</style>
</head>
<body>
<header class="top">
  <div class="brand">slurmpool <span>report</span></div>
  <h1>${h.command ? `<code>${esc(h.command)}</code>` : 'Run report'}</h1>
  <dl class="facts">${facts}</dl>
</header>
<main>
<section class="cards">${cards}</section>
<section id="timeline-section">
  <div class="section-head"><h2>Timeline</h2><div class="legend">${legend}</div><span class="hint">hover a bar for its task · drag to zoom · double-click to reset</span><button id="reset-zoom" type="button" hidden>reset zoom</button></div>
  <p class="note">${timelineNote}${untimed}</p>
  <div id="timeline" class="chart" data-mode="${tl.mode}" data-nodes="${m.nodes.length}" data-lanes="${m.lanes.length}" data-tasks="${c.tasks}" data-records="${c.records}" data-bars="${shownBars}" data-bar-tasks="${shownTasks}" data-failed="${c.failed}">
    <div class="row axis-row"><div class="gutter"></div><div class="plot"><canvas id="axis" height="22"></canvas></div></div>
    <div class="row"><div class="gutter labels">${laneLabels(m, laneH)}</div><div class="plot" id="tl-plot"><canvas id="tl-canvas"></canvas><div id="sel" hidden></div></div></div>
  </div>
</section>
<section id="utilization-section">
  <div class="section-head"><h2>Utilization</h2><span class="hint">busy workers ÷ all workers, over time</span></div>
  <div id="utilization" class="chart">
    <div class="row"><div class="gutter util-label"><b>all nodes</b><small>${pct(h.utilization)} busy on average</small></div><div class="plot util-plot"><canvas id="util-canvas"></canvas></div></div>
    <div class="row"><div class="gutter strip-labels">${m.nodes.map((n) => `<div class="strip-label" title="${esc(n.node)}">${esc(n.node)} <small>${pct(n.utilization, 0)}</small></div>`).join('')}</div><div class="plot"><canvas id="strip-canvas"></canvas></div></div>
    <div class="row axis-row"><div class="gutter"></div><div class="plot"><canvas id="axis2" height="22"></canvas></div></div>
  </div>
  <h3>Per node</h3>
  ${nodesTable(m)}
</section>
<section id="failed-section"><h2>Failed tasks <span class="count">${num(m.failedTotal)}</span></h2>${failedTable(m)}</section>
<section id="slowest-section"><h2>Slowest tasks</h2>${slowestTable(m)}</section>
<section id="retries-section"><h2>Retries and re-dispatches <span class="count">${num(m.retriesTotal)}</span></h2>${retriesTable(m)}</section>
${warnings}
</main>
<footer>Made by slurmpool from ${num(c.records)} records on ${utc(generated)}. Times are UTC; bars and bins are measured on the workers. One file, no network.</footer>
<div id="tip" role="tooltip" hidden></div>
<script id="report-data" type="application/json">${data}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;
}

const CSS = `
:root{--gutter:190px;--lane-h:LANE_H;--ink:#1d2330;--muted:#667085;--line:#e3e6eb;--bg:#f5f6f8;--card:#fff;--accent:#2f6fd0}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
header.top{background:#1d2330;color:#e8ebf0;padding:16px 28px 14px}
.brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#9aa4b5}.brand span{color:#6fc79a}
header h1{margin:4px 0 10px;font-size:18px;font-weight:600;word-break:break-all}header h1 code{font-size:16px;color:#fff}
.facts{display:flex;flex-wrap:wrap;gap:6px 26px;margin:0}.fact{display:flex;gap:6px;align-items:baseline}.fact dt{color:#9aa4b5;font-size:12px}.fact dd{margin:0;font-variant-numeric:tabular-nums}.fact small{color:#9aa4b5}
main{padding:18px 28px 8px;max-width:2400px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card-v{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}.card-v small{font-size:13px;font-weight:500;color:var(--muted)}
.card-l{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}.card-s{font-size:12px;color:var(--muted)}
.card.bad .card-v{color:#c62f2f}.card.warn .card-v{color:#b7780a}.card.good .card-v{color:#2f8a5d}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px 14px;margin-bottom:18px}
.cards{background:none;border:0;padding:0}
h2{font-size:16px;margin:0 0 6px}h3{font-size:14px;margin:14px 0 6px}
h2 .count{font-size:12px;font-weight:600;background:#eef0f3;border-radius:10px;padding:1px 8px;vertical-align:2px;color:var(--muted)}
.section-head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 18px}.section-head h2{margin:0}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px}.key{display:inline-flex;align-items:center;gap:5px;font-size:13px}.key i,.pill i{display:inline-block;width:12px;height:12px;border-radius:3px}
.key b{font-weight:600;font-variant-numeric:tabular-nums}
.hint{color:var(--muted);font-size:12px}
button{font:inherit;font-size:12px;border:1px solid var(--line);background:#fff;border-radius:6px;padding:2px 10px;cursor:pointer}
.note{color:var(--muted);font-size:12.5px;margin:6px 0 8px}.ok-note{color:#2f8a5d}
.chart .row{display:flex;align-items:stretch}
.gutter{width:var(--gutter);flex:none;padding-right:8px}
.plot{flex:1;position:relative;min-width:0}
.plot canvas{position:absolute;left:0;top:0;width:100%;height:100%;display:block}
.axis-row{height:22px}
.labels{position:relative}
.node-group{border-top:1px solid #c9ced6}
.node-group:first-child{border-top:0}
.node-label{height:18px;line-height:18px;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.node-label small{color:var(--muted)}
.lane-label{height:var(--lane-h);line-height:var(--lane-h);font-size:11px;color:var(--muted);text-align:right;padding-right:2px;white-space:nowrap;overflow:hidden;font-variant-numeric:tabular-nums}
#tl-canvas{cursor:crosshair}
#sel{position:absolute;top:0;bottom:0;background:rgba(47,111,208,.15);border-left:1px solid var(--accent);border-right:1px solid var(--accent);pointer-events:none}
.util-plot{height:110px}.util-label{display:flex;flex-direction:column;justify-content:center}.util-label small{color:var(--muted)}
.strip-label{height:14px;line-height:14px;margin-top:3px;font-size:11px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.strip-label small{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;border-bottom:1px solid var(--line);padding:4px 8px}
td{border-bottom:1px solid #f0f1f4;padding:4px 8px;vertical-align:top}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bad{color:#c62f2f;font-weight:600}
tr.failed td:first-child{box-shadow:inset 3px 0 0 ${COLORS.failed}}
tr[data-index]:hover{background:#f7f9fc}
td.err{max-width:760px;word-break:break-word}td.err b{color:#b42d2d}.what code{color:var(--muted)}
details summary{cursor:pointer;color:var(--muted);font-size:12px}pre{white-space:pre-wrap;margin:4px 0;background:#f7f8fa;padding:6px 8px;border-radius:4px}
.pill{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}
a.task{color:var(--accent);text-decoration:none;font-variant-numeric:tabular-nums}a.task:hover{text-decoration:underline}
.bar-cell{display:inline-block;width:60px;height:8px;background:#eef0f3;border-radius:4px;margin-right:8px;vertical-align:0;overflow:hidden}.bar-cell span{display:block;height:100%;background:#3b7dd8}
#warnings li{font-family:ui-monospace,monospace;font-size:12px}
#tip{position:fixed;z-index:10;pointer-events:none;background:#1d2330;color:#eef1f5;font-size:12px;line-height:1.45;padding:7px 10px;border-radius:6px;max-width:420px;box-shadow:0 4px 14px rgba(0,0,0,.25)}
#tip .t{font-weight:650;color:#fff}#tip .o{display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:5px}#tip .e{color:#ffb4b4;word-break:break-word}#tip hr{border:0;border-top:1px solid #3a4253;margin:5px 0}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
#failed-section,#slowest-section,#retries-section,#warnings{content-visibility:auto;contain-intrinsic-size:auto 480px}
`;
