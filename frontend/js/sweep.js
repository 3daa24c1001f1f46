// A sweep's page: progress, its points' runs filling in live, cancel and retry. Without ?id=, the list of sweeps.

import { api, el, fmt, renderHeader, showError, statusBadge } from "./common.js";

renderHeader("sweep.html");

const params = new URLSearchParams(location.search);
const sweepId = params.get("id");
const POLL_MS = 1500;
const header = document.getElementById("header-row");
const body = document.querySelector("#points tbody");
const message = document.getElementById("message");

function progressText(progress) {
  const parts = ["queued", "running", "succeeded", "failed", "cancelled", "missing"]
    .filter((name) => progress[name]).map((name) => `${progress[name]} ${name}`);
  return `${parts.join(", ") || "no points"} of ${progress.total}`;
}

async function showList() {
  const page = await api("/api/sweeps");
  header.replaceChildren(...["Sweep", "Name", "Status", "Progress", "Created"].map((text) => el("th", { text })));
  body.replaceChildren(...page.sweeps.map((sweep) => el("tr", { "data-sweep": sweep.id },
    el("td", {}, el("a", { href: `sweep.html?id=${sweep.id}`, text: `#${sweep.id}` })),
    el("td", { text: sweep.name || "—" }),
    el("td", { text: sweep.status }),
    el("td", { text: progressText(sweep.progress) }),
    el("td", { text: fmt.date(sweep.created_at) }))));
  message.textContent = page.sweeps.length ? "" : "No sweeps yet.";
}

function pointRow(point, run, axes) {
  const summary = run?.summary || {};
  const status = run ? statusBadge(run) : el("span", { class: "badge", text: point.status });
  return el("tr", { "data-point": point.index, "data-status": point.status },
    el("td", { class: "num", text: String(point.index) }),
    el("td", { text: point.variant ?? "—" }),
    ...axes.map((path) => el("td", { text: JSON.stringify(point.values[path]) })),
    el("td", { class: "num", text: String(point.seed) }),
    el("td", {}, status),
    el("td", {}, point.run_id ? el("a", { href: `run.html?id=${point.run_id}`, text: `#${point.run_id}` }) : "—"),
    el("td", { class: "num", text: fmt.pct(summary.measured_sparsity ?? run?.latest?.measured_sparsity) }),
    el("td", { class: "num", text: fmt.num(summary.test_accuracy) }),
    el("td", { class: "num", text: fmt.bytes(summary.keras_zip_bytes) }));
}

function render(sweep) {
  document.title = `Sweep #${sweep.id} · PruneLab`;
  document.getElementById("title").textContent = `Sweep #${sweep.id}${sweep.name ? `: ${sweep.name}` : ""}`;
  document.getElementById("summary").hidden = false;
  const progress = sweep.progress;
  const ended = progress.succeeded + progress.failed + progress.cancelled + progress.missing;
  document.getElementById("status").replaceChildren(el("span", { class: `badge status-${sweep.status}`, text: sweep.status }));
  document.getElementById("bar").value = progress.total ? ended / progress.total : 0;
  document.getElementById("progress").textContent = progressText(progress);
  const variants = Object.keys(sweep.spec.variants || {});
  document.getElementById("facts").textContent = [
    variants.length ? `variants ${variants.join(", ")}` : null,
    ...sweep.spec.axes.map((axis) => `${axis.path}: ${axis.values.map((v) => JSON.stringify(v)).join(", ")}`),
    `seeds ${sweep.spec.seeds.join(", ")}`, `runs tagged ${sweep.tag}`,
  ].filter(Boolean).join(" · ");
  document.getElementById("runs-link").href = `index.html?filter=${encodeURIComponent(`tag:"${sweep.tag}"`)}`;
  const grouped = new URLSearchParams({ filter: `tag:"${sweep.tag}"`, by: sweep.group_by.join(",") });
  document.getElementById("groups-link").href = `compare.html?${grouped}`;
  document.getElementById("groups-link").hidden = !sweep.group_by.length;
  document.getElementById("report-link").href = `/api/compare/report?sweep=${sweep.id}`;
  document.getElementById("cancel").disabled = !(progress.queued || progress.running);
  document.getElementById("retry").disabled = !progress.failed;
  const axes = sweep.spec.axes.map((axis) => axis.path);
  header.replaceChildren(...["#", "Variant", ...axes, "Seed", "Status", "Run", "Sparsity", "Test accuracy", "Zipped"]
    .map((text) => el("th", { text })));
  const runs = new Map(sweep.runs.map((run) => [run.id, run]));
  body.replaceChildren(...sweep.points.map((point) => pointRow(point, runs.get(point.run_id), axes)));
}

async function refresh() {
  const sweep = await api(`/api/sweeps/${encodeURIComponent(sweepId)}`);
  render(sweep);
  return sweep;
}

async function follow() {
  try {
    const sweep = await refresh();
    if (sweep.status === "running") setTimeout(follow, POLL_MS);
  } catch (error) {
    showError(message, error);
    setTimeout(follow, POLL_MS * 4);
  }
}

async function act(action) {
  const errorSlot = document.getElementById("action-error");
  errorSlot.textContent = "";
  try {
    await api(`/api/sweeps/${encodeURIComponent(sweepId)}/${action}`, { method: "POST" });
    await follow();
  } catch (error) {
    errorSlot.textContent = String(error.message);
  }
}

if (sweepId) {
  document.getElementById("cancel").addEventListener("click", () => act("cancel"));
  document.getElementById("retry").addEventListener("click", () => act("retry"));
  follow();
} else {
  showList().catch((error) => showError(message, error));
}
