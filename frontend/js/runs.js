// The runs table: the server filters, sorts and pages (GET /api/runs); live status, tags and notes, compare,
// cancel, delete, CSV export of the rows loaded.

import { api, downloadText, el, findDenseBaseline, fmt, mayChange, renderHeader, runFacts, statusBadge, subscribe, whoAmI } from "./common.js";
import { renderGroupTable } from "./groups.js";

renderHeader("index.html");

const PAGE = 50;
const runs = new Map(); // id -> run, in the server's order
const selected = new Set();
let sortKey = "created", sortDescending = true, baseline = null;
let nextCursor = null, total = 0, loading = 0, newestId = 0;
let me = { name: null, is_admin: false, via: "open" };

// [key, header, value(run, facts), text(value), numeric, server sort (null: not sortable)]
const COLUMNS = [
  ["id", "#", (r) => r.id, String, true, "id"],
  ["name", "name", (r) => r.name, String, false, "name"],
  ["status", "status", (r) => r.status, String, false, "status"],
  ["owner", "owner", (r) => r.owner, (v) => v ?? "—", false, null],
  ["dataset", "dataset", (r) => r.spec.dataset, String, false, null],
  ["model", "model", (r) => r.model_name, String, false, null],
  ["kind", "schedule", (r, f) => f.kind, String, false, null],
  ["target", "target sparsity", (r, f) => f.target, fmt.pct, true, "target"],
  ["sparsity", "final sparsity", (r, f) => f.finalSparsity, fmt.pct, true, "final_sparsity"],
  ["accuracy", "test accuracy", (r, f) => f.accuracy, (v) => fmt.num(v), true, "test_accuracy"],
  ["size", "zipped size", (r, f) => f.zipped, fmt.bytes, true, "keras_zip_bytes"],
  ["ratio", "vs dense", (r, f) => ratio(f), (v) => (v === null ? "—" : `${v.toFixed(2)}×`), true, "keras_zip_bytes"],
  ["duration", "duration", (r, f) => f.duration, fmt.duration, true, "wall_time_s"],
  ["created", "created", (r) => r.created_at, fmt.date, false, "created"],
];

function ratio(facts) {
  const base = baseline && runFacts(baseline).zipped;
  return base && facts.zipped ? facts.zipped / base : null;
}

function value(run, key) {
  const column = COLUMNS.find(([k]) => k === key);
  return column[2](run, runFacts(run));
}

function visibleRuns() { return [...runs.values()]; }

function renderHeaderRow() {
  const cells = [el("th", { scope: "col" }, el("span", { class: "skip", text: "select" }))];
  for (const [key, label, , , numeric, sort] of COLUMNS) {
    const sorted = key === sortKey ? (sortDescending ? "descending" : "ascending") : null;
    cells.push(el("th", { scope: "col", class: numeric ? "num" : null, "aria-sort": sorted },
      sort === null ? label : el("button", { type: "button", text: label, onclick: () => {
        sortDescending = key === sortKey ? !sortDescending : numeric || key === "created";
        sortKey = key;
        reload();
      } })));
  }
  cells.push(el("th", { scope: "col", text: "tags" }), el("th", { scope: "col", text: "note" }), el("th", { scope: "col", text: "actions" }));
  document.getElementById("header-row").replaceChildren(...cells);
}

// Edits saved in this page ("<run id> <field>"): a redrawn row keeps saying so.
const saved = new Set();

function saveOnChange(run, field, input) {
  if (saved.has(`${run.id} ${field}`)) input.title = "saved";
  if (!mayChange(me, run)) {
    input.readOnly = true;
    input.title = `only ${run.owner ?? "an admin"} or an admin may change this`;
    return input;
  }
  input.addEventListener("change", async () => {
    const body = field === "tags" ? { tags: input.value.split(/[\s,]+/).filter(Boolean) } : { note: input.value };
    try {
      const updated = await api(`/api/runs/${run.id}`, { method: "PATCH", body });
      runs.set(run.id, updated);
      input.removeAttribute("aria-invalid");
      input.title = "saved";
      saved.add(`${run.id} ${field}`);
      // The edit is stored: redraw now, with any update (a new filter's page) held back while it was typed.
      input.blur();
      render();
    } catch (error) {
      input.setAttribute("aria-invalid", "true");
      input.title = Array.isArray(error.detail) ? error.detail.map((d) => d.msg).join("; ") : error.message;
      message(`Run ${run.id}: ${input.title}`);
    }
  });
  return input;
}

