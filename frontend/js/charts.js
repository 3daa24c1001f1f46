// Plotly helpers: one layout, smoothing and the x axes (step, epoch, wall time, pruning window).

const CONFIG = { responsive: true, displaylogo: false };
// Above this many points in one chart, its line traces are drawn with WebGL (scattergl): SVG slows down past it.
export const WEBGL_POINTS = 2000;
let revision = 0;

function withRenderer(traces) {
  const points = traces.reduce((sum, trace) => sum + (trace.x?.length ?? 0), 0);
  if (points <= WEBGL_POINTS) return traces;
  return traces.map((trace) => (!trace.type || trace.type === "scatter" ? { ...trace, type: "scattergl" } : trace));
}

export function draw(node, traces, layout = {}) {
  const base = {
    margin: { l: 60, r: 16, t: 36, b: 44 },
    height: 320,
    legend: { orientation: "h", y: -0.22 },
    hovermode: "x unified",
    template: "plotly_white",
    paper_bgcolor: "#fff",
    // Live pages grow their arrays in place; a new revision makes Plotly re-read them and rescale the axes.
    datarevision: ++revision,
  };
  return Plotly.react(node, withRenderer(traces), { ...base, ...layout }, CONFIG);
}

// Step-weighted exponential moving average with debiasing (W&B's time-weighted EMA, over steps): a point
// that follows the previous one by d steps decays the average by weight^d. On a series logged every step
// it is TensorBoard's EMA; on a downsampled series (a finished run's reduced read) it gives about the same
// curve, so live and finished runs smooth alike. A null (a diverged step) stays a gap.
// Series may be plain arrays (null = gap) or typed arrays (NaN = gap, from the columns form): both are read as is
// and the result is a Float64Array (NaN = gap), which Plotly draws without a copy.
export function smooth(values, weight, steps = null) {
  if (!weight) return values;
  const smoothed = new Float64Array(values.length);
  let average = 0, norm = 0, previous = null;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined || Number.isNaN(value)) { smoothed[i] = NaN; continue; }
    const step = steps ? steps[i] : i;
    const decay = weight ** (previous === null ? 1 : Math.max(1, step - previous));
    previous = step;
    average = average * decay + (1 - decay) * value;
    norm = norm * decay + (1 - decay);
    smoothed[i] = average / norm;
  }
  return smoothed;
}

export const X_AXES = {
  step: { label: "step", title: "step" },
  epoch: { label: "epoch", title: "epoch" },
  wall: { label: "wall time", title: "wall time (s)" },
  window: { label: "pruning window", title: "pruning window (0 = begin step, 1 = end step)" },
};

// x values of a series for a run under the chosen axis; wall time needs the series' own timestamps.
export function xValues(axis, run, steps, wallTimes) {
  // Float64Array.from: a typed array's own map would keep its type (an Int32Array of steps truncates epochs).
  if (axis === "epoch") return Float64Array.from(steps, (step) => step / run.plan.steps_per_epoch);
  if (axis === "wall") return wallTimes || Array.from(steps, () => null);
  if (axis === "window") {
    const { begin_step: begin, end_step: end } = run.plan.schedule;
    return Float64Array.from(steps, (step) => (step - begin) / Math.max(1, end - begin));
  }
  return steps;
}

// The budget of points per series: about one per horizontal pixel of a chart, never more than the API's cap.
export function pointBudget(node) {
  return Math.max(200, Math.min(2000, Math.round((node?.clientWidth || 1000) * 1.2)));
}

// A zoomed window reads one chart's keys only: up to four points per pixel column (first, last, min, max), so a
// window of a few thousand steps comes back point for point.
export function zoomBudget(node) {
  return Math.max(200, Math.min(5000, Math.round((node?.clientWidth || 1000) * 4)));
}

// Zooming a chart re-reads the step window in view: `read(first, last, budget)` resolves to the window's series,
// kept in `zoomed[id]` until a double-click (autorange) returns to the whole run. `unitsPerStep()` is how far one
// step goes on the x axis (1 for steps, 1 / steps per epoch for epochs), or null where a window of steps cannot be
// named (wall time).
export function listenForZoom(id, zoomed, { unitsPerStep, read, redraw }) {
  const node = document.getElementById(id);
  if (node.dataset.zoomable) return;
  node.dataset.zoomable = "1";
  node.on("plotly_relayout", (event) => {
    if (event["xaxis.autorange"]) {
      if (zoomed[id]) { delete zoomed[id]; redraw(); }
      return;
    }
    const range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    if (range.some((x) => typeof x !== "number")) return;
    const perStep = unitsPerStep();
    if (!perStep) return;
    if (zoomed[id] && zoomed[id].range.every((x, i) => x === range[i])) return;
    const first = Math.max(0, Math.floor(range[0] / perStep)), last = Math.max(first, Math.ceil(range[1] / perStep));
    read(first, last, zoomBudget(node)).then((series) => {
      zoomed[id] = { range, series };
      redraw();
    }, () => {});
  });
}
