// Compare 2 to 20 runs: overlaid curves in fixed colours, planned vs measured sparsity, pruning-window axis,
// a pinned dense baseline, final metrics, differing parameters and accuracy-vs-size with its Pareto frontier.
// Everything the page shows is in its URL (runs, baseline, x axis, smoothing, log scale), so it can be shared.

import { api, apiSeries, el, findDenseBaseline, FINISHED, fmt, renderHeader, runFacts, statusBadge, subscribe } from "./common.js";
import { draw, listenForZoom, pointBudget, smooth, X_AXES, xValues } from "./charts.js";
import { initGroups } from "./groups.js";
import { chartBoxes, entryKeys, initPicker, memberName } from "./picker.js";

renderHeader("compare.html");

const url = new URL(location.href);
const selection = (url.searchParams.get("runs") || "").split(",").map(Number).filter((id) => Number.isInteger(id) && id > 0);
const controls = {
  xaxis: document.getElementById("xaxis"),
  smoothing: document.getElementById("smoothing"),
  logy: document.getElementById("logy"),
  baseline: document.getElementById("baseline"),
};
controls.xaxis.value = X_AXES[url.searchParams.get("x")] ? url.searchParams.get("x") : "step";
controls.smoothing.value = url.searchParams.get("smooth") || "0";
controls.logy.checked = url.searchParams.get("log") === "1";
let data = null;
let picker = null; // the metric picker: charts of any key the runs logged (GET /api/compare/metric-keys)
let picked = {}; // run id -> key -> series of the picked keys, read with /api/compare?keys=
const zoomed = {}; // chart id -> {range, series}: a zoomed step window of every run, re-read for that chart

const METRICS = [
  ["loss", "Loss"], ["accuracy", "Accuracy (batch)"], ["val_accuracy", "Validation accuracy"],
  ["compressed_size_bytes", "Compressed size of the weights (bytes)"],
];

function label(run) { return `#${run.id} ${run.name}`; }
function isBaseline(run) { return run.id === data.baseline_id; }

function lineTraces(key, chart, style = {}) {
  const axis = controls.xaxis.value;
  const weight = key.includes("sparsity") ? 0 : Number(controls.smoothing.value);
  return data.runs.map((run) => {
    const s = (zoomed[chart]?.series ?? data.series)[run.id]?.[key];
    if (!s || !s.steps.length) return null;
    return {
      x: xValues(axis, run, s.steps, s.wall_times), y: smooth(s.values, weight, s.steps), mode: s.steps.length < 3 ? "lines+markers" : "lines",
      name: label(run) + (isBaseline(run) ? " (baseline)" : ""), legendgroup: String(run.id),
      line: { color: data.colors[run.id], width: isBaseline(run) ? 3 : 2, dash: isBaseline(run) ? "dash" : "solid", ...style },
      meta: { run_id: run.id, metric: key },
    };
  }).filter(Boolean);
}

function plannedTraces() {
  const axis = controls.xaxis.value;
  if (axis === "wall") return []; // the plan has steps, not times
  return data.runs.map((run) => {
    const planned = data.planned[run.id];
    return {
      x: xValues(axis, run, planned.steps), y: planned.target_sparsity, mode: "lines", showlegend: false,
      name: `${label(run)} planned`, legendgroup: String(run.id), hoverinfo: "skip",
      line: { color: data.colors[run.id], dash: "dot", shape: "hv", width: 1.5 }, meta: { run_id: run.id, metric: "planned_sparsity" },
    };
  });
}

function layout(chart, title, ytitle, log = controls.logy.checked) {
  const axis = controls.xaxis.value;
  const range = zoomed[chart] ? { range: zoomed[chart].range, autorange: false } : {};
  return { title: { text: title }, height: 360, xaxis: { title: { text: X_AXES[axis].title }, ...range }, yaxis: { title: { text: ytitle }, type: log ? "log" : "linear" } };
}

const CHART_KEYS = { "chart-sparsity": "measured_sparsity", ...Object.fromEntries(METRICS.map(([key]) => [`chart-${key}`, key])) };

