// Plotly helpers: one layout, smoothing and the x axes (step, epoch, wall time, pruning window).

const CONFIG = { responsive: true, displaylogo: false };
let revision = 0;

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
  return Plotly.react(node, traces, { ...base, ...layout }, CONFIG);
}

// TensorBoard-style exponential moving average with debiasing; a null (a diverged step) stays a gap.
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0, count = 0;
  return values.map((value) => {
    if (value === null || value === undefined) return null;
    count += 1;
    last = last * weight + (1 - weight) * value;
    return last / (1 - weight ** count);
  });
}

export const X_AXES = {
  step: { label: "step", title: "step" },
  epoch: { label: "epoch", title: "epoch" },
  wall: { label: "wall time", title: "wall time (s)" },
  window: { label: "pruning window", title: "pruning window (0 = begin step, 1 = end step)" },
};

// x values of a series for a run under the chosen axis; wall time needs the series' own timestamps.
export function xValues(axis, run, steps, wallTimes) {
  if (axis === "epoch") return steps.map((step) => step / run.plan.steps_per_epoch);
  if (axis === "wall") return wallTimes || steps.map(() => null);
  if (axis === "window") {
    const { begin_step: begin, end_step: end } = run.plan.schedule;
    return steps.map((step) => (step - begin) / Math.max(1, end - begin));
  }
  return steps;
}

// The budget of points per series: about one per horizontal pixel of a chart, never more than the API's cap.
export function pointBudget(node) {
  return Math.max(200, Math.min(2000, Math.round((node?.clientWidth || 1000) * 1.2)));
}
