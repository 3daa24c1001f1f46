// Groups on the compare page: runs grouped by any spec field or tag (the compared runs, or every run the URL's
// filter matches), a table of n and mean ± std, each group's mean curve with a band that states n at each x,
// the comparison sentence of two groups (Welch, from the server), the frontier and a parcoords of the grouped
// fields against the metric. Every figure comes from /api/groups*: the page computes no statistics.

import { api, el, fmt } from "./common.js";
import { draw } from "./charts.js";

// Plotly's Dark24, as the compare page colours runs.
const PALETTE = ["#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B", "#511CFB", "#00A08B"];
const BAND_NAMES = { std: "± std", minmax: "min – max", ci95: "95% CI" };
const node = (id) => document.getElementById(id);

function meanStd(summary) {
  if (summary.mean === null) return "—";
  return `${fmt.num(summary.mean)}${summary.std === null ? "" : ` ± ${summary.std.toPrecision(2)}`}`;
}

// The table of /api/groups' answer: the group's fields, n (succeeded runs), failed, pending, mean ± std per metric.
export function renderGroupTable(table, groups, link = null) {
  const metrics = groups.metrics;
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ...[...groups.by, "n", "failed", "pending", ...metrics.map((m) => `${m} (mean ± std)`)]
      .map((text) => el("th", { scope: "col", text })))),
    el("tbody", {}, ...groups.groups.map((group) => el("tr", { "data-group": group.label },
      ...groups.by.map((field, index) => el("th", { scope: "row" },
        index === 0 && link ? el("a", { href: link(group), text: JSON.stringify(group.key[field]) }) : JSON.stringify(group.key[field]))),
      el("td", { class: "group-n", text: String(group.run_ids.length) }),
      el("td", { text: String(group.failed_run_ids.length) }),
      el("td", { text: String(group.pending_run_ids.length) }),
      ...metrics.map((metric) => el("td", { text: meanStd(group.metrics[metric]) }))))));
}

