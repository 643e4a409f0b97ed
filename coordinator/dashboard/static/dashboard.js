// Live dashboard: one EventSource, per-subject timelines, latency table and histograms per hop, device table.
// Events (server-sent): "snapshot" once, then "fused" per fused emotion and "stats" every second.
"use strict";

const COLORS = { happy: "#f2c14e", angry: "#e4572e", sad: "#4f7cac", calm: "#59c3a3" };
const PALETTE = ["#f2c14e", "#e4572e", "#4f7cac", "#59c3a3", "#b07bd9", "#d98b7b", "#7bd9c6", "#c2d97b"];
const HOPS = ["queue", "inference", "spool", "network", "wait", "fuse", "publish", "added", "total"];
const KEEP_POINTS = 180;

const subjects = new Map();  // id -> {el, plot, data: [t, ...per label], labels, hits, total}
const hopPlots = new Map();  // hop -> {root, title, plot}

function colorOf(label, i) { return COLORS[label] || PALETTE[i % PALETTE.length]; }
function fmt(x, digits = 1) { return Number.isFinite(x) ? x.toFixed(digits) : "–"; }
function fmtMs(ms) { if (ms == null) return ""; return ms >= 1000 ? `${+(ms / 1000).toPrecision(2)} s` : `${+ms.toPrecision(2)}`; }
function hopOrder(a, b) { return HOPS.indexOf(a.hop) - HOPS.indexOf(b.hop); }
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function bar(labels, probs) {
  const b = el("div", "bar");
  labels.forEach((label, i) => {
    const s = el("span");
    s.style.width = `${(100 * (probs[i] || 0)).toFixed(1)}%`;
    s.style.background = colorOf(label, i);
    s.title = `${label} ${(100 * (probs[i] || 0)).toFixed(0)}%`;
    b.appendChild(s);
  });
  return b;
}

function subjectEntry(id, labels) {
  let entry = subjects.get(id);
  if (entry) return entry;
  const root = el("div", "subject");
  root.dataset.subject = id;
  const head = el("div", "subject-head");
  head.append(el("span", "subject-name", id), el("span", "label", "…"), el("span", "truth", ""), el("span", "truth acc", ""));
  const mods = el("div", "modalities");
  const chart = el("div", "chart");
  root.append(head, mods, chart);
  const list = document.getElementById("subjects");
  list.insertBefore(root, [...list.children].find((c) => c.dataset.subject > id) || null);  // sorted by id
  const width = Math.max(320, document.getElementById("subjects").clientWidth - 10);
  const series = [{}].concat(labels.map((label, i) => ({ label, stroke: colorOf(label, i), width: 2 })));
  const plot = new uPlot({
    width, height: 140, series, legend: { live: false },
    // one point: uPlot would stretch the time axis over years; show ten seconds around it instead
    scales: { x: { range: (u, lo, hi) => (u.data[0].length === 1 ? [lo - 5, lo + 5] : [lo, hi]) }, y: { range: [0, 1] } },
    axes: [{ stroke: "#8a96a3", grid: { stroke: "#26313c" } }, { stroke: "#8a96a3", grid: { stroke: "#26313c" } }],
  }, [[]].concat(labels.map(() => [])), chart);
  entry = { root, head, mods, plot, labels, data: [[]].concat(labels.map(() => [])), hits: 0, total: 0 };
  subjects.set(id, entry);
  return entry;
}

function onFused(f) {
  const entry = subjectEntry(f.subject_id, f.labels);
  const [, labelEl, truthEl, accEl] = entry.head.children;
  labelEl.textContent = f.label;
  labelEl.style.color = colorOf(f.label, f.labels.indexOf(f.label));
  if (f.truth_label) {
    entry.total += 1;
    if (f.truth_label === f.label) entry.hits += 1;
    truthEl.textContent = `truth: ${f.truth_label}`;
    truthEl.className = f.truth_label === f.label ? "truth match" : "truth miss";
    accEl.textContent = `accuracy ${(100 * entry.hits / entry.total).toFixed(0)}% of ${entry.total}`;
  }
  entry.data[0].push(f.window_end_ms / 1000);
  f.labels.forEach((_, i) => entry.data[i + 1].push(f.probs[i]));
  if (entry.data[0].length > KEEP_POINTS) entry.data.forEach((s) => s.shift());
  entry.plot.setData(entry.data);
  entry.mods.replaceChildren(...f.contributions.map((c) => {
    const m = el("div", "modality", `${c.modality} · w ${fmt(c.weight, 2)} · v${c.model_version}`);
    m.appendChild(bar(f.labels, c.probs));
    return m;
  }));
}