function drawCharts() {
  draw("chart-sparsity", [...lineTraces("measured_sparsity", "chart-sparsity"), ...plannedTraces()],
    layout("chart-sparsity", "Sparsity: measured (solid) and planned (dotted)", "sparsity", false)).then(() => zoomable("chart-sparsity"));
  for (const [key, title] of METRICS) {
    const chart = `chart-${key}`;
    draw(chart, lineTraces(key, chart), layout(chart, title, key)).then(() => zoomable(chart));
  }
  drawPareto();
  drawPicked();
}

function pickedKeys() {
  return picker ? picker.picked().flatMap((value) => entryKeys(picker.entries(), value)) : [];
}

// Each picked entry is one chart: a line per run (per run and layer for a group of per-layer keys).
function drawPicked() {
  if (!picker || !data) return;
  const axis = controls.xaxis.value;
  for (const { value, node } of chartBoxes(picker.picked(), (gone) => picker.remove(gone))) {
    const keys = entryKeys(picker.entries(), value);
    const traces = data.runs.flatMap((run) => keys.map((key) => {
      const s = picked[run.id]?.[key];
      if (!s || !s.steps.length) return null;
      const weight = key.includes("sparsity") ? 0 : Number(controls.smoothing.value);
      return { x: xValues(axis, run, s.steps, s.wall_times), y: smooth(s.values, weight, s.steps),
        mode: s.steps.length < 3 ? "lines+markers" : "lines", legendgroup: String(run.id),
        name: keys.length > 1 ? `${label(run)} · ${memberName(value, key)}` : label(run),
        line: { color: data.colors[run.id], width: isBaseline(run) ? 3 : 1.5, dash: isBaseline(run) ? "dash" : "solid" },
        meta: { run_id: run.id, metric: key } };
    })).filter(Boolean);
    draw(node, traces, { ...layout(node.id, value, value), hovermode: traces.length > 8 ? "closest" : "x unified" });
  }
}

async function onPicked() {
  const missing = pickedKeys().filter((key) => !data.runs.every((run) => picked[run.id]?.[key]));
  if (missing.length) {
    const params = new URLSearchParams({ runs: selection.join(","), keys: missing.join(","),
      max_points: String(pointBudget(document.getElementById("chart-loss"))) });
    if (data.baseline_id) params.set("baseline", String(data.baseline_id));
    const body = await apiSeries(`/api/compare?${params}`);
    for (const [runId, byKey] of Object.entries(body.series)) Object.assign((picked[runId] ??= {}), byKey);
  }
  drawPicked();
}

// Zooming a chart on the step axis re-reads that step window of its metric for every run (every point when it fits).
function zoomable(id) {
  listenForZoom(id, zoomed, {
    unitsPerStep: () => (controls.xaxis.value === "step" ? 1 : null),
    read: (first, last, budget) => {
      const params = new URLSearchParams({ runs: selection.join(","), keys: CHART_KEYS[id],
        max_points: String(budget), start_step: String(first), end_step: String(last) });
      if (data.baseline_id) params.set("baseline", String(data.baseline_id));
      return apiSeries(`/api/compare?${params}`).then((body) => body.series);
    },
    redraw: drawCharts,
  });
}

// Each stage of a run with compress stages is its own point (pruned, cluster, qat, tflite_int8); a run without
// stages is one point. The frontier is drawn over all points: no other point is smaller and at least as accurate.
export function sizePoints(run) {
  const stages = (run.summary?.compression?.stages || []).filter((stage) => !stage.reference);
  if (stages.length) return stages.map((stage) => ({ zipped: stage.zip_bytes, accuracy: stage.test_accuracy, stage: stage.stage }));
  const facts = runFacts(run);
  return facts.zipped !== null && facts.accuracy !== null ? [{ zipped: facts.zipped, accuracy: facts.accuracy, stage: null }] : [];
}

export function paretoFront(points) {
  const sorted = [...points].sort((a, b) => a.zipped - b.zipped || b.accuracy - a.accuracy);
  const front = [];
  for (const point of sorted) if (!front.length || point.accuracy > front.at(-1).accuracy) front.push(point);
  return front;
}

