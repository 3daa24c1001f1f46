// Shared helpers of every page: API calls, formatting, navigation, live streams.

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
    this.status = status;
    this.detail = detail;
  }
}

// Where a page goes when the API says nobody is signed in; it comes back to `next` afterwards.
export function signInUrl() {
  return `login.html?next=${encodeURIComponent(location.pathname + location.search)}`;
}

// Same-origin fetches send the session cookie (HttpOnly: scripts never see it), and the browser adds
// the Origin header the server checks on changes; nothing here handles credentials.
export async function api(path, options = {}) {
  const init = { ...options, headers: { "content-type": "application/json", ...(options.headers || {}) } };
  if (init.body && typeof init.body !== "string") init.body = JSON.stringify(init.body);
  const response = await send(path, init);
  if (response.status === 204) return null;
  return response.json().catch(() => null);
}

async function send(path, init) {
  const response = await fetch(path, init);
  if (response.status === 401 && !location.pathname.endsWith("/login.html")) {
    location.assign(signInUrl());
    return new Promise(() => {}); // the page is leaving: nothing after this should run
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body?.detail ?? response.statusText);
  }
  return response;
}

// Series reads (/api/compare, /api/runs/{id}/metrics) in the columns form (backend/metrics/replies.py): the reply's
// numbers are wrapped in typed arrays where they lie, never parsed or copied; Plotly draws typed arrays as they are.
// A value's gap is NaN. The browser revalidates with the reply's ETag: an unchanged series costs a 304.
export const COLUMNS = "application/vnd.prunelab.columns";

export async function apiSeries(path) {
  const response = await send(path, { headers: { accept: COLUMNS } });
  if (!(response.headers.get("content-type") || "").startsWith(COLUMNS)) return response.json();
  return decodeColumns(await response.arrayBuffer());
}

const TYPED = { int32: Int32Array, float32: Float32Array, float64: Float64Array };

export function decodeColumns(buffer) {
  const length = new DataView(buffer).getUint32(0, true);
  const start = Math.ceil((4 + length) / 8) * 8;
  const column = ([type, offset], count) => new TYPED[type](buffer, start + offset, count);
  const header = new TextDecoder().decode(new Uint8Array(buffer, 4, length));
  return JSON.parse(header, (_name, value) => {
    if (value === null || typeof value !== "object" || typeof value.columns !== "number") return value;
    const count = value.columns, origin = value.wall_times[2];
    const offsets = column(value.wall_times, count);
    let walls = null; // absolute wall times only when a chart's x axis asks for them
    return Object.defineProperty({ steps: column(value.steps, count), values: column(value.values, count) }, "wall_times", {
      enumerable: true,
      get: () => (walls ??= Float64Array.from(offsets, (offset) => origin + offset)),
    });
  });
}

// A series as plain arrays (null for a gap), for the few places that grow or index a series by value.
export function plainSeries(s) {
  const gap = (value) => (Number.isNaN(value) ? null : value);
  return { steps: Array.from(s.steps), values: Array.from(s.values, gap), wall_times: Array.from(s.wall_times) };
}

// Who is signed in: {name, is_admin, via}; name is null while PruneLab is open (no users).
let mePromise = null;
export function whoAmI() {
  mePromise ??= api("/api/auth/me");
  return mePromise;
}

// Whether `me` may cancel, delete, tag or annotate `thing` (a run or an upload): the server decides, this hides buttons.
export function mayChange(me, thing) {
  return me.via === "open" || me.via === "service" || me.is_admin || (me.name !== null && thing.owner === me.name);
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

const PAGES = [["index.html", "Runs"], ["new.html", "New run"], ["compare.html", "Compare"], ["sweep.html", "Sweeps"],
  ["new-sweep.html", "New sweep"], ["workers.html", "Workers"]];

export function renderHeader(current) {
  const nav = el("nav", { "aria-label": "main" }, ...PAGES.map(([href, label]) =>
    el("a", { href, "aria-current": href === current ? "page" : null, text: label })));
  const account = el("div", { class: "account", id: "account" });
  document.body.prepend(
    el("a", { class: "skip", href: "#main", text: "Skip to content" }),
    el("header", { class: "top" }, el("a", { href: "index.html", class: "brand", text: "PruneLab" }), nav, account),
  );
  whoAmI().then((me) => {
    if (me.name === null) return; // open on loopback: nobody signs in
    account.replaceChildren(
      el("span", { text: `Signed in as ${me.name}${me.is_admin ? " (admin)" : ""}` }),
      el("button", { type: "button", class: "secondary", text: "Sign out", onclick: signOut }),
    );
  }).catch(() => {}); // a page that cannot load says so itself
}

async function signOut() {
  await fetch("/api/auth/logout", { method: "POST" });
  location.assign("login.html?signed_out=1");
}

export const fmt = {
  num: (v, digits = 4) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits)),
  pct: (v) => (v === null || v === undefined || Number.isNaN(v) ? "—" : `${(100 * v).toFixed(1)}%`),
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
    kind: run.spec.schedule?.kind ?? "none",
    target: run.plan.target_sparsity,
    finalSparsity: summary.measured_sparsity ?? run.latest.measured_sparsity ?? null,
    accuracy: summary.test_accuracy ?? null,
    zipped: summary.keras_zip_bytes ?? null,
    duration: summary.wall_time_s ?? (started && ended ? (ended - started) / 1000 : null),
    progress: run.step && run.plan.total_steps ? Math.min(1, run.step / run.plan.total_steps) : 0,
  };
}

// The dense baseline: the newest succeeded run tagged `dense`, else the newest succeeded run targeting 0 sparsity.
export async function findDenseBaseline() {
  for (const filter of ["status:succeeded tag:dense", "status:succeeded target = 0"]) {
    const page = await api(`/api/runs?${new URLSearchParams({ filter, sort: "id", order: "desc", limit: "1" })}`);
    if (page.runs.length) return page.runs[0];
  }
  return null;
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