function row(run) {
  const facts = runFacts(run);
  const check = el("input", { type: "checkbox", "aria-label": `select run ${run.id} ${run.name}`, checked: selected.has(run.id),
    onchange: (event) => { if (event.target.checked) selected.add(run.id); else selected.delete(run.id); updateSelection(); } });
  const cells = [el("td", {}, check)];
  for (const [key, , get, text, numeric] of COLUMNS) {
    const v = get(run, facts);
    let content = text(v);
    if (key === "name") content = el("a", { href: `run.html?id=${run.id}`, text: v });
    if (key === "status") content = statusBadge(run);
    cells.push(el("td", { class: numeric ? "num" : null, "data-col": key }, content));
  }
  cells.push(
    el("td", { class: "tags" }, saveOnChange(run, "tags", el("input", { value: run.tags.join(", "), "aria-label": `tags of run ${run.id}` }))),
    el("td", { class: "note" }, saveOnChange(run, "note", el("input", { value: run.note, maxlength: "2000", "aria-label": `note of run ${run.id}` }))),
    el("td", {}, ...(mayChange(me, run) ? [
      run.status === "queued" || run.status === "running"
        ? el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => act(run, "cancel") }) : null,
      " ",
      run.status !== "running"
        ? el("button", { type: "button", class: "danger", text: "Delete", onclick: () => act(run, "delete") }) : null,
    ] : [])),
  );
  return el("tr", { "data-run": run.id }, ...cells);
}

async function act(run, action) {
  if (action === "delete" && !confirm(`Delete run ${run.id} "${run.name}" with its metrics and models?`)) return;
  try {
    if (action === "delete") {
      await api(`/api/runs/${run.id}`, { method: "DELETE" });
      runs.delete(run.id);
      selected.delete(run.id);
      total -= 1;
    } else runs.set(run.id, await api(`/api/runs/${run.id}/cancel`, { method: "POST" }));
    render();
  } catch (error) { message(error.message); }
}

function message(text) { document.getElementById("message").textContent = text; }

function updateSelection() {
  const count = selected.size;
  document.getElementById("compare").disabled = count < 2 || count > 20;
  document.getElementById("selection").textContent = count ? `${count} selected${count > 20 ? " (at most 20 can be compared)" : ""}` : "";
}

function render() {
  document.getElementById("baseline").textContent = baseline
    ? `Dense baseline for "vs dense": run #${baseline.id} (${baseline.tags.includes("dense") ? "tagged dense" : "target sparsity 0"})`
    : 'No dense baseline yet: tag a run "dense" or train one with target sparsity 0.';
  renderHeaderRow();
  const focused = document.activeElement?.closest?.("td.tags, td.note") ? document.activeElement : null;
  if (focused) return; // do not replace an input the user is typing in; the next update redraws
  document.querySelector("#runs tbody").replaceChildren(...visibleRuns().map(row));
  const filtered = document.getElementById("filter").value.trim() !== "";
  if (!total && !filtered) message("No runs yet: start one from New run.");
  else message(`${runs.size} of ${total} ${filtered ? "matching " : ""}runs shown.`);
  const more = document.getElementById("more");
  more.hidden = nextCursor === null;
  more.disabled = loading > 0;
  updateSelection();
}

function query(cursor) {
  const column = COLUMNS.find(([key]) => key === sortKey);
  const params = new URLSearchParams({ filter: document.getElementById("filter").value, sort: column[5],
    order: sortDescending ? "desc" : "asc", limit: String(PAGE) });
  if (cursor) params.set("cursor", cursor);
  return `/api/runs?${params}`;
}

function showFilterError(error) {
  const input = document.getElementById("filter");
  const box = document.getElementById("filter-error");
  const item = Array.isArray(error?.detail) ? error.detail.find((d) => d.field === "filter") : null;
  if (!item) {
    input.removeAttribute("aria-invalid");
    box.textContent = "";
    return false;
  }
  input.setAttribute("aria-invalid", "true");
  box.textContent = `Filter: ${item.msg}`;
  return true;
}

// Pages are fetched in turn; a reply to an older filter or sort (`generation`) is dropped.
let generation = 0;
async function loadPage(cursor) {
  const mine = cursor ? generation : ++generation;
  loading += 1;
  render();
  try {
    const page = await api(query(cursor));
    if (mine !== generation) return;
    showFilterError(null);
    if (!cursor) runs.clear();
    for (const run of page.runs) runs.set(run.id, run);
    if (!cursor) newestId = Math.max(0, ...page.runs.map((run) => run.id), newestId);
    nextCursor = page.next_cursor;
    total = page.total;
  } catch (error) {
    if (mine !== generation) return;
    if (!showFilterError(error)) message(`Could not load runs: ${error.message}`);
  } finally {
    loading -= 1;
    render();
  }
}

