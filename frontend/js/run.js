// One run: live curves (SSE), layers, coverage, mask, downloads, spec.

import { api, apiSeries, el, FINISHED, fmt, mayChange, plainSeries, renderHeader, runFacts, statusBadge, subscribe, whoAmI } from "./common.js";
import { draw, listenForZoom, pointBudget, smooth, X_AXES, xValues } from "./charts.js";
import { chartBoxes, entryKeys, initPicker, memberName } from "./picker.js";

renderHeader("");

const url = new URL(location.href);
const runId = Number(url.searchParams.get("id"));
const CURVE_KEYS = ["measured_sparsity", "target_sparsity", "loss", "accuracy", "val_accuracy", "compressed_size_bytes"];
// The keys each chart draws: the page asks for these (and the layer keys once the layers are in view), nothing else.
const CHART_KEYS = {
  "chart-sparsity": ["measured_sparsity", "target_sparsity"], "chart-loss": ["loss"],
  "chart-accuracy": ["accuracy", "val_accuracy"], "chart-size": ["compressed_size_bytes"],
};
const LAYER_PREFIX = "layer_sparsity/";
let run = null;
let series = {}; // key -> {steps, values, wall_times}
let budget = 1500;
let me = { name: null, is_admin: false, via: "open" };
let layerKeys = null; // the run's layer_sparsity/* keys, once the layers section has been in view
let picker = null; // the metric picker: charts of any keys the run logged, beyond the fixed ones above
const zoomed = {}; // chart id -> {range, series}: a zoomed step window, read at full fidelity when it fits the budget

const controls = {
  smoothing: document.getElementById("smoothing"),
  xaxis: document.getElementById("xaxis"),
  logy: document.getElementById("logy"),
};

function trace(chart, key, name, extra = {}) {
  const s = zoomed[chart]?.series[key] ?? series[key];
  if (!s || !s.steps.length) return null;
  const axis = controls.xaxis.value;
  const smoothed = key.includes("sparsity") ? s.values : smooth(s.values, Number(controls.smoothing.value), s.steps);
  return { x: xValues(axis, run, s.steps, s.wall_times), y: smoothed, name, mode: s.steps.length < 3 ? "lines+markers" : "lines", ...extra };
}

// Where each phase after the first begins (lottery retraining, each compress stage that trains), on the step axis.
function phaseBoundaries() {
  const phases = run.plan.phase_steps || [];
  const training = (run.spec.compress || []).filter((stage) => stage.kind !== "tflite_int8");
  const names = [...phases.slice(0, phases.length - training.length).map((_, i) => (i ? "retraining" : "pruning")),
    ...training.map((stage) => (stage.kind === "qat" ? `qat (${stage.scheme})` : stage.kind))];
  let step = 0;
  return phases.map((steps, index) => ({ step: (step += steps) - steps, name: names[index] })).slice(1);
}

function drawCurves() {
  const axis = controls.xaxis.value;
  const log = controls.logy.checked ? "log" : "linear";
  const perStep = { step: 1, epoch: 1 / run.plan.steps_per_epoch }[axis];
  const boundaries = perStep ? phaseBoundaries() : []; // wall time: the plan knows steps, not times
  const shapes = boundaries.map(({ step }) => ({ type: "line", xref: "x", yref: "paper", x0: step * perStep, x1: step * perStep,
    y0: 0, y1: 1, line: { color: "#888", dash: "dash", width: 1 } }));
  const annotations = boundaries.map(({ step, name }) => ({ xref: "x", yref: "paper", x: step * perStep, y: 1, text: name,
    showarrow: false, xanchor: "left", yanchor: "top", font: { size: 10, color: "#555" } }));
  const layout = (chart, title, ytitle) => ({
    title: { text: title }, yaxis: { title: { text: ytitle }, type: log }, shapes, annotations,
    xaxis: { title: { text: X_AXES[axis].title }, ...(zoomed[chart] ? { range: zoomed[chart].range, autorange: false } : {}) },
  });
  const chart = (id, traces, title, ytitle) => {
    draw(id, traces.filter(Boolean), layout(id, title, ytitle)).then(() => zoomable(id));
  };
  chart("chart-sparsity", [
    trace("chart-sparsity", "measured_sparsity", "measured sparsity", { line: { color: "#1f5fbf" } }),
    trace("chart-sparsity", "target_sparsity", "target sparsity", { line: { color: "#9a6700", dash: "dot", shape: "hv" } }),
  ], "Sparsity", "sparsity");
  chart("chart-loss", [trace("chart-loss", "loss", "loss")], "Loss", "loss");
  chart("chart-accuracy", [
    trace("chart-accuracy", "accuracy", "accuracy (batch)"),
    trace("chart-accuracy", "val_accuracy", "validation accuracy", { mode: "lines+markers" }),
  ], "Accuracy", "accuracy");
  chart("chart-size", [trace("chart-size", "compressed_size_bytes", "compressed size", { mode: "lines+markers" })],
    "Compressed size of the weights", "bytes");
  drawPicked();
}