function drawPareto() {
  const points = data.runs.flatMap((run) => sizePoints(run).map((point) => ({ ...point, run })));
  const front = paretoFront(points);
  const name = (point) => label(point.run) + (point.stage ? ` · ${point.stage}` : "");
  draw("chart-pareto", [
    ...data.runs.map((run) => {
      const mine = points.filter((point) => point.run === run);
      return {
        x: mine.map((p) => p.zipped), y: mine.map((p) => p.accuracy), text: mine.map(name),
        mode: mine.length > 1 ? "lines+markers" : "markers", name: label(run), legendgroup: String(run.id), showlegend: false,
        line: { color: data.colors[run.id], width: 1, shape: "vh" },
        marker: { color: data.colors[run.id], size: 13, symbol: mine.map((p) => (front.includes(p) ? "star" : "circle")), line: { width: 1, color: "#333" } },
        hovertemplate: "%{text}<br>%{x:,} bytes<br>accuracy %{y:.4f}<extra></extra>", meta: { run_id: run.id, metric: "pareto" },
      };
    }).filter((trace) => trace.x.length),
    { x: front.map((p) => p.zipped), y: front.map((p) => p.accuracy), mode: "lines", name: "Pareto frontier",
      line: { color: "#333", dash: "dot", shape: "hv" }, meta: { metric: "pareto_frontier" } },
  ], { title: { text: "Test accuracy vs zipped size, each compress stage a point (★ Pareto frontier)" }, height: 360, hovermode: "closest",
    xaxis: { title: { text: "zipped file (bytes; .keras, or each stage's file)" }, type: points.some((p) => p.stage) ? "log" : "linear" },
    yaxis: { title: { text: "test accuracy" } } });
}

function drawTables() {
  const runs = data.runs;
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "" }), ...runs.map((run) => el("th", { scope: "col" },
    el("span", { class: "swatch", style: `background:${data.colors[run.id]}` }),
    el("a", { href: `run.html?id=${run.id}`, text: label(run) }), isBaseline(run) ? " (baseline)" : "",
    isBaseline(run) ? null : el("button", { type: "button", class: "secondary", text: "×", "aria-label": `remove run ${run.id} from the comparison`,
      onclick: () => { navigate({ runs: selection.filter((id) => id !== run.id).join(",") }); } })))));
  const base = runs.find(isBaseline);
  const baseSize = base ? runFacts(base).zipped : null;
  const rows = [
    ["status", (run) => statusBadge(run)],
    ["schedule", (run, f) => `${f.kind} → ${fmt.pct(f.target)}`],
    ["final sparsity", (run, f) => fmt.pct(f.finalSparsity)],
    ["test accuracy", (run, f) => fmt.num(f.accuracy)],
    ["zipped .keras", (run, f) => fmt.bytes(f.zipped)],
    ["vs baseline size", (run, f) => (baseSize && f.zipped ? `${(f.zipped / baseSize).toFixed(2)}×` : "—")],
    ["parameters (non-zero)", (run) => (run.summary?.param_count ? `${run.summary.param_count} (${run.summary.nonzero_params})` : "—")],
    ["duration", (run, f) => fmt.duration(f.duration)],
    ["tags", (run) => run.tags.join(", ") || "—"],
  ];
  const body = el("tbody", {}, ...rows.map(([name, cell]) => el("tr", {}, el("th", { scope: "row", text: name }),
    ...runs.map((run) => { const v = cell(run, runFacts(run)); return el("td", {}, typeof v === "string" ? v : v); }))));
  document.getElementById("finals").replaceChildren(head, body);
  const diff = document.getElementById("differences");
  if (!data.differences.length) { diff.replaceChildren(el("p", { class: "muted", text: "The runs share every parameter." })); return; }
  diff.replaceChildren(el("table", { class: "data" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "parameter" }), ...runs.map((run) => el("th", { scope: "col", text: label(run) })))),
    el("tbody", {}, ...data.differences.map((row) => el("tr", {}, el("th", { scope: "row", text: row.parameter }),
      ...runs.map((run) => el("td", { text: JSON.stringify(row.values[run.id] ?? null) })))))));
}

// Settings live in the URL; changing the run set or baseline reloads the data, the rest only redraws.
function navigate(changes) {
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === "0" && key !== "runs") url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  if ("runs" in changes) { location.assign(url.href); return; }
  history.replaceState(null, "", url.href);
  updateReportLink();
}

