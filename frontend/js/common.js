// Shared helpers of every page: API calls, formatting, navigation, live streams.

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
    this.status = status;
    this.detail = detail;
  }
}

export async function api(path, options = {}) {
  const init = { ...options, headers: { "content-type": "application/json", ...(options.headers || {}) } };
  if (init.body && typeof init.body !== "string") init.body = JSON.stringify(init.body);
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body?.detail ?? response.statusText);
  return body;
}

export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
};

const PAGES = [["index.html", "Runs"], ["new.html", "New run"], ["compare.html", "Compare"]];

export function renderHeader(current) {
  const nav = el("nav", { "aria-label": "main" }, ...PAGES.map(([href, label]) =>
    el("a", { href, "aria-current": href === current ? "page" : null, text: label })));
  document.body.prepend(
    el("a", { class: "skip", href: "#main", text: "Skip to content" }),
    el("header", { class: "top" }, el("a", { href: "index.html", class: "brand", text: "PruneLab" }), nav),
  );
}

export const fmt = {
  num: (v, digits = 4) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits)),
  pct: (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`),
  bytes: (v) => {
    if (v === null || v === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let size = v, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return `${size.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  },
  duration: (seconds) => {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${(minutes / 60).toFixed(1)} h`;
  },
  date: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
};

export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

// Derived columns shared by the runs table and the compare page.
export function runFacts(run) {
  const summary = run.summary || {};
  const started = run.started_at ? Date.parse(run.started_at) : null;
  const ended = run.finished_at ? Date.parse(run.finished_at) : started ? Date.now() : null;
  return {
    kind: run.spec.schedule.kind,
    target: run.plan.target_sparsity,
    finalSparsity: summary.measured_sparsity ?? run.latest.measured_sparsity ?? null,
    accuracy: summary.test_accuracy ?? null,
    zipped: summary.keras_zip_bytes ?? null,
    duration: summary.wall_time_s ?? (started && ended ? (ended - started) / 1000 : null),
    progress: run.step && run.plan.total_steps ? Math.min(1, run.step / run.plan.total_steps) : 0,
  };
}

// The dense baseline: the newest succeeded run tagged `dense`, else the newest succeeded run targeting 0 sparsity.
export function denseBaseline(runs) {
  const done = runs.filter((run) => run.status === "succeeded").sort((a, b) => b.id - a.id);
  return done.find((run) => run.tags.includes("dense")) || done.find((run) => run.plan.target_sparsity === 0) || null;
}

export function statusBadge(run) {
  const badge = el("span", { class: `badge status-${run.status}`, text: run.status });
  if (run.status !== "running") return badge;
  const facts = runFacts(run);
  return el("span", {}, badge, " ",
    el("progress", { max: "1", value: String(facts.progress), "aria-label": `progress of run ${run.id}` }),
    el("span", { class: "muted", text: ` ${run.step ?? 0}/${run.plan.total_steps}` }));
}

// An EventSource that calls handlers[eventName](data) and closes itself on `end`.
export function subscribe(url, handlers) {
  const source = new EventSource(url);
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  }
  source.addEventListener("end", () => source.close());
  return source;
}

export function downloadText(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function showError(container, error) {
  container.replaceChildren(el("p", { class: "error-text", role: "alert", text: String(error.message || error) }));
}
