// The metric picker of the run and compare pages: every key the runs logged (GET .../metric-keys), searched as
// you type in an <input list>. Keys sharing a prefix ("layer_sparsity/<layer>", "mask_churn/<layer>") are one
// entry, "layer_sparsity/*", drawn as one chart. The picked entries live in the page URL (`metrics=a,b/*`).

import { el } from "./common.js";

export const GROUP_SUFFIX = "/*";
const PARAM = "metrics";

// Entries of the picker: plain keys, and one entry per prefix that two or more keys share.
export function pickerEntries(keys) {
  const byPrefix = new Map();
  for (const key of keys) {
    const cut = key.lastIndexOf("/");
    if (cut > 0) byPrefix.set(key.slice(0, cut), [...(byPrefix.get(key.slice(0, cut)) ?? []), key]);
  }
  const entries = new Map();
  for (const key of keys) {
    const cut = key.lastIndexOf("/");
    const members = cut > 0 ? byPrefix.get(key.slice(0, cut)) : [key];
    const value = members.length > 1 ? key.slice(0, cut) + GROUP_SUFFIX : key;
    entries.set(value, { value, members });
  }
  return [...entries.values()].sort((a, b) => a.value.localeCompare(b.value));
}

// The keys an entry draws (a group: its members now; a key: itself); an entry the runs never logged draws nothing.
export function entryKeys(entries, value) {
  return entries.find((entry) => entry.value === value)?.members ?? [];
}

// Name of a trace within an entry's chart: a group's member by its last part (the layer).
export function memberName(value, key) {
  return value.endsWith(GROUP_SUFFIX) ? key.slice(value.length - 1) : key;
}

// Wires the picker: `readKeys()` resolves to the metric-keys answer; `onchange(picked, entries)` draws the charts
// after each pick or removal.
export async function initPicker({ url, readKeys, onchange }) {
  const input = document.getElementById("metric-pick");
  const list = document.getElementById("metric-keys");
  const message = document.getElementById("metric-message");
  let entries = pickerEntries((await readKeys()).map((row) => row.key));
  let picked = (url.searchParams.get(PARAM) || "").split(",").filter(Boolean);
  const fill = () => list.replaceChildren(...entries.map((entry) => el("option", {
    value: entry.value, label: entry.members.length > 1 ? `${entry.members.length} keys` : "" })));
  const save = () => {
    if (picked.length) url.searchParams.set(PARAM, picked.join(","));
    else url.searchParams.delete(PARAM);
    history.replaceState(null, "", url.href);
  };
  const add = () => {
    const value = input.value.trim();
    if (!value) return;
    if (!entries.some((entry) => entry.value === value)) {
      message.textContent = `No metric "${value}": pick one of the ${entries.length} listed (type to search).`;
      return;
    }
    message.textContent = "";
    input.value = "";
    if (!picked.includes(value)) picked = [...picked, value];
    save();
    onchange(picked, entries);
  };
  fill();
  input.addEventListener("change", add);
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); add(); } });
  document.getElementById("metric-add").addEventListener("click", add);
  const unknown = picked.filter((value) => !entries.some((entry) => entry.value === value));
  message.textContent = unknown.length ? `Not logged by these runs: ${unknown.join(", ")}.` : "";
  return { // the page draws the picked charts once it holds this (the URL's picks included)
    remove(value) { picked = picked.filter((other) => other !== value); save(); onchange(picked, entries); },
    async refresh() { entries = pickerEntries((await readKeys()).map((row) => row.key)); fill(); return entries; },
    picked: () => picked,
    entries: () => entries,
  };
}

// One chart box per picked entry under #picked-charts (created or reused), each with a button that unpicks it.
export function chartBoxes(picked, remove) {
  const container = document.getElementById("picked-charts");
  const boxes = new Map([...container.children].map((box) => [box.dataset.metric, box]));
  const wanted = picked.map((value, index) => {
    const box = boxes.get(value) ?? el("div", { class: "picked", "data-metric": value },
      el("button", { type: "button", class: "secondary", text: "×", "aria-label": `remove the chart of ${value}`,
        onclick: () => remove(value) }),
      el("div", { id: `chart-picked-${index}-${Date.now()}`, class: "chart", "data-metric": value }));
    return box;
  });
  container.replaceChildren(...wanted);
  return wanted.map((box) => ({ value: box.dataset.metric, node: box.querySelector(".chart") }));
}
