// The new-sweep page: the generated run form (what every run shares), schedule variants, varied fields and seeds.

import { api, ApiError, el, renderHeader } from "./common.js";
import { SchemaForm } from "./form.js";

renderHeader("new-sweep.html");

const SCHEDULE_KINDS = ["constant", "polynomial", "piecewise"];
// Schedule fields every kind has: kept when a variant changes the kind.
const SHARED_SCHEDULE_FIELDS = ["begin_step", "end_step", "begin_fraction", "end_fraction", "frequency"];
// Engine and backend pairs (the tfmot engine has tensorflow only, so the two do not cross as axes).
const ENGINE_VARIANTS = {
  "tfmot": { engine: "tfmot", backend: null },
  "keras-tf": { engine: "keras", backend: "tensorflow" },
  "keras-jax": { engine: "keras", backend: "jax" },
  "keras-torch": { engine: "keras", backend: "torch" },
};
const KERAS_ENGINE_EXPORTS = ["keras", "tflite", "tflite_int8"];

const form = document.getElementById("sweep-form");
const formError = document.getElementById("form-error");
const axesBox = document.getElementById("axes");
let schemaForm = null;

// "0.5, 0.75, {"kind": "block"}" -> [0.5, 0.75, {kind: "block"}]: JSON where it parses, text otherwise.
export function parseValues(text) {
  const values = [];
  let depth = 0, start = 0;
  for (let i = 0; i <= text.length; i += 1) {
    const c = text[i];
    if (c === "{" || c === "[") depth += 1;
    else if (c === "}" || c === "]") depth -= 1;
    else if ((c === "," && depth === 0) || i === text.length) {
      const part = text.slice(start, i).trim();
      if (part) { try { values.push(JSON.parse(part)); } catch { values.push(part); } }
      start = i + 1;
    }
  }
  return values;
}

function axisRow(path = "sparsity", values = "") {
  const paths = ["sparsity", ...[...schemaForm.readers.keys()].filter((p) => p !== "seed" && p !== "name")];
  const index = axesBox.children.length;
  const select = el("select", { "aria-label": `field ${index + 1} to vary`, class: "axis-path" },
    ...paths.map((p) => el("option", { value: p, text: p, selected: p === path })));
  const input = el("input", { "aria-label": `values of field ${index + 1}`, class: "axis-values", value: values,
    size: "40", placeholder: "0.5, 0.75, 0.875, 0.95", oninput: updateCount });
  const remove = el("button", { type: "button", class: "secondary", text: "Remove",
    onclick: () => { row.remove(); updateCount(); } });
  const row = el("div", { class: "row axis", style: "margin-bottom: 0.5rem" }, select, input, remove);
  axesBox.append(row);
  updateCount();
}

function variantKinds() {
  return [...document.querySelectorAll("#variant-boxes input:checked")].map((box) => box.value);
}

function engineVariants() {
  return [...document.querySelectorAll("#engine-boxes input:checked")].map((box) => box.value);
}

// An engine variant as a partial spec: a keras one keeps the form's exports that engine makes.
function engineVariant(name, base) {
  const variant = { ...ENGINE_VARIANTS[name] };
  if (variant.engine === "keras" && Array.isArray(base.exports)) {
    variant.exports = base.exports.filter((kind) => KERAS_ENGINE_EXPORTS.includes(kind));
  }
  return variant;
}

