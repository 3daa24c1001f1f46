// The runs table: live status, sort, filter, tags and notes, compare, cancel, delete, CSV export.

import { api, denseBaseline, downloadText, el, fmt, mayChange, renderHeader, runFacts, statusBadge, subscribe, whoAmI } from "./common.js";

renderHeader("index.html");

const runs = new Map(); // id -> run
const selected = new Set();
let sortKey = "id", sortDescending = true, baseline = null;
let me = { name: null, is_admin: false, via: "open" };

// [key, header, value(run, facts), text(value), numeric]
const COLUMNS = [
  ["id", "#", (r) => r.id, String, true],
  ["name", "name", (r) => r.name, String, false],
  ["status", "status", (r) => r.status, String, false],
  ["owner", "owner", (r) => r.owner, (v) => v ?? "—", false],
  ["dataset", "dataset", (r) => r.spec.dataset, String, false],
  ["model", "model", (r) => r.spec.model, String, false],
  ["kind", "schedule", (r, f) => f.kind, String, false],
  ["target", "target sparsity", (r, f) => f.target, fmt.pct, true],
  ["sparsity", "final sparsity", (r, f) => f.finalSparsity, fmt.pct, true],
  ["accuracy", "test accuracy", (r, f) => f.accuracy, (v) => fmt.num(v), true],
  ["size", "zipped size", (r, f) => f.zipped, fmt.bytes, true],
  ["ratio", "vs dense", (r, f) => ratio(f), (v) => (v === null ? "—" : `${v.toFixed(2)}×`), true],
  ["duration", "duration", (r, f) => f.duration, fmt.duration, true],
  ["created", "created", (r) => r.created_at, fmt.date, false],
];
const FIELDS = { status: (r) => r.status, dataset: (r) => r.spec.dataset, model: (r) => r.spec.model, kind: (r) => r.spec.schedule?.kind ?? "none" };
// Exact matches: owner:ana is ana's runs, not anabel's.
const EXACT_FIELDS = { owner: (r) => r.owner ?? "" };

function ratio(facts) {
  const base = baseline && runFacts(baseline).zipped;
  return base && facts.zipped ? facts.zipped / base : null;
}

function value(run, key) {
  const column = COLUMNS.find(([k]) => k === key);
  return column[2](run, runFacts(run));
}

// "status:running tag:dense accuracy > 0.98 poly" -> predicates, all of which must hold.
export function parseFilter(text) {
  const normalised = text.replace(/\s*(>=|<=|!=|>|<|=)\s*/g, "$1");
  return normalised.split(/\s+/).filter(Boolean).map((token) => {
    const numeric = token.match(/^([a-z_]+)(>=|<=|!=|>|<|=)(-?[\d.]+(?:e-?\d+)?)$/i);
    if (numeric && COLUMNS.some(([k, , , , n]) => k === numeric[1] && n)) {
      const [, key, op, raw] = numeric;
      const limit = Number(raw);
      const compare = { ">": (a) => a > limit, "<": (a) => a < limit, ">=": (a) => a >= limit, "<=": (a) => a <= limit,
        "=": (a) => Math.abs(a - limit) < 1e-9, "!=": (a) => Math.abs(a - limit) >= 1e-9 }[op];
      return (run) => { const v = value(run, key); return v !== null && v !== undefined && compare(v); };
    }
    const field = token.match(/^([a-z]+):(.+)$/i);
    if (field && field[1] === "tag") return (run) => run.tags.some((tag) => tag.toLowerCase() === field[2].toLowerCase());
    if (field && EXACT_FIELDS[field[1]]) return (run) => EXACT_FIELDS[field[1]](run).toLowerCase() === field[2].toLowerCase();
    if (field && FIELDS[field[1]]) return (run) => FIELDS[field[1]](run).toLowerCase().startsWith(field[2].toLowerCase());
    return (run) => `${run.name} ${run.note} ${run.tags.join(" ")}`.toLowerCase().includes(token.toLowerCase());
  });
}

function visibleRuns() {
  const predicates = parseFilter(document.getElementById("filter").value);
  const rows = [...runs.values()].filter((run) => predicates.every((p) => p(run)));
  const direction = sortDescending ? -1 : 1;
  return rows.sort((a, b) => {
    const x = value(a, sortKey), y = value(b, sortKey);
    if (x === y) return b.id - a.id;
    if (x === null || x === undefined) return 1; // blanks last either way
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * direction;
  });
}

function renderHeaderRow() {
  const cells = [el("th", { scope: "col" }, el("span", { class: "skip", text: "select" }))];
  for (const [key, label, , , numeric] of COLUMNS) {
    const sorted = key === sortKey ? (sortDescending ? "descending" : "ascending") : null;
    cells.push(el("th", { scope: "col", class: numeric ? "num" : null, "aria-sort": sorted },
      el("button", { type: "button", text: label, onclick: () => {
        sortDescending = key === sortKey ? !sortDescending : numeric;
        sortKey = key;
        render();
      } })));
  }
  cells.push(el("th", { scope: "col", text: "tags" }), el("th", { scope: "col", text: "note" }), el("th", { scope: "col", text: "actions" }));
  document.getElementById("header-row").replaceChildren(...cells);
}

function saveOnChange(run, field, input) {
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
      if (field === "tags") render();
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
  baseline = denseBaseline([...runs.values()]);
  document.getElementById("baseline").textContent = baseline
    ? `Dense baseline for "vs dense": run #${baseline.id} (${baseline.tags.includes("dense") ? "tagged dense" : "target sparsity 0"})`
    : 'No dense baseline yet: tag a run "dense" or train one with target sparsity 0.';
  renderHeaderRow();
  const rows = visibleRuns();
  const focused = document.activeElement?.closest?.("td.tags, td.note") ? document.activeElement : null;
  if (focused) return; // do not replace an input the user is typing in; the next update redraws
  document.querySelector("#runs tbody").replaceChildren(...rows.map(row));
  if (!runs.size) message("No runs yet: start one from New run.");
  else message(`${rows.length} of ${runs.size} runs shown.`);
  updateSelection();
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

let pending = null;
function scheduleRender() { if (!pending) pending = setTimeout(() => { pending = null; render(); }, 300); }

async function start() {
  me = await whoAmI();
  for (const run of await api("/api/runs?limit=1000")) runs.set(run.id, run);
  render();
  document.getElementById("filter").addEventListener("input", render);
  document.getElementById("compare").addEventListener("click", () => {
    location.assign(`compare.html?runs=${[...selected].sort((a, b) => a - b).join(",")}`);
  });
  document.getElementById("export").addEventListener("click", exportCsv);
  subscribe("/api/runs/events", {
    runs: async (changes) => {
      for (const change of changes) {
        const known = runs.get(change.id);
        if (!known || known.status !== change.status) await refreshRun(change.id);
        else known.step = change.step;
      }
      scheduleRender();
    },
  });
}

start().catch((error) => message(`Could not load runs: ${error.message}`));