function updateReportLink() {
  const params = new URLSearchParams({ runs: selection.join(",") });
  if (data?.baseline_id) params.set("baseline", String(data.baseline_id));
  if (url.searchParams.get("by")) params.set("by", url.searchParams.get("by")); // the report groups them too
  if (url.searchParams.get("gmetric")) params.set("metric", url.searchParams.get("gmetric"));
  if (!selection.length && url.searchParams.get("filter")) params.set("filter", url.searchParams.get("filter"));
  document.getElementById("report").href = `/api/compare/report?${params}`;
}

async function load() {
  const params = new URLSearchParams({ runs: selection.join(","), max_points: String(pointBudget(document.getElementById("chart-loss"))) });
  const baseline = url.searchParams.get("baseline");
  if (baseline) params.set("baseline", baseline);
  data = await apiSeries(`/api/compare?${params}`);
  picked = {}; // re-read with the new data (a live run grew, the baseline changed)
  document.getElementById("title").textContent = `Compare ${selection.length} runs`;
  drawTables();
  drawCharts();
  updateReportLink();
  if (picker) { await picker.refresh(); await onPicked(); }
}

async function start() {
  const message = document.getElementById("message");
  // Groups of the compared runs, or (no runs named) of every run the URL's filter matches.
  initGroups(url, selection).then(updateReportLink);
  if (selection.length < 2 || selection.length > 20) {
    message.textContent = "Select 2 to 20 runs on the Runs page, or open compare.html?runs=1,2.";
    if (!selection.length) return;
  }
  // Baseline candidates: the newest 500 succeeded runs, and the one the link names wherever it is.
  const candidates = (await api("/api/runs?filter=status:succeeded&limit=500")).runs;
  const named = Number(url.searchParams.get("baseline"));
  if (named && !candidates.some((run) => run.id === named)) {
    try { candidates.unshift(await api(`/api/runs/${named}`)); } catch { /* gone: the select falls back to none */ }
  }
  controls.baseline.append(...candidates.map((run) => el("option", { value: String(run.id), text: label(run) })));
  if (!url.searchParams.has("baseline")) {
    const suggested = await findDenseBaseline();
    if (suggested) url.searchParams.set("baseline", String(suggested.id));
  }
  controls.baseline.value = url.searchParams.get("baseline") || "";
  await load();
  picker = await initPicker({ url, readKeys: () => api(`/api/compare/metric-keys?runs=${selection.join(",")}`),
    onchange: () => onPicked().catch((error) => { message.textContent = `Could not draw the metric: ${error.message}`; }) });
  await onPicked();
  message.textContent = data.baseline_id ? `Baseline: run #${data.baseline_id}, dashed on every chart.` : "";
  controls.xaxis.addEventListener("change", () => { navigate({ x: controls.xaxis.value === "step" ? "" : controls.xaxis.value }); drawCharts(); });
  controls.smoothing.addEventListener("input", () => { navigate({ smooth: controls.smoothing.value }); drawCharts(); });
  controls.logy.addEventListener("change", () => { navigate({ log: controls.logy.checked ? "1" : "" }); drawCharts(); });
  controls.baseline.addEventListener("change", async () => {
    url.searchParams.set("baseline", controls.baseline.value || "");
    if (!controls.baseline.value) url.searchParams.set("baseline", "");
    history.replaceState(null, "", url.href);
    await load();
  });
  document.getElementById("share").addEventListener("click", () => navigator.clipboard?.writeText(location.href));
  if (data.runs.every((run) => FINISHED.has(run.status))) return;
  // Live: one stream for the whole selection; each change refetches the (downsampled) comparison, at most every 2 s.
  let waiting = null;
  const source = subscribe(`/api/runs/events?ids=${selection.join(",")}`, {
    runs: () => {
      if (waiting) return;
      waiting = setTimeout(async () => {
        waiting = null;
        try {
          await load();
          if (data.runs.every((run) => FINISHED.has(run.status))) source.close();
        } catch (error) {
          document.getElementById("message").textContent = `Update failed, retrying on the next change: ${error.message}`;
        }
      }, 2000);
    },
  });
}

start().catch((error) => { document.getElementById("message").textContent = `Could not compare: ${error.message}`; });