function onStats(s) {
  const rows = (s.latencies || []).filter((h) => h.modality === "" && h.count > 0).sort(hopOrder);
  const tbody = document.querySelector("#latency tbody");
  tbody.replaceChildren(...rows.map((h) => {
    const tr = el("tr");
    tr.dataset.hop = h.hop;
    [h.hop, String(h.count), fmt(h.p50_ms), fmt(h.p95_ms), fmt(h.p99_ms), fmt(h.max_ms)].forEach((v) => tr.appendChild(el("td", "", v)));
    return tr;
  }));
  const p50 = new Map(rows.map((h) => [h.hop, h.p50_ms]));
  (s.histograms || []).slice().sort(hopOrder).forEach((h) => drawHistogram(h, p50.get(h.hop)));
  const devices = document.querySelector("#devices tbody");
  devices.replaceChildren(...(s.devices || []).map((d) => {
    const tr = el("tr");
    tr.dataset.device = d.device_id;
    const models = Object.entries(d.model_versions || {}).sort().map(([m, v]) => `${m} v${v}`).join(", ");
    const age = d.last_seen_ms ? `${fmt((Date.now() - d.last_seen_ms) / 1000, 1)} s ago` : "–";
    [d.device_id, d.subject_id, models, d.spool_depth ?? "–", d.queue_depth ?? "–", d.frames_dropped ?? "–", age]
      .forEach((v, i) => tr.appendChild(el("td", i < 3 ? (i === 2 ? "left models" : "left") : "", String(v))));
    return tr;
  }));
  const counters = document.getElementById("counters");
  counters.replaceChildren(...Object.entries(s.counters || {}).sort().flatMap(([k, v]) => [el("dt", "", k), el("dd", "", String(v))]));
}

// One small bar chart per hop: counts in the coordinator's log-spaced buckets, on a log ms axis.
function drawHistogram(h, p50) {
  const data = [h.buckets.map((b) => b[0]), h.buckets.map((b) => b[1])];
  let entry = hopPlots.get(h.hop);
  if (!entry) {
    const container = document.getElementById("latency-hists");
    const root = el("div", "hist");
    root.dataset.hop = h.hop;
    const title = el("div", "hist-title");
    const chart = el("div");
    root.append(title, chart);
    const after = [...container.children].find((c) => HOPS.indexOf(c.dataset.hop) > HOPS.indexOf(h.hop));
    container.insertBefore(root, after || null);
    const plot = new uPlot({
      width: Math.max(180, root.clientWidth), height: 90, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: false, distr: 3, log: 10 } },
      axes: [{ stroke: "#8a96a3", size: 24, values: (_, ticks) => ticks.map(fmtMs), grid: { show: false } },
             { stroke: "#8a96a3", size: 36, grid: { stroke: "#26313c" } }],
      series: [{}, { fill: "#4f7cacaa", stroke: "#4f7cac", points: { show: false }, paths: uPlot.paths.bars({ size: [1, 12] }) }],
    }, data, chart);
    entry = { title, plot };
    hopPlots.set(h.hop, entry);
  } else {
    entry.plot.setData(data);
  }
  entry.title.replaceChildren(el("b", "", h.hop), document.createTextNode(` p50 ${fmt(p50)} ms`));
}

function connect() {
  const status = document.getElementById("status");
  const source = new EventSource("events");
  source.addEventListener("open", () => { status.textContent = "live"; status.className = "status live"; });
  source.addEventListener("error", () => {
    status.textContent = "reconnecting…";
    status.className = "status down";
    // a refused stream (session expired or revoked) is not retried by the browser: reload to the login form
    if (source.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 5000);
  });
  source.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    (snap.fused || []).forEach(onFused);
    if (snap.stats) onStats(snap.stats);
  });
  source.addEventListener("fused", (e) => onFused(JSON.parse(e.data)));
  source.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
}

connect();
