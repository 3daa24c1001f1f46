// Workers and the queue (GET /api/workers): read again when a run changes (the runs stream tells) and once per
// heartbeat interval, so a worker that stopped beating turns `gone` without a reload.

import { api, el, fmt, renderHeader, showError, subscribe } from "./common.js";

renderHeader("workers.html");

const REFRESH_MS = 10000;
let pending = null;

function runLink(id) {
  return el("a", { href: `run.html?id=${id}`, text: `#${id}` });
}

// What the keras engine can run on this worker (null: a worker of an earlier version did not record it).
function kerasBackends(backends) {
  if (backends === null || backends === undefined) return "not recorded";
  return backends.length ? backends.join(", ") : "none (no Keras 3)";
}

function draw(seen) {
  const rows = seen.workers.map((worker) => el("tr", { "data-worker": worker.name },
    el("td", { text: worker.name }),
    el("td", {}, el("span", { class: `badge worker-${worker.state}`, text: worker.state })),
    el("td", { text: worker.host }),
    el("td", { text: worker.queues.join(", ") }),
    el("td", { text: String(worker.concurrency) }),
    el("td", { text: kerasBackends(worker.keras_backends) }),
    el("td", {}, ...(worker.running.length ? worker.running.flatMap((id, i) => (i ? [", ", runLink(id)] : [runLink(id)])) : ["—"])),
    el("td", { text: fmt.date(worker.heartbeat_at) })));
  document.querySelector("#workers tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: "8", class: "muted", text: "No worker has been seen: start one with `prunelab worker`." }))]));
  const { queue } = seen;
  document.getElementById("queue-length").textContent = `Queue ${queue.name}: ${queue.length} run(s) waiting`;
  document.querySelector("#queue tbody").replaceChildren(...queue.runs.map((run) => el("tr", { "data-run": String(run.id) },
    el("td", { text: String(run.position) }), el("td", {}, runLink(run.id), ` ${run.name}`))));
  document.getElementById("waiting").textContent = queue.waiting ? `Waiting: ${queue.waiting}` : "";
}

async function refresh() {
  try {
    draw(await api("/api/workers"));
  } catch (error) {
    showError(document.getElementById("waiting"), error);
  }
}

function soon() {
  if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 300);
}

refresh();
subscribe("/api/runs/events", { runs: soon });
setInterval(refresh, REFRESH_MS);
