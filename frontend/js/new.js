// The new-run page: the generated form, the live schedule preview, clone and submit.

import { api, ApiError, el, renderHeader } from "./common.js";
import { draw } from "./charts.js";
import { SchemaForm } from "./form.js";

renderHeader("new.html");

const form = document.getElementById("run-form");
const groups = document.getElementById("groups");
const formError = document.getElementById("form-error");
const params = new URLSearchParams(location.search);

async function start() {
  const [openapi, datasets, models] = await Promise.all([api("/openapi.json"), api("/api/datasets"), api("/api/models")]);
  const schemaForm = new SchemaForm(openapi.components.schemas, {
    dataset: datasets.map((d) => d.name),
    model: models.map((m) => m.name),
  });
  let initial = null;
  if (params.get("clone")) {
    const source = await api(`/api/runs/${encodeURIComponent(params.get("clone"))}`);
    initial = { ...source.spec, name: `${source.name} (clone)` };
    document.getElementById("title").textContent = `New run from run #${source.id}`;
    document.getElementById("clone-note").textContent = `Values prefilled from run #${source.id} "${source.name}".`;
  }
  if (params.get("sensitivity")) {
    // "Prune to these targets" on a sensitivity run's page: the spec its proposal makes, layer_targets filled in.
    const id = encodeURIComponent(params.get("sensitivity"));
    const proposal = await api(`/api/runs/${id}/sensitivity/proposal?target_sparsity=${encodeURIComponent(params.get("target_sparsity") ?? "")}`);
    initial = proposal.spec;
    document.getElementById("title").textContent = `New run from sensitivity run #${proposal.run_id}`;
    document.getElementById("clone-note").textContent = `Per-layer targets proposed by run #${proposal.run_id} for `
      + `${(100 * proposal.target_sparsity).toFixed(1)}% overall sparsity (predicted accuracy drop ${proposal.predicted_accuracy_drop.toFixed(4)}).`;
  }
  schemaForm.render(groups, initial);
  schemaForm.onchange = schedulePreview;
  document.getElementById("reset").addEventListener("click", () => { schemaForm.render(groups, null); schedulePreview(); });

  let timer = null, sequence = 0;
  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(preview, 250);
  }

  async function preview() {
    const ticket = ++sequence;
    const facts = document.getElementById("preview-facts");
    const warnings = document.getElementById("preview-warnings");
    try {
      const body = await api("/api/schedules/preview", { method: "POST", body: schemaForm.read() });
      if (ticket !== sequence) return;
      schemaForm.clearErrors();
      document.getElementById("preview-chart").classList.remove("stale");
      const events = body.pruning_steps;
      draw("preview-chart", [
        { x: body.steps, y: body.target_sparsity, mode: "lines", line: { shape: "hv", color: "#1f5fbf" }, name: "target sparsity" },
        { x: events, y: events.map(() => 0), mode: "markers", marker: { symbol: "line-ns-open", size: 10, color: "#9a6700" }, name: "pruning steps", hoverinfo: "x" },
      ], { xaxis: { title: { text: "step" }, range: [0, body.total_steps] }, yaxis: { title: { text: "target sparsity" }, range: [0, 1] } });
      facts.textContent = `${body.total_steps} steps (${body.steps_per_epoch} per epoch); pruning from step ${body.begin_step} to ${body.end_step}, ${events.length} mask updates, ending at ${(100 * body.final_sparsity).toFixed(1)}% sparsity.`;
      warnings.replaceChildren(...body.warnings.map((text) => el("li", { text })));
    } catch (error) {
      if (ticket !== sequence) return;
      if (error instanceof ApiError && error.status === 422) {
        schemaForm.clearErrors();
        const orphans = schemaForm.showServerErrors(error.detail);
        facts.textContent = "Fix the highlighted fields to see the schedule.";
        document.getElementById("preview-chart").classList.add("stale");
        warnings.replaceChildren(...orphans.map((text) => el("li", { text })));
      } else facts.textContent = String(error.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    if (!schemaForm.validate()) { schemaForm.focusFirstError(); return; }
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const run = await api("/api/runs", { method: "POST", body: schemaForm.read() });
      location.assign(`run.html?id=${run.id}`);
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 422) {
        schemaForm.clearErrors();
        const orphans = schemaForm.showServerErrors(error.detail);
        formError.textContent = orphans.join("; ") || "The run was not submitted: see the highlighted fields.";
        schemaForm.focusFirstError();
      } else formError.textContent = String(error.message);
    }
  });
  preview();
}

start().catch((error) => { formError.textContent = `Could not load the form: ${error.message}`; });