// The sweep as POST /api/sweeps takes it.
export function readSweep() {
  const base = schemaForm.read();
  delete base.seed;
  const kinds = variantKinds();
  const schedules = {};
  if (kinds.length) {
    const schedule = base.schedule || {};
    base.schedule = Object.fromEntries(SHARED_SCHEDULE_FIELDS.filter((k) => k in schedule).map((k) => [k, schedule[k]]));
    // The form's own kind keeps all its fields; another kind starts from its defaults.
    for (const kind of kinds) schedules[kind] = { schedule: kind === schedule.kind ? { ...schedule } : { kind } };
  }
  const engines = Object.fromEntries(engineVariants().map((name) => [name, engineVariant(name, base)]));
  // Schedule variants x engine variants, named `<kind>+<engine>` when both are ticked.
  let variants = Object.keys(engines).length ? engines : schedules;
  if (kinds.length && Object.keys(engines).length) {
    variants = {};
    for (const [kind, schedule] of Object.entries(schedules)) {
      for (const [name, engine] of Object.entries(engines)) variants[`${kind}+${name}`] = { ...schedule, ...engine };
    }
  }
  const axes = [...axesBox.querySelectorAll(".axis")].map((row) => ({
    path: row.querySelector(".axis-path").value,
    values: parseValues(row.querySelector(".axis-values").value),
  })).filter((axis) => axis.values.length);
  const seeds = document.getElementById("seeds").value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const sweep = { name: document.getElementById("sweep-name").value, base, variants, axes, seeds };
  if (document.getElementById("mode").value === "random") {
    sweep.mode = "random";
    sweep.samples = Number(document.getElementById("samples").value);
  }
  return sweep;
}

function updateCount() {
  if (!schemaForm) return;
  const sweep = readSweep();
  const combinations = Math.max(Object.keys(sweep.variants).length, 1) * sweep.axes.reduce((n, a) => n * a.values.length, 1);
  const chosen = sweep.mode === "random" ? Math.min(sweep.samples || 0, combinations) : combinations;
  const runs = chosen * sweep.seeds.length;
  document.getElementById("count").textContent = `This sweep makes ${runs} run${runs === 1 ? "" : "s"}` +
    ` (${chosen} combination${chosen === 1 ? "" : "s"} x ${sweep.seeds.length} seed${sweep.seeds.length === 1 ? "" : "s"}).`;
}

async function start() {
  const [openapi, datasets, models] = await Promise.all([api("/openapi.json"), api("/api/datasets"), api("/api/models")]);
  schemaForm = new SchemaForm(openapi.components.schemas, {
    dataset: datasets.map((d) => d.name),
    model: models.map((m) => m.name),
  });
  schemaForm.render(document.getElementById("groups"), null);
  schemaForm.onchange = updateCount;
  document.getElementById("variant-boxes").replaceChildren(...SCHEDULE_KINDS.map((kind) =>
    el("label", {}, el("input", { type: "checkbox", value: kind, id: `variant-${kind}`, onchange: updateCount }), ` ${kind}`)));
  document.getElementById("engine-boxes").replaceChildren(...Object.entries(ENGINE_VARIANTS).map(([name, pair]) =>
    el("label", {}, el("input", { type: "checkbox", value: name, id: `engine-${name}`, onchange: updateCount }),
      ` ${name} (${pair.engine}${pair.backend ? ` on ${pair.backend}` : ""})`)));
  for (const id of ["seeds", "samples", "sweep-name"]) document.getElementById(id).addEventListener("input", updateCount);
  document.getElementById("mode").addEventListener("change", (event) => {
    document.getElementById("samples-field").hidden = event.target.value !== "random";
    updateCount();
  });
  document.getElementById("add-axis").addEventListener("click", () => axisRow("learning_rate"));
  axisRow("sparsity", "0.5, 0.75, 0.875, 0.95");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    if (!schemaForm.validate()) { schemaForm.focusFirstError(); return; }
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const sweep = await api("/api/sweeps", { method: "POST", body: readSweep() });
      location.assign(`sweep.html?id=${sweep.id}`);
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 422) {
        // A base field's message goes next to it; a point's or an axis's is listed here.
        const detail = (Array.isArray(error.detail) ? error.detail : [{ field: "", msg: String(error.detail) }])
          // A point's or an axis's message names it already; a base field's goes next to the field.
          .map((item) => ({ ...item, field: /^(points|axes|samples|seeds)\b/.test(item.field) ? "" : item.field.replace(/^base\./, "") }));
        schemaForm.clearErrors();
        const orphans = schemaForm.showServerErrors(detail);
        formError.textContent = orphans.join("\n") || "The sweep was not submitted: see the highlighted fields.";
      } else formError.textContent = String(error.message);
    }
  });
}

start().catch((error) => { formError.textContent = `Could not load the form: ${error.message}`; });
