// Turns measured groups into figures, ratios and verdicts, and prints them as one table.
import { median } from './harness.mjs';

/** "How much better slurmpool is" as a factor > 1: rate ratio for rates, inverse for times. */
function advantage(better, subject, other) {
  return better === 'lower' ? other / subject : subject / other;
}

function targetText(t) {
  if (!t) return '—';
  if (t.kind === 'bestPeer') return `≥ ${t.min}× best peer`;
  if (t.kind === 'peer') return `≥ ${t.min}× ${t.peer}`;
  if (t.kind === 'absolute') return t.max !== undefined ? `≤ ${t.max}` : `≥ ${t.min}`;
  if (t.kind === 'baseline') return `≤ ${t.max}× ${[].concat(t.baseline).join(' + ')}`;
  return JSON.stringify(t);
}

/** Adds median to every row, `vs` (slurmpool's advantage) to other rows, and a verdict to subject rows. */
export function evaluate(group) {
  for (const r of group.rows) r.median = median(r.values);
  const subjects = group.rows.filter((r) => r.role === 'subject');
  const first = subjects.find((r) => Number.isFinite(r.median));
  for (const r of group.rows) {
    if (r.role !== 'subject' && first && r.comparable && Number.isFinite(r.median) && group.unit !== '×') {
      r.vs = advantage(group.better, first.median, r.median);
    }
  }
  const peers = group.rows.filter((r) => r.role === 'peer' && r.comparable && Number.isFinite(r.median));
  const best = peers.length
    ? peers.reduce((a, b) => ((group.better === 'lower' ? b.median < a.median : b.median > a.median) ? b : a))
    : undefined;
  const t = group.target;
  group.targetText = targetText(t);
  for (const s of subjects) {
    if (!Number.isFinite(s.median)) {
      s.result = s.na ? 'n/a' : '—';
      continue;
    }
    let ratio;
    let against;
    let pass;
    if (!t || t.kind === 'bestPeer') {
      if (!best) {
        s.result = 'no peer figure';
        continue;
      }
      ratio = advantage(group.better, s.median, best.median);
      against = best.impl;
      if (t) pass = ratio >= t.min;
    } else if (t.kind === 'peer') {
      const p = group.rows.find((r) => r.key === t.peer);
      if (!p || !Number.isFinite(p.median)) {
        s.result = `no ${t.peer} figure`;
        continue;
      }
      ratio = advantage(group.better, s.median, p.median);
      against = p.impl;
      pass = ratio >= t.min;
    } else if (t.kind === 'absolute') {
      ratio = s.median;
      pass = t.max !== undefined ? ratio <= t.max : ratio >= t.min;
    } else if (t.kind === 'baseline') {
      // One baseline row, or several whose medians add up (D2: a TCP round trip plus a thread round trip).
      const keys = [].concat(t.baseline);
      const bs = keys.map((k) => group.rows.find((r) => r.key === k));
      const missing = keys.filter((k, i) => !bs[i] || !Number.isFinite(bs[i].median));
      if (missing.length) {
        s.result = `no ${missing.join(', ')} figure`;
        continue;
      }
      ratio = s.median / bs.reduce((sum, b) => sum + b.median, 0);
      against = bs.map((b) => b.impl).join(' + ');
      pass = ratio <= t.max;
    }
    s.ratio = ratio;
    s.against = against;
    s.pass = pass;
    const verdict = pass === undefined ? '' : pass ? 'PASS ' : 'MISS ';
    if (t?.kind === 'absolute') {
      s.result = `${verdict}${fmtValue(ratio, group.unit)}`;
      continue;
    }
    s.result = `${verdict}${fmtRatio(ratio)}${against ? ` ${t?.kind === 'baseline' ? 'of' : 'vs'} ${against}` : ''}`;
  }
  return group;
}

function fmtRatio(x) {
  return `${x.toFixed(2)}×`;
}

/** A figure with its unit, e.g. "19,900 tasks/s", "2.66 M tasks/s", "3.30 s", "1.97×". */
export function fmtValue(v, unit) {
  if (!Number.isFinite(v)) return '—';
  if (unit === '×') return `${v.toFixed(2)}×`;
  if (unit === 's') return v < 1 ? `${v.toFixed(3)} s` : `${v.toFixed(2)} s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M ${unit}`;
  if (v >= 100) return `${Math.round(v).toLocaleString('en-US')} ${unit}`;
  return `${v.toPrecision(3)} ${unit}`;
}

function cut(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** The figure cell of a row: its median, or why there is none. */
function figureCell(r, unit) {
  if (r.values.length) return fmtValue(r.median, unit);
  if (r.na) return cut(`n/a (${r.na})`, 56);
  if (r.skipped) return cut(`skipped: ${r.skipped}`, 56);
  if (r.errors.length) return cut(`error: ${r.errors[0]}`, 56);
  return '—';
}

/** The whole table as text, plus notes (full error messages, row notes) under it. */
export function render(groups) {
  const header = ['workload', 'implementation', 'median', 'min–max', 'reps', 'vs sp', 'target', 'result'];
  const lines = [];
  const notes = [];
  for (const g of groups) {
    g.rows.forEach((r, i) => {
      const spread =
        r.values.length > 1
          ? `${fmtShort(Math.min(...r.values), g.unit)}–${fmtShort(Math.max(...r.values), g.unit)}`
          : '';
      const mark = r.note ? ` [${noteIndex(notes, r.note)}]` : '';
      const errMark = r.errors.length && r.values.length ? ` [${noteIndex(notes, `${r.impl}: ${r.errors.length} failed: ${r.errors[0]}`)}]` : '';
      const cell = figureCell(r, g.unit);
      if (!r.values.length && (r.errors.length || r.na) && cell.endsWith('…')) {
        noteIndex(notes, `${g.title}, ${r.impl}: ${r.na ?? r.errors[0]}`);
      }
      lines.push([
        i === 0 ? g.title : '',
        `${r.impl}${mark}${errMark}`,
        cell,
        spread,
        r.skipped || r.na ? '' : `${r.values.length}/${r.runs ?? r.planned}`,
        r.vs !== undefined ? fmtRatio(r.vs) : '',
        r.role === 'subject' ? g.targetText : '',
        r.role === 'subject' ? (r.result ?? '') : '',
      ]);
    });
    lines.push(null);
  }
  const rows = [header, null, ...lines];
  const widths = header.map((_, c) => Math.max(...rows.filter(Boolean).map((r) => r[c].length)));
  const out = rows.map((r) =>
    r === null ? widths.map((w) => '-'.repeat(w)).join('-+-') : r.map((cell, c) => cell.padEnd(widths[c])).join(' | ').trimEnd(),
  );
  if (out.at(-1)?.startsWith('-')) out.pop();
  const text = [out.join('\n')];
  text.push('');
  text.push('vs sp: how many times better slurmpool is than that row (rates: slurmpool/row; times: row/slurmpool).');
  if (notes.length) text.push(...notes.map((n, i) => `[${i + 1}] ${n}`));
  return text.join('\n');
}

function fmtShort(v, unit) {
  if (unit === '×') return v.toFixed(2);
  if (unit === 's') return v < 1 ? v.toFixed(3) : v.toFixed(2);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return `${Math.round(v)}`;
}

function noteIndex(notes, note) {
  const i = notes.indexOf(note);
  if (i >= 0) return i + 1;
  notes.push(note);
  return notes.length;
}