// Grouped, the table of groups (n, mean ± std of the final metrics) sits above the runs the filter matches.
let groupGeneration = 0; // a reply to an older filter or grouping is dropped
async function loadGroups() {
  const mine = ++groupGeneration;
  const by = document.getElementById("group-by").value.replace(/\s+/g, "");
  const filter = document.getElementById("filter").value;
  const wrap = document.getElementById("group-wrap");
  const link = document.getElementById("group-compare");
  wrap.hidden = link.hidden = !by;
  if (!by) return;
  const params = new URLSearchParams({ by, filter, metrics: "test_accuracy,measured_sparsity,keras_zip_bytes" });
  link.href = `compare.html?${new URLSearchParams({ by, filter })}`;
  try {
    const groups = await api(`/api/groups?${params}`);
    if (mine !== groupGeneration) return;
    renderGroupTable(document.getElementById("groups"), groups,
      (group) => `compare.html?runs=${group.run_ids.slice(0, 20).join(",")}`);
    document.getElementById("group-message").textContent = `${groups.groups.length} groups`;
  } catch (error) {
    if (mine !== groupGeneration) return;
    document.getElementById("groups").replaceChildren();
    const said = Array.isArray(error.detail) ? error.detail.map((d) => d.msg).join("; ") : error.message;
    document.getElementById("group-message").textContent = `Could not group: ${said}`;
  }
}

function reload() { loadGroups(); return loadPage(null); }

let typing = null;
function filterChanged() {
  clearTimeout(typing);
  typing = setTimeout(reload, 250);
}

function exportCsv() {
  const quote = (cell) => `"${String(cell ?? "").replaceAll('"', '""')}"`;
  const header = [...COLUMNS.map(([key]) => key), "tags", "note"];
  const lines = visibleRuns().map((run) => [...COLUMNS.map(([key]) => value(run, key)), run.tags.join(" "), run.note].map(quote).join(","));
  downloadText("prunelab-runs.csv", [header.join(","), ...lines].join("\n") + "\n", "text/csv");
}

async function refreshRun(id) {
  try { runs.set(id, await api(`/api/runs/${id}`)); } catch { runs.delete(id); }
}

// A run submitted since the table loaded (ids only grow) belongs on top of the newest-first, unfiltered view;
// other views show it on their next reload. Runs the table has not paged to yet are left alone.
async function addNewRun(id) {
  if (id <= newestId || sortKey !== "created" || !sortDescending || document.getElementById("filter").value.trim()) return;
  newestId = id;
  try {
    const run = await api(`/api/runs/${id}`);
    const rest = [...runs.entries()];
    runs.clear();
    runs.set(run.id, run);
    for (const [key, value] of rest) runs.set(key, value);
    total += 1;
  } catch { /* deleted meanwhile */ }
}

let pending = null;
function scheduleRender() { if (!pending) pending = setTimeout(() => { pending = null; render(); }, 300); }

async function start() {
  me = await whoAmI();
  // A link may open the table filtered (a sweep's page links to its runs with ?filter=tag:"sweep:<id>").
  document.getElementById("filter").value = new URLSearchParams(location.search).get("filter") ?? "";
  document.getElementById("filter").addEventListener("input", filterChanged);
  document.getElementById("group-by").addEventListener("change", loadGroups);
  document.getElementById("more").addEventListener("click", () => { if (nextCursor) loadPage(nextCursor); });
  findDenseBaseline().then((found) => { baseline = found; render(); }).catch(() => {});
  await reload();
  document.getElementById("compare").addEventListener("click", () => {
    location.assign(`compare.html?runs=${[...selected].sort((a, b) => a - b).join(",")}`);
  });
  document.getElementById("export").addEventListener("click", exportCsv);
  subscribe("/api/runs/events", {
    runs: async (changes) => {
      for (const change of changes) {
        const known = runs.get(change.id);
        if (!known) await addNewRun(change.id);
        else if (known.status !== change.status) await refreshRun(change.id);
        else known.step = change.step;
      }
      scheduleRender();
    },
  });
}

start().catch((error) => message(`Could not load runs: ${error.message}`));