// The keys the picked entries draw (a group: every member the run has logged so far).
function pickedKeys() {
  if (!picker) return [];
  return picker.picked().flatMap((value) => entryKeys(picker.entries(), value));
}

function drawPicked() {
  if (!picker) return;
  const axis = controls.xaxis.value;
  const log = controls.logy.checked ? "log" : "linear";
  for (const { value, node } of chartBoxes(picker.picked(), (gone) => picker.remove(gone))) {
    const traces = entryKeys(picker.entries(), value).map((key) => trace(node.id, key, memberName(value, key), { meta: { metric: key } }));
    draw(node, traces.filter(Boolean), { title: { text: value }, xaxis: { title: { text: X_AXES[axis].title } },
      yaxis: { title: { text: value }, type: log }, hovermode: traces.length > 8 ? "closest" : "x unified" });
  }
}

async function onPicked() {
  const missing = pickedKeys().filter((key) => !(key in series));
  Object.assign(series, await fetchSeries(missing));
  drawPicked();
}

// Zooming a chart (x axis in steps or epochs) re-reads that step window of its keys: every point when they fit the
// budget, else about four per pixel column of the window. Double-click (autorange) returns to the whole run.
function zoomable(id) {
  listenForZoom(id, zoomed, {
    unitsPerStep: () => ({ step: 1, epoch: 1 / run.plan.steps_per_epoch })[controls.xaxis.value] ?? null,
    read: (first, last, budget) => {
      const params = new URLSearchParams({ keys: CHART_KEYS[id].join(","), max_points: String(budget),
        start_step: String(first), end_step: String(last) });
      return apiSeries(`/api/runs/${runId}/metrics?${params}`).then((body) => body.series);
    },
    redraw: drawCurves,
  });
}

