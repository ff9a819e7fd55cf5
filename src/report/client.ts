// The report page's script, inline in the HTML: draws the timeline and utilization on canvases, tooltips, zoom.
// Plain ES2017 in a string (the page has no build step); no backticks or template placeholders inside.

export const CLIENT_JS = String.raw`(function () {
'use strict';
var D = JSON.parse(document.getElementById('report-data').textContent);
var COL = D.colors, NAMES = D.names, SPAN = D.span, T0 = D.t0;
var dpr = Math.max(1, window.devicePixelRatio || 1);
var tlEl = document.getElementById('timeline');
var plot = document.getElementById('tl-plot');
var cv = document.getElementById('tl-canvas');
var axis = document.getElementById('axis'), axis2 = document.getElementById('axis2');
var ucv = document.getElementById('util-canvas'), scv = document.getElementById('strip-canvas');
var tip = document.getElementById('tip');
var sel = document.getElementById('sel');
var resetBtn = document.getElementById('reset-zoom');
var view = [0, SPAN];
var highlight = null;

function decode(s, Ctor) {
  var bin = atob(s), n = bin.length, u8 = new Uint8Array(n);
  for (var i = 0; i < n; i++) u8[i] = bin.charCodeAt(i);
  return new Ctor(u8.buffer, 0, n / Ctor.BYTES_PER_ELEMENT);
}
var B = D.bars, NB = B.l.length;
var bins = D.bins ? { n: D.bins.n, ms: D.bins.ms, busy: decode(D.bins.busy, Uint8Array), tasks: decode(D.bins.tasks, Uint16Array) } : null;
var NL = D.lanes.length;

// Bars of each lane sorted by start, for hover.
var laneBars = [], laneMax = new Float64Array(NL);
(function () {
  var per = [];
  for (var l = 0; l < NL; l++) per.push([]);
  for (var b = 0; b < NB; b++) { per[B.l[b]].push(b); if (B.d[b] > laneMax[B.l[b]]) laneMax[B.l[b]] = B.d[b]; }
  for (var k = 0; k < NL; k++) { per[k].sort(function (a, c) { return B.s[a] - B.s[c]; }); laneBars.push(Int32Array.from(per[k])); }
})();
var byOutcome = [[], [], [], []];
for (var b0 = 0; b0 < NB; b0++) byOutcome[B.o[b0]].push(b0);

// Lane positions come from the labels' layout, so canvas rows and labels always line up.
var laneY = new Float64Array(NL), laneH = new Float64Array(NL);
function measure() {
  var els = tlEl.querySelectorAll('.lane-label');
  for (var i = 0; i < els.length; i++) { var l = +els[i].getAttribute('data-lane'); laneY[l] = els[i].offsetTop; laneH[l] = els[i].offsetHeight; }
}

function fit(c) {
  var w = c.parentNode.clientWidth, h = c.parentNode.clientHeight;
  c.width = Math.max(1, Math.round(w * dpr)); c.height = Math.max(1, Math.round(h * dpr));
  var ctx = c.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx: ctx, w: w, h: h };
}
function pad(n, k) { n = String(n); while (n.length < (k || 2)) n = '0' + n; return n; }
function dur(ms) {
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 1000) return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + ' ms';
  var s = ms / 1000; if (s < 60) return (s < 10 ? s.toFixed(2) : s.toFixed(1)) + ' s';
  var m = Math.floor(s / 60); if (m < 60) return m + 'm ' + pad(Math.floor(s % 60)) + 's';
  return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
}
function rel(ms, step) {
  var neg = ms < 0; ms = Math.abs(ms);
  var digits = step === undefined ? 3 : step < 10 ? 3 : step < 100 ? 2 : step < 1000 ? 1 : 0;
  var h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = (ms % 60000) / 1000;
  var ss = digits ? s.toFixed(digits) : String(Math.floor(s + 1e-9));
  if (parseFloat(ss) >= 60) ss = digits ? (0).toFixed(digits) : '0';
  var si = ss.indexOf('.'); if ((si < 0 ? ss.length : si) < 2) ss = '0' + ss;
  return (neg ? '-' : '') + (h ? h + ':' + pad(m) : String(m)) + ':' + ss;
}
function clock(ms) { return new Date(ms).toISOString().slice(11, 23); }
var STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];
function ticks(w) {
  var want = (view[1] - view[0]) / Math.max(2, w / 110), step = STEPS[STEPS.length - 1];
  for (var i = 0; i < STEPS.length; i++) if (STEPS[i] >= want) { step = STEPS[i]; break; }
  var out = [], t = Math.ceil(view[0] / step) * step;
  for (; t <= view[1]; t += step) out.push(t);
  return { step: step, ts: out };
}
function X(t, w) { return (t - view[0]) / (view[1] - view[0]) * w; }

function drawAxis(c) {
  var f = fit(c), ctx = f.ctx, tk = ticks(f.w);
  ctx.clearRect(0, 0, f.w, f.h);
  ctx.fillStyle = '#667085'; ctx.strokeStyle = '#c9ced6'; ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'middle';
  for (var i = 0; i < tk.ts.length; i++) {
    var x = Math.round(X(tk.ts[i], f.w)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, f.h - 5); ctx.lineTo(x, f.h); ctx.stroke();
    var label = rel(tk.ts[i], tk.step), tw = ctx.measureText(label).width;
    ctx.fillText(label, Math.min(Math.max(0, x - tw / 2), f.w - tw), f.h / 2 - 2);
  }
  return tk;
}

var drawnBars = 0;
function drawTimeline() {
  var f = fit(cv), ctx = f.ctx, w = f.w, span = view[1] - view[0];
  ctx.clearRect(0, 0, w, f.h);
  for (var l = 0; l < NL; l++) { ctx.fillStyle = l % 2 ? '#f3f4f7' : '#fafbfc'; ctx.fillRect(0, laneY[l], w, laneH[l]); }
  var tk = drawAxis(axis);
  ctx.strokeStyle = 'rgba(29,35,48,0.07)'; ctx.lineWidth = 1;
  for (var i = 0; i < tk.ts.length; i++) { var gx = Math.round(X(tk.ts[i], w)) + 0.5; ctx.beginPath(); ctx.moveTo(gx, 0); ctx.lineTo(gx, f.h); ctx.stroke(); }
  if (bins) {
    var n = bins.n, bms = bins.ms, k0 = Math.max(0, Math.floor(view[0] / bms)), k1 = Math.min(n - 1, Math.ceil(view[1] / bms));
    var bw = bms / span * w, levels = 8;
    ctx.fillStyle = COL[0];
    for (var lv = 0; lv < levels; lv++) {
      ctx.globalAlpha = 0.18 + 0.82 * (lv + 1) / levels;
      ctx.beginPath();
      for (var ln = 0; ln < NL; ln++) {
        var y = laneY[ln], h = laneH[ln], inset = h >= 8 ? 1 : 0, base = ln * n;
        for (var k = k0; k <= k1; k++) {
          var q = bins.busy[base + k];
          if (!q || Math.min(levels - 1, q >> 5) !== lv) continue;
          ctx.rect(X(k * bms, w), y + inset, bw + 0.6, h - 2 * inset);
        }
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
  drawnBars = 0;
  var labels = [];
  for (var o = 0; o < 4; o++) {
    var list = byOutcome[o];
    if (!list.length) continue;
    ctx.fillStyle = COL[o];
    ctx.beginPath();
    var minW = bins || o ? 2 : 1 / dpr;
    for (var j = 0; j < list.length; j++) {
      var b = list[j], s = B.s[b], d = B.d[b];
      if (s + d < view[0] || s > view[1]) continue;
      var x0 = X(s, w), x1 = X(s + d, w), bw2 = x1 - x0;
      if (bw2 < minW) { x0 -= (minW - bw2) / 2; bw2 = minW; } else if (bw2 > 4) bw2 -= 1;
      var ly = laneY[B.l[b]], lh = laneH[B.l[b]], ins = lh >= 8 ? 2 : 0;
      ctx.rect(x0, ly + ins, bw2, lh - 2 * ins);
      drawnBars++;
      if (bw2 > 44 && lh >= 14 && labels.length < 3000) labels.push([b, x0, ly, bw2, lh]);
    }
    ctx.fill();
  }
  ctx.fillStyle = '#fff'; ctx.font = '10px system-ui, sans-serif'; ctx.textBaseline = 'middle';
  for (var t = 0; t < labels.length; t++) {
    var L = labels[t], txt = '#' + B.i[L[0]] + (B.c[L[0]] > 1 ? '+' + (B.c[L[0]] - 1) : '');
    if (ctx.measureText(txt).width < L[3] - 6) ctx.fillText(txt, L[1] + 4, L[2] + L[4] / 2);
  }
  if (highlight !== null) {
    var hb = highlight, hx = X(B.s[hb], w), hw = Math.max(3, X(B.s[hb] + B.d[hb], w) - hx);
    ctx.strokeStyle = '#1d2330'; ctx.lineWidth = 2;
    ctx.strokeRect(hx - 2, laneY[B.l[hb]], hw + 4, laneH[B.l[hb]]);
  }
  ctx.strokeStyle = '#c9ced6'; ctx.lineWidth = 1;
  for (var g = 1; g < D.nodes.length; g++) { var gy = laneY[D.nodes[g].f] - 18.5; if (D.nodes[g].c) { ctx.beginPath(); ctx.moveTo(0, gy); ctx.lineTo(w, gy); ctx.stroke(); } }
  tlEl.setAttribute('data-drawn-bars', String(drawnBars));
}

function drawUtil() {
  var f = fit(ucv), ctx = f.ctx, w = f.w, h = f.h, U = D.util, ms = U.ms;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#eceef2';
  var top = 6, ph = h - top - 2;
  for (var p = 0; p <= 4; p++) { var y = top + ph * (1 - p / 4) + 0.5; ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke(); }
  var k0 = Math.max(0, Math.floor(view[0] / ms)), k1 = Math.min(U.n - 1, Math.ceil(view[1] / ms));
  ctx.beginPath(); ctx.moveTo(X(k0 * ms, w), top + ph);
  for (var k = k0; k <= k1; k++) { var yy = top + ph * (1 - U.all[k] / 1000); ctx.lineTo(X(k * ms, w), yy); ctx.lineTo(X((k + 1) * ms, w), yy); }
  ctx.lineTo(X((k1 + 1) * ms, w), top + ph); ctx.closePath();
  ctx.fillStyle = 'rgba(59,125,216,0.22)'; ctx.fill();
  ctx.strokeStyle = '#3b7dd8'; ctx.lineWidth = 1.5; ctx.stroke();
  ctx.font = '10px system-ui, sans-serif'; ctx.textBaseline = 'middle';
  for (var q = 1; q <= 4; q++) {
    var ly = top + ph * (1 - q / 4), lt = q * 25 + '%', lw = ctx.measureText(lt).width;
    ctx.fillStyle = 'rgba(255,255,255,0.85)'; ctx.fillRect(2, ly - 6, lw + 6, 12);
    ctx.fillStyle = '#667085'; ctx.fillText(lt, 5, ly);
  }
  var sf = fit(scv), sc = sf.ctx;
  sc.clearRect(0, 0, sf.w, sf.h);
  var rows = document.querySelectorAll('.strip-label');
  for (var n = 0; n < U.node.length; n++) {
    var r = rows[n], ry = r ? r.offsetTop - r.parentNode.offsetTop : n * 17 + 3, rh = r ? r.offsetHeight : 14, a = U.node[n];
    sc.fillStyle = '#f0f2f5'; sc.fillRect(0, ry, sf.w, rh);
    sc.fillStyle = '#3b7dd8';
    for (var j = k0; j <= k1; j++) {
      if (!a[j]) continue;
      sc.globalAlpha = 0.1 + 0.9 * a[j] / 1000;
      sc.fillRect(X(j * ms, sf.w), ry, ms / (view[1] - view[0]) * sf.w + 0.6, rh);
    }
    sc.globalAlpha = 1;
  }
  drawAxis(axis2);
}

function draw() {
  measure(); drawTimeline(); drawUtil();
  resetBtn.hidden = view[0] <= 0 && view[1] >= SPAN;
}

// Hover.
function laneAt(y) {
  for (var l = 0; l < NL; l++) if (y >= laneY[l] && y < laneY[l] + laneH[l]) return l;
  return -1;
}
function barsAt(l, t, tol) {
  var ids = laneBars[l], lo = 0, hi = ids.length - 1, last = -1;
  while (lo <= hi) { var mid = (lo + hi) >> 1; if (B.s[ids[mid]] <= t + tol) { last = mid; lo = mid + 1; } else hi = mid - 1; }
  var out = [], exact = [];
  for (var i = last, steps = 0; i >= 0 && steps < 5000; i--, steps++) {
    var b = ids[i];
    if (B.s[b] < t - tol - laneMax[l]) break;
    if (B.s[b] + B.d[b] >= t - tol) out.push(b);
    if (B.s[b] <= t && B.s[b] + B.d[b] >= t) exact.push(b);
  }
  // Bars under the pointer; only when there are none, the thin ones within a few pixels.
  if (exact.length) out = exact;
  out.sort(function (a, c) { return B.o[c] - B.o[a] || Math.abs(B.s[a] + B.d[a] / 2 - t) - Math.abs(B.s[c] + B.d[c] / 2 - t); });
  return out;
}
function line(parent, text, cls) { var d = document.createElement('div'); if (cls) d.className = cls; d.textContent = text; parent.appendChild(d); return d; }
function describe(parent, b) {
  var c = B.c[b], i = B.i[b];
  var head = line(parent, c > 1 ? 'tasks #' + i + '–#' + (i + c - 1) + ' (' + c + ', one chunk)' : 'task #' + i, 't');
  var sw = document.createElement('span'); sw.className = 'o'; sw.style.background = COL[B.o[b]]; head.insertBefore(sw, head.firstChild);
  line(parent, NAMES[B.o[b]] + ' · ' + dur(B.d[b]));
  line(parent, D.lanes[B.l[b]] + ' · started +' + rel(B.s[b]) + ' (' + clock(T0 + B.s[b]) + ' UTC)');
  if (D.err[i] !== undefined) line(parent, D.err[i], 'e');
}
function showTip(ev, fill) {
  while (tip.firstChild) tip.removeChild(tip.firstChild);
  if (!fill(tip)) { tip.hidden = true; return; }
  tip.hidden = false;
  var x = ev.clientX + 14, y = ev.clientY + 14, r = tip.getBoundingClientRect();
  if (x + r.width > window.innerWidth - 4) x = ev.clientX - r.width - 14;
  if (y + r.height > window.innerHeight - 4) y = ev.clientY - r.height - 14;
  tip.style.left = Math.max(4, x) + 'px'; tip.style.top = Math.max(4, y) + 'px';
}
function tlTip(ev) {
  var r = cv.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
  var l = laneAt(y), span = view[1] - view[0], t = view[0] + x / r.width * span, tol = 3 / r.width * span;
  showTip(ev, function (el) {
    if (l < 0) return false;
    var hits = barsAt(l, t, tol);
    for (var h = 0; h < hits.length && h < 3; h++) { if (h) el.appendChild(document.createElement('hr')); describe(el, hits[h]); }
    if (hits.length > 3) line(el, '… and ' + (hits.length - 3) + ' more here');
    if (bins) {
      var k = Math.min(bins.n - 1, Math.max(0, Math.floor(t / bins.ms))), q = bins.busy[l * bins.n + k];
      if (hits.length) el.appendChild(document.createElement('hr'));
      line(el, D.lanes[l], hits.length ? '' : 't');
      line(el, '+' + rel(k * bins.ms) + ' to +' + rel((k + 1) * bins.ms) + ': ' + Math.round(q / 2.55) + '% busy, ' + bins.tasks[l * bins.n + k] + ' tasks started');
    } else if (!hits.length) {
      line(el, D.lanes[l], 't'); line(el, 'idle at +' + rel(t));
    }
    return true;
  });
}
function utilTip(ev, c, node) {
  var r = c.getBoundingClientRect(), U = D.util, t = view[0] + (ev.clientX - r.left) / r.width * (view[1] - view[0]);
  var k = Math.min(U.n - 1, Math.max(0, Math.floor(t / U.ms)));
  showTip(ev, function (el) {
    var n = node(ev.clientY - r.top);
    if (n === -2) return false;
    var v = n < 0 ? U.all[k] : U.node[n][k];
    line(el, n < 0 ? 'all nodes (' + U.workers + ' workers)' : D.nodes[n].n + ' (' + D.nodes[n].w + ' workers)', 't');
    line(el, '+' + rel(k * U.ms) + ' to +' + rel((k + 1) * U.ms) + ': ' + (v / 10).toFixed(1) + '% busy');
    return true;
  });
}
cv.addEventListener('mousemove', function (ev) { if (drag) return dragMove(ev); tlTip(ev); });
cv.addEventListener('mouseleave', function () { tip.hidden = true; });
ucv.addEventListener('mousemove', function (ev) { utilTip(ev, ucv, function () { return -1; }); });
scv.addEventListener('mousemove', function (ev) {
  var rows = document.querySelectorAll('.strip-label');
  utilTip(ev, scv, function (y) { for (var i = 0; i < rows.length; i++) { var top = rows[i].offsetTop - rows[i].parentNode.offsetTop; if (y >= top && y < top + rows[i].offsetHeight) return i; } return -2; });
});
ucv.addEventListener('mouseleave', function () { tip.hidden = true; });
scv.addEventListener('mouseleave', function () { tip.hidden = true; });

// Zoom: drag a range; double-click or the button to reset.
var drag = null;
cv.addEventListener('mousedown', function (ev) { if (ev.button) return; var r = cv.getBoundingClientRect(); drag = { x: ev.clientX - r.left, w: r.width }; tip.hidden = true; ev.preventDefault(); });
function dragMove(ev) {
  var r = cv.getBoundingClientRect(), x = Math.min(r.width, Math.max(0, ev.clientX - r.left));
  sel.hidden = false; sel.style.left = Math.min(x, drag.x) + 'px'; sel.style.width = Math.abs(x - drag.x) + 'px';
}
window.addEventListener('mouseup', function (ev) {
  if (!drag) return;
  var r = cv.getBoundingClientRect(), x = Math.min(r.width, Math.max(0, ev.clientX - r.left)), d = drag;
  drag = null; sel.hidden = true;
  if (Math.abs(x - d.x) < 5) return;
  var span = view[1] - view[0], a = view[0] + Math.min(x, d.x) / d.w * span, b = view[0] + Math.max(x, d.x) / d.w * span;
  if (b - a < 0.05) b = a + 0.05;
  view = [a, b]; draw();
});
function reset() { view = [0, SPAN]; highlight = null; draw(); }
cv.addEventListener('dblclick', reset);
resetBtn.addEventListener('click', reset);

// A task link in a table: zoom to its bar and outline it.
function find(index) {
  for (var b = 0; b < NB; b++) if (index >= B.i[b] && index < B.i[b] + B.c[b]) return b;
  return -1;
}
document.addEventListener('click', function (ev) {
  var a = ev.target.closest ? ev.target.closest('a.task') : null;
  if (!a) return;
  ev.preventDefault();
  var b = find(+a.getAttribute('data-task'));
  if (b < 0) return;
  var mid = B.s[b] + B.d[b] / 2, half = Math.max(B.d[b] * 4, SPAN / 40);
  view = [Math.max(0, mid - half), Math.min(SPAN, mid + half)]; highlight = b; draw();
  var lane = tlEl.querySelector('.lane-label[data-lane="' + B.l[b] + '"]');
  (lane || tlEl).scrollIntoView({ block: 'center' });
});

var pending = false;
window.addEventListener('resize', function () { if (pending) return; pending = true; requestAnimationFrame(function () { pending = false; draw(); }); });

draw();
var drawnAt = performance.now();
tlEl.setAttribute('data-ready', '1');
// For tests and benchmarks: where a task's bar is on screen, and when the first draw ended.
window.slurmpoolReport = {
  firstDrawMs: drawnAt,
  locate: function (index) {
    var b = find(index);
    if (b < 0) return null;
    var r = cv.getBoundingClientRect(), span = view[1] - view[0];
    var x0 = r.left + (B.s[b] - view[0]) / span * r.width, x1 = r.left + (B.s[b] + B.d[b] - view[0]) / span * r.width;
    return { x: (x0 + x1) / 2, y: r.top + laneY[B.l[b]] + laneH[B.l[b]] / 2, width: x1 - x0, lane: D.lanes[B.l[b]], outcome: NAMES[B.o[b]], color: COL[B.o[b]] };
  }
};
})();
`;