export function initGroups(url, selection) {
  const controls = {
    by: node("group-by"), metric: node("group-metric"), key: node("group-key"), x: node("group-x"), band: node("group-band"),
    a: node("group-a"), b: node("group-b"), frontierX: node("frontier-x"), logx: node("frontier-logx"),
  };
  const settings = { by: "by", metric: "gmetric", key: "gkey", x: "gx", band: "band", frontierX: "fx" };
  for (const [name, param] of Object.entries(settings)) {
    if (url.searchParams.get(param)) controls[name].value = url.searchParams.get(param);
  }
  controls.logx.checked = url.searchParams.get("flog") === "1";
  let groups = null;
  // Only the newest request of each kind may draw: an older reply arriving late (a setting changed meanwhile) is dropped.
  const asked = {};
  async function newest(kind, path) {
    const mine = (asked[kind] = (asked[kind] ?? 0) + 1);
    const body = await api(path);
    return mine === asked[kind] ? body : null;
  }

  function base() {
    const params = new URLSearchParams({ by: controls.by.value.replace(/\s+/g, "") });
    if (selection.length) params.set("runs", selection.join(","));
    if (url.searchParams.get("filter")) params.set("filter", url.searchParams.get("filter"));
    return params;
  }

  function remember() {
    for (const [name, param] of Object.entries(settings)) {
      if (controls[name].value) url.searchParams.set(param, controls[name].value); else url.searchParams.delete(param);
    }
    if (controls.logx.checked) url.searchParams.set("flog", "1"); else url.searchParams.delete("flog");
    for (const side of ["a", "b"]) if (controls[side].value) url.searchParams.set(side, controls[side].value);
    history.replaceState(null, "", url.href);
  }

  async function loadTable() {
    const params = base();
    params.set("metrics", [controls.metric.value.trim() || "test_accuracy", "measured_sparsity", "keras_zip_bytes"].join(","));
    const answer = await newest("table", `/api/groups?${params}`);
    if (!answer) return false;
    groups = answer;
    renderGroupTable(node("groups"), groups);
    for (const [side, fallback] of [["a", 1], ["b", 0]]) {
      const wanted = url.searchParams.get(side);
      controls[side].replaceChildren(...groups.groups.map((group) => el("option", { value: group.label, text: group.label })));
      const labels = groups.groups.map((group) => group.label);
      controls[side].value = labels.includes(wanted) ? wanted : labels[Math.min(fallback, labels.length - 1)] ?? "";
    }
  }

  async function drawSentence() {
    const sentence = node("group-sentence");
    if (!controls.a.value || !controls.b.value || controls.a.value === controls.b.value) {
      asked.sentence = (asked.sentence ?? 0) + 1; // a reply still on its way is for other groups
      sentence.textContent = "Choose two different groups to compare.";
      return;
    }
    const params = base();
    params.set("metric", controls.metric.value.trim() || "test_accuracy");
    params.set("a", controls.a.value);
    params.set("b", controls.b.value);
    const difference = await newest("sentence", `/api/groups/compare?${params}`);
    if (!difference) return;
    sentence.textContent = difference.sentence;
    sentence.className = difference.resolved ? "" : "muted";
  }

  async function drawCurves() {
    const params = base();
    params.set("key", controls.key.value);
    params.set("x", controls.x.value);
    params.set("band", controls.band.value);
    const curves = await newest("curves", `/api/groups/curves?${params}`);
    if (!curves) return;
    const traces = curves.groups.flatMap((group, index) => {
      const color = PALETTE[index % PALETTE.length];
      const edge = { x: curves.grid, mode: "lines", line: { width: 0, color }, showlegend: false, legendgroup: group.label, hoverinfo: "skip" };
      return [
        { ...edge, y: group.band.upper, meta: { metric: "group_band_upper", group: group.label } },
        { ...edge, y: group.band.lower, fill: "tonexty", fillcolor: `${color}33`, meta: { metric: "group_band_lower", group: group.label } },
        { x: curves.grid, y: group.band.mean, customdata: group.band.n, mode: "lines", line: { color, width: 2 },
          name: `${group.label} (n = ${Math.max(0, ...group.band.n)})`, legendgroup: group.label,
          hovertemplate: `${group.label}: %{y:.4g} (n = %{customdata})<extra></extra>`,
          meta: { metric: "group_mean", group: group.label, band: curves.band, n: group.band.n } },
      ];
    });
    await draw("chart-groups", traces, { title: { text: `${curves.metric}: group mean and ${BAND_NAMES[curves.band]} band (n per x in the hover)` },
      height: 380, xaxis: { title: { text: curves.x === "fraction" ? "fraction of training" : curves.x } }, yaxis: { title: { text: curves.metric } } });
  }

  async function drawFrontier() {
    const params = base();
    params.set("metric", controls.metric.value.trim() || "test_accuracy");
    params.set("x", controls.frontierX.value);
    if (url.searchParams.get("baseline")) params.set("baseline", url.searchParams.get("baseline"));
    const frontier = await newest("frontier", `/api/groups/frontier?${params}`);
    if (!frontier) return;
    const variants = [...new Set(frontier.points.map((point) => point.variant))];
    const traces = variants.map((variant, index) => {
      const points = frontier.points.filter((p) => p.variant === variant && p.x.mean !== null && p.y.mean !== null)
        .sort((p, q) => p.x.mean - q.x.mean);
      return {
        x: points.map((p) => p.x.mean), y: points.map((p) => p.y.mean), text: points.map((p) => `${p.label} (n = ${p.n})`),
        error_x: { type: "data", array: points.map((p) => p.x.std ?? 0) }, error_y: { type: "data", array: points.map((p) => p.y.std ?? 0) },
        mode: "lines+markers", name: variant, line: { color: PALETTE[index % PALETTE.length] },
        marker: { size: 12, symbol: points.map((p) => (p.pareto ? "star" : "circle")) },
        hovertemplate: "%{text}<br>x %{x:.4g}<br>y %{y:.4f}<extra></extra>",
        meta: { metric: "group_frontier", variant, pareto: points.map((p) => p.pareto), n: points.map((p) => p.n) },
      };
    });
    const baseline = frontier.baseline;
    const shapes = baseline?.y !== null && baseline?.y !== undefined
      ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: baseline.y, y1: baseline.y, line: { dash: "dash", color: "#7f7f7f" } }] : [];
    await draw("chart-frontier", traces, { title: { text: `${frontier.metric} vs ${frontier.x_key} per group (mean ± std; ★ Pareto front${shapes.length ? `; dashed: dense baseline #${baseline.run_id}` : ""})` },
      height: 380, hovermode: "closest", shapes, xaxis: { title: { text: frontier.x_key }, type: controls.logx.checked ? "log" : "linear" },
      yaxis: { title: { text: frontier.metric } } });
  }

  async function drawParcoords() {
    const metric = groups.metrics[0];
    const dimensions = groups.by.map((field) => {
      const values = groups.groups.map((group) => group.key[field]);
      if (values.every((value) => typeof value === "number")) return { label: field, values };
      const names = [...new Set(values.map((value) => String(value)))];
      return { label: field, values: values.map((value) => names.indexOf(String(value))), tickvals: names.map((_, i) => i), ticktext: names };
    });
    const means = groups.groups.map((group) => group.metrics[metric].mean);
    dimensions.push({ label: metric, values: means });
    await Plotly.react("chart-parcoords", [{ type: "parcoords", line: { color: means, colorscale: "Viridis", showscale: true },
      dimensions, meta: { metric: "group_parcoords" } }], { title: { text: `Grouped fields against mean ${metric}` }, height: 380,
      margin: { l: 80, r: 40, t: 70, b: 30 } }, { responsive: true, displaylogo: false });
  }

  async function refresh() {
    const message = node("group-message");
    if (!controls.by.value.trim()) return;
    remember();
    try {
      if ((await loadTable()) === false) return;
      await Promise.all([drawSentence(), drawCurves(), drawFrontier(), drawParcoords()]);
      const runs = groups.groups.reduce((sum, group) => sum + group.run_ids.length, 0);
      message.textContent = `${groups.groups.length} groups of ${runs} succeeded runs (failed and unfinished runs counted apart).`;
    } catch (error) {
      const said = Array.isArray(error.detail) ? error.detail.map((d) => d.msg).join("; ") : error.message;
      message.textContent = `Could not group: ${said}`;
    }
  }

  for (const name of ["by", "metric"]) controls[name].addEventListener("change", refresh);
  for (const name of ["key", "x", "band"]) controls[name].addEventListener("change", () => { remember(); drawCurves().catch(() => {}); });
  for (const side of ["a", "b"]) controls[side].addEventListener("change", () => { remember(); drawSentence().catch(() => {}); });
  controls.frontierX.addEventListener("change", () => { remember(); drawFrontier().catch(() => {}); });
  controls.logx.addEventListener("change", () => { remember(); drawFrontier().catch(() => {}); });
  return refresh();
}