function drawLayers() {
  if (layerKeys === null) return; // not in view yet: nothing loaded, nothing drawn
  const keys = Object.keys(series).filter((key) => key.startsWith(LAYER_PREFIX)).sort();
  const table = document.getElementById("layer-table");
  if (!keys.length) {
    table.replaceChildren(el("p", { class: "muted", text: "No per-layer sparsity yet: it is logged at each pruning step." }));
    Plotly.purge("chart-heatmap");
    return;
  }
  table.replaceChildren(el("table", { class: "data" },
    el("thead", {}, el("tr", {}, ...["layer", "sparsity now", "pruning steps logged"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, ...keys.map((key) => {
      const s = series[key];
      return el("tr", {}, el("td", { text: key.slice(LAYER_PREFIX.length) }), el("td", { class: "num", text: fmt.pct(s.values.at(-1)) }),
        el("td", { class: "num", text: String(s.steps.length) }));
    }))));
  const steps = [...new Set(keys.flatMap((key) => Array.from(series[key].steps)))].sort((a, b) => a - b);
  const z = keys.map((key) => {
    const byStep = new Map(Array.from(series[key].steps, (step, i) => [step, series[key].values[i]]));
    return steps.map((step) => byStep.get(step) ?? null);
  });
  draw("chart-heatmap", [{ type: "heatmap", x: steps, y: keys.map((k) => k.slice(LAYER_PREFIX.length)), z, zmin: 0, zmax: 1,
    colorscale: "Viridis", colorbar: { title: { text: "sparsity" } } }],
  { title: { text: "Sparsity per layer and pruning step" }, xaxis: { title: { text: "step" }, type: "category" }, hovermode: "closest", margin: { l: 110, r: 16, t: 36, b: 44 } });
}

function drawFacts() {
  const facts = runFacts(run);
  document.title = `${run.name} · PruneLab`;
  document.getElementById("title").textContent = `Run #${run.id}: ${run.name}`;
  const items = [["status", statusBadge(run)], ["dataset / model", `${run.spec.dataset} / ${run.model_name}`],
    ["schedule", `${facts.kind} → ${fmt.pct(facts.target)}`], ["final sparsity", fmt.pct(facts.finalSparsity)],
    ["test accuracy", fmt.num(facts.accuracy)], ["zipped .keras", fmt.bytes(facts.zipped)], ["duration", fmt.duration(facts.duration)],
    ["owner", run.owner ?? "—"], ["tags", run.tags.join(", ") || "—"], ["note", run.note || "—"]];
  // An external run was trained by its own script (the Keras callback, MLflow): say so, and offer no clone.
  const external = run.source && run.source !== "prunelab";
  if (external) items.splice(1, 0, ["logged by", run.source.replace("_", " ")]);
  if (run.queue_position) items.splice(1, 0, ["queue", `#${run.queue_position} in line`]);
  document.getElementById("facts").replaceChildren(...items.map(([label, value]) =>
    el("div", {}, el("div", { class: "muted", text: label }), typeof value === "string" ? el("strong", { text: value }) : value)));
  document.getElementById("error").textContent = run.error ? `This run failed:\n${run.error}` : "";
  // A queued run nobody will take says why (GET /api/runs/{id} `waiting`: no worker listening on its queue).
  document.getElementById("waiting").textContent = run.waiting ? `Waiting: ${run.waiting}` : "";
  const actions = external ? [] : [el("a", { class: "button secondary", href: `new.html?clone=${run.id}`, text: "Clone into a new run" })];
  if (!FINISHED.has(run.status) && mayChange(me, run)) {
    actions.push(el("button", { type: "button", class: "danger", text: "Cancel run", onclick: async () => { run = await api(`/api/runs/${run.id}/cancel`, { method: "POST" }); drawFacts(); } }));
  }
  document.getElementById("actions").replaceChildren(...actions);
  drawDownloads();
  drawCoverage();
  drawStages();
  drawSensitivity();
  document.getElementById("spec").textContent = JSON.stringify({ spec: run.spec, plan: run.plan, summary: run.summary }, null, 2);
}

// The compress stages (pruned -> cluster -> qat -> int8) as a staircase: each step left is a smaller file, each
// step down what it cost in test accuracy; the plain pruned model's int8 file is drawn beside it for reference.
function drawStages() {
  const compression = run.summary?.compression;
  const section = document.getElementById("stages-section");
  if (!compression?.stages?.length) { section.hidden = true; return; }
  section.hidden = false;
  const chain = compression.stages.filter((stage) => !stage.reference);
  const references = compression.stages.filter((stage) => stage.reference);
  const hover = "%{text}<br>%{x:,} bytes zipped<br>accuracy %{y:.4f}<extra></extra>";
  draw("chart-stages", [
    { x: chain.map((s) => s.zip_bytes), y: chain.map((s) => s.test_accuracy), text: chain.map((s) => s.stage),
      mode: "lines+markers+text", textposition: "top center", name: "stages", line: { shape: "vh", color: "#1f5fbf" },
      marker: { size: 10 }, hovertemplate: hover, meta: { metric: "stages" } },
    { x: chain.map((s) => s.floor_bytes), y: chain.map((s) => s.test_accuracy), text: chain.map((s) => `${s.stage} floor`),
      mode: "markers", name: "information floor", marker: { symbol: "line-ns-open", size: 14, color: "#9a6700" }, hovertemplate: hover },
    ...references.map((s) => ({ x: [s.zip_bytes], y: [s.test_accuracy], text: [s.stage], mode: "markers", name: `${s.stage} (reference)`,
      marker: { symbol: "diamond", size: 10, color: "#888" }, hovertemplate: hover })),
  ], { title: { text: "Zipped size against test accuracy, stage by stage" }, hovermode: "closest",
    xaxis: { title: { text: "zipped bytes (log)" }, type: "log" }, yaxis: { title: { text: "test accuracy" } } });
  const head = ["stage", "file", "accuracy", "zipped", "floor", "zip / floor", "× smaller than dense", "max values per layer"];
  document.getElementById("stages-table").replaceChildren(el("table", { class: "data" },
    el("thead", {}, el("tr", {}, ...head.map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, ...compression.stages.map((s) => el("tr", { "data-stage": s.stage }, ...[
      s.stage + (s.reference ? " (reference)" : ""), s.export, fmt.num(s.test_accuracy), fmt.bytes(s.zip_bytes),
      `${fmt.bytes(s.floor_bytes)} (${s.floor_variant})`, `${s.zip_over_floor.toFixed(2)}×`, `${s.x_smaller_than_dense.toFixed(1)}×`,
      String(Math.max(...Object.values(s.layers).map((layer) => layer.unique_values))),
    ].map((text) => el("td", { text })))))));
  const sparse = compression.sparse_tflite;
  const why = sparse?.xnnpack_sparse_inference;
  document.getElementById("stages-sparse").textContent = sparse
    ? `Sparse TFLite: ${fmt.bytes(sparse.sparse_size_bytes)} against ${fmt.bytes(sparse.float_size_bytes)} dense, `
      + `${sparse.same_predictions ? "same predictions" : "DIFFERENT predictions"}; latency with XNNPACK `
      + `${sparse.sparse_latency_ms_xnnpack_on.toFixed(3)} ms sparse, ${sparse.dense_latency_ms_xnnpack_on.toFixed(3)} ms dense. `
      + `XNNPACK sparse inference: ${why.qualifies ? "qualifies" : `does not apply: ${why.reasons.join("; ")}`}.`
    : "";
}

function drawDownloads() {
  const box = document.getElementById("downloads");
  if (!run.artifacts.length) {
    box.replaceChildren(el("p", { class: "muted", text: run.status === "succeeded" ? "No files were stored." : "Models can be downloaded once the run has succeeded." }));
    return;
  }
  // Mask snapshots are shown above, not downloaded; the manifest describes the models.
  const files = run.artifacts.filter((artifact) => artifact.format !== "masks");
  box.replaceChildren(el("div", { class: "row" }, ...files.map((artifact) =>
    el("a", { class: "button", href: artifact.url, download: "", "data-format": artifact.format,
      text: `${DOWNLOAD_LABELS[artifact.format] ?? `.${artifact.format}`} (${fmt.bytes(artifact.size_bytes)}, `
        + `${fmt.bytes(artifact.zip_size_bytes)} zipped)` }))));
}

const DOWNLOAD_LABELS = {
  keras: ".keras", h5: ".h5", saved_model: "SavedModel (.zip)", tflite: "TFLite float (.tflite)",
  tflite_int8: "TFLite int8 (.tflite)", manifest: "manifest.json",
  clustered_h5: "clustered .h5", qat_h5: "quantization-aware .h5", tflite_int8_compressed: "compressed TFLite int8",
  tflite_int8_pruned: "pruned TFLite int8", tflite_sparse: "sparse TFLite float",
};

function drawCoverage() {
  const box = document.getElementById("coverage");
  const coverage = run.summary?.coverage;
  if (!coverage) { box.replaceChildren(el("p", { class: "muted", text: "Coverage report: not recorded for this run." })); return; }
  box.replaceChildren(
    el("p", { text: `Sparsity of prunable weights ${fmt.pct(coverage.sparsity_prunable)}; of all weights ${fmt.pct(coverage.sparsity_total)}.` }),
    el("table", { class: "data" },
      el("thead", {}, el("tr", {}, ...["layer", "class", "wrapped", "reason left dense", "params", "pruned params"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {}, ...coverage.layers.map((layer) => el("tr", {},
        el("td", { text: layer.name }), el("td", { text: layer.class_name }), el("td", { text: layer.wrapped ? "yes" : "no" }),
        el("td", { text: layer.reason || "" }), el("td", { class: "num", text: String(layer.params) }),
        el("td", { class: "num", text: String(layer.pruned_params) }))))));
}

async function drawMask() {
  const box = document.getElementById("mask");
  const { layers } = await api(`/api/runs/${runId}/masks`);
  if (!layers.length) { box.replaceChildren(el("p", { class: "muted", text: "Mask snapshots: not recorded for this run." })); return; }
  const layerSelect = el("select", { id: "mask-layer" }, ...layers.map((layer, i) => el("option", { value: String(i), text: `${layer.name} (${layer.shape.join("×")})` })));
  const slider = el("input", { id: "mask-step", type: "range", min: "0", step: "1" });
  const label = el("output", { for: "mask-step" });
  const image = el("img", { alt: "" });
  const show = () => {
    const layer = layers[Number(layerSelect.value)];
    slider.max = String(layer.events.length - 1);
    const event = layer.events[Math.min(Number(slider.value), layer.events.length - 1)];
    if (!event) return;
    image.src = event.url;
    image.alt = `mask of ${layer.name} at step ${event.step}: black cells are weights that remain`;
    label.textContent = `step ${event.step}`;
  };
  layerSelect.addEventListener("change", () => { slider.value = "0"; show(); });
  slider.addEventListener("input", show);
  box.replaceChildren(el("div", { class: "row" }, el("label", { for: "mask-layer", text: "Layer" }), layerSelect,
    el("label", { for: "mask-step", text: "Pruning event" }), slider, label), image);
  show();
}

// New points from the stream (of the keys this page draws); refetched downsampled when they outgrow the budget.
function appendPoints(points) {
  let outgrown = false;
  for (const [key, fresh] of Object.entries(points)) {
    if (!CURVE_KEYS.includes(key) && !pickedKeys().includes(key) && !(layerKeys !== null && key.startsWith(LAYER_PREFIX))) continue;
    if (key.startsWith(LAYER_PREFIX) && !layerKeys.includes(key)) layerKeys.push(key); // a layer's first pruning step
    if (series[key] && !Array.isArray(series[key].steps)) series[key] = plainSeries(series[key]); // it grows now
    const s = (series[key] ??= { steps: [], values: [], wall_times: [] });
    const last = s.steps.at(-1) ?? -1;
    fresh.steps.forEach((step, i) => {
      if (step <= last) return; // the stream restarts from the page's step after a reconnect
      s.steps.push(step); s.values.push(fresh.values[i]); s.wall_times.push(fresh.wall_times[i]);
    });
    outgrown ||= s.steps.length > 2 * budget;
    run.step = Math.max(run.step ?? 0, s.steps.at(-1) ?? 0); // progress moves between status events
  }
  if (outgrown) loadSeries().catch(() => {});
  scheduleDraw();
}

let drawTimer = null;
function scheduleDraw() {
  if (drawTimer) return;
  drawTimer = setTimeout(() => { drawTimer = null; drawFacts(); drawCurves(); drawLayers(); }, 400);
}

async function fetchSeries(keys) {
  if (!keys.length) return {};
  const params = new URLSearchParams({ keys: keys.join(","), max_points: String(budget) });
  return (await apiSeries(`/api/runs/${runId}/metrics?${params}`)).series;
}

async function loadLayerKeys() {
  const keys = await api(`/api/runs/${runId}/metric-keys`);
  layerKeys = keys.map((entry) => entry.key).filter((key) => key.startsWith(LAYER_PREFIX));
}

async function loadSeries() {
  budget = pointBudget(document.getElementById("chart-loss"));
  if (layerKeys !== null) await loadLayerKeys(); // layers logged since the section came into view
  if (picker) await picker.refresh(); // keys logged since the page opened
  const extra = [...new Set([...(layerKeys ?? []), ...pickedKeys()])].filter((key) => !CURVE_KEYS.includes(key));
  series = { ...(await fetchSeries(CURVE_KEYS)), ...(await fetchSeries(extra)) };
}

// The per-layer keys (a hundred on a large model) are read once the layers section comes near the viewport.
function loadLayersWhenVisible() {
  const section = document.getElementById("layers-title").parentElement;
  const observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((entry) => entry.isIntersecting)) return;
    observer.disconnect();
    await loadLayerKeys();
    Object.assign(series, await fetchSeries(layerKeys));
    drawLayers();
  }, { rootMargin: "100% 0px" });
  observer.observe(section);
}

async function start() {
  if (!Number.isInteger(runId) || runId < 1) throw new Error("no run id in the address (run.html?id=N)");
  [me, run] = await Promise.all([whoAmI(), api(`/api/runs/${runId}`)]);
  drawFacts();
  await loadSeries();
  drawCurves();
  picker = await initPicker({ url, readKeys: () => api(`/api/runs/${runId}/metric-keys`), onchange: () => onPicked().catch(showError) });
  await onPicked();
  loadLayersWhenVisible();
  drawMask().catch(() => {});
  for (const control of Object.values(controls)) control.addEventListener("input", () => {
    document.getElementById("smoothing-value").textContent = controls.smoothing.value;
    drawCurves();
  });
  if (FINISHED.has(run.status)) return;
  // Catch up from the oldest last step among the loaded series; points the page already has are skipped.
  const lasts = CURVE_KEYS.map((key) => series[key]?.steps.at(-1)).filter((step) => step !== undefined);
  const after = lasts.length ? Math.min(...lasts) : 0;
  document.getElementById("live").textContent = "live";
  subscribe(`/api/runs/${runId}/events?after_step=${after}`, {
    metrics: appendPoints,
    status: (fresh) => { run = fresh; drawFacts(); },
    // The stream's last points are already drawn; the reload only re-downsamples (a page left meanwhile ignores it).
    // Mask snapshots and the coverage report are stored when the run ends: draw them now.
    end: () => {
      document.getElementById("live").textContent = "";
      loadSeries().then(scheduleDraw, () => {});
      drawMask().catch(() => {});
    },
  });
}

// A sensitivity sweep's table: test accuracy against sparsity, one line per layer, and the per-layer targets it
// proposes for a chosen overall sparsity (GET .../sensitivity/proposal), which "Prune to these targets" submits.
// Drawn once, when the run's summary first holds the table (on load, or as a live sweep succeeds).
function drawSensitivity() {
  const table = run.summary?.sensitivity;
  const section = document.getElementById("sensitivity-section");
  if (!table || run.spec.recipe?.kind !== "sensitivity" || !section.hidden) return;
  section.hidden = false;
  const traces = Object.entries(table.layers).map(([layer, rows]) => ({
    x: [0, ...rows.map(([sparsity]) => sparsity)], y: [table.baseline_accuracy, ...rows.map(([, accuracy]) => accuracy)],
    mode: "lines+markers", name: layer, meta: { layer },
  }));
  traces.push({ x: [0, 1], y: [table.baseline_accuracy, table.baseline_accuracy], mode: "lines", name: "dense baseline",
    line: { color: "#888", dash: "dash" }, hoverinfo: "skip", meta: { layer: null } });
  draw("chart-sensitivity", traces, { title: { text: "Test accuracy against each layer's sparsity (the others dense)" },
    hovermode: "closest", xaxis: { title: { text: "sparsity of the layer" }, range: [0, 1] }, yaxis: { title: { text: "test accuracy" } } });
  const target = document.getElementById("sensitivity-target");
  const button = document.getElementById("prune-to-targets");
  let sequence = 0;
  const propose = async () => {
    const box = document.getElementById("sensitivity-targets");
    const ticket = ++sequence;
    try { // the button stays as it is meanwhile: leaving the field (a click on the button) proposes again
      const proposal = await api(`/api/runs/${run.id}/sensitivity/proposal?target_sparsity=${encodeURIComponent(target.value)}`);
      if (ticket !== sequence) return; // a newer target was asked for
      box.replaceChildren(el("table", { class: "data" },
        el("thead", {}, el("tr", {}, ...["layer", "proposed sparsity"].map((t) => el("th", { scope: "col", text: t })))),
        el("tbody", {}, ...Object.entries(proposal.layer_sparsities).map(([layer, sparsity]) =>
          el("tr", { "data-layer": layer }, el("td", { text: layer }), el("td", { class: "num", text: fmt.pct(sparsity) }))))),
      el("p", { class: "muted", text: `Predicted accuracy drop ${proposal.predicted_accuracy_drop.toFixed(4)} (layers taken as independent).` }));
      button.disabled = false;
    } catch (error) {
      if (ticket !== sequence) return;
      const text = Array.isArray(error.detail) ? error.detail.map((problem) => problem.msg).join("; ") : error.message;
      box.replaceChildren(el("p", { class: "error-text", role: "alert", text }));
      button.disabled = true;
    }
  };
  target.addEventListener("change", propose);
  button.addEventListener("click", () => {
    location.assign(`new.html?${new URLSearchParams({ sensitivity: String(run.id), target_sparsity: target.value })}`);
  });
  propose();
}

function showError(error) { document.getElementById("error").textContent = `Could not load the run: ${error.message}`; }

start().catch(showError);
