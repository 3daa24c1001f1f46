// A form generated from the RunSpec JSON schema in /openapi.json: fields other engineers add to the
// spec appear without changes here. Grouping comes from each field's `group` (json_schema_extra).

import { el } from "./common.js";

// What a JSON field holds while its text does not parse (the field shows why).
const NOT_JSON = Symbol("not JSON");

export const GROUPS = [
  ["data/model", "Data and model"], ["engine", "Engine"], ["training", "Training"], ["schedule", "Schedule"],
  ["structure", "Structure"], ["recipe", "Recipe"], ["compress", "Compress after pruning"], ["export", "Export"],
];

const fieldId = (path) => `f-${path.replaceAll(".", "-")}`;

export class SchemaForm {
  constructor(schemas, catalog) {
    this.schemas = schemas; // components.schemas of /openapi.json
    this.catalog = catalog; // {dataset: [...names], model: [...names]}
    this.readers = new Map(); // path -> () => value
    this.onchange = () => {};
  }

  resolve(schema) {
    while (schema && schema.$ref) schema = this.schemas[schema.$ref.split("/").pop()];
    return schema;
  }

  // <fieldset> per group, in the product's order, then any group nobody has named yet.
  render(container, values) {
    this.readers.clear();
    const spec = this.resolve({ $ref: "#/components/schemas/RunSpec" });
    const grouped = new Map();
    for (const [name, schema] of Object.entries(spec.properties)) {
      const group = schema.group || "other";
      if (!grouped.has(group)) grouped.set(group, []);
      grouped.get(group).push([name, schema]);
    }
    const order = [...GROUPS.map(([key]) => key), ...[...grouped.keys()].filter((k) => !GROUPS.some(([g]) => g === k))];
    const fieldsets = order.filter((group) => grouped.has(group)).map((group) => {
      const title = GROUPS.find(([key]) => key === group)?.[1] || group[0].toUpperCase() + group.slice(1);
      const box = el("div", { class: "fields" });
      for (const [name, schema] of grouped.get(group)) this.field(box, name, schema, values?.[name], spec.required);
      return el("fieldset", { "data-group": group }, el("legend", { text: title }), box);
    });
    container.replaceChildren(...fieldsets);
  }

  field(box, path, schema, value, required = []) {
    const name = path.split(".").pop();
    if (schema.discriminator || schema.oneOf) return this.union(box, path, schema, value);
    const nullable = schema.anyOf?.some((option) => option.type === "null");
    const inner = nullable ? this.resolve(schema.anyOf.find((option) => option.type !== "null")) : this.resolve(schema);
    if (inner.type === "object" && inner.properties) {
      for (const [child, childSchema] of Object.entries(inner.properties)) {
        this.field(box, `${path}.${child}`, childSchema, value?.[child], inner.required);
      }
      return;
    }
    const current = value !== undefined ? value : schema.default ?? inner.default;
    const id = fieldId(path);
    const title = schema.title || inner.title || name;
    const help = schema.description || inner.description;
    const choices = inner.enum || (path in this.catalog ? this.catalog[path] : null);
    let input;
    if (choices) {
      // A nullable choice (backend) offers its null as an empty option, read back as null.
      const blank = nullable ? [el("option", { value: "", text: "(default)", selected: current === null || current === undefined })] : [];
      input = el("select", { id, name: path }, ...blank, ...choices.map((choice) =>
        el("option", { value: choice, text: choice, selected: choice === current })));
    } else if (inner.type === "boolean") {
      input = el("input", { id, name: path, type: "checkbox", checked: Boolean(current) });
    } else if (this.isStructured(inner)) {
      // Maps ({layer: sparsity}) and lists of pairs ([[step, sparsity], ...]) are typed as JSON.
      input = el("input", {
        id, name: path, type: "text", "data-json": "true", spellcheck: "false",
        value: current === null || current === undefined ? "" : JSON.stringify(current),
        placeholder: inner.type === "object" ? '{"dense": 0.9}' : inner.items?.oneOf
          ? '[{"kind": "cluster", "number_of_clusters": 16}, {"kind": "qat", "scheme": "pcqat"}, {"kind": "tflite_int8"}]'
          : "[[0, 0.0], [1.0, 0.8]]",
      });
    } else {
      const numeric = inner.type === "integer" || inner.type === "number";
      input = el("input", {
        id, name: path, type: numeric ? "number" : "text",
        step: inner.type === "integer" ? "1" : numeric ? "any" : null,
        min: inner.minimum, max: inner.maximum, maxlength: inner.maxLength,
        value: current === null || current === undefined ? "" : Array.isArray(current) ? current.join(", ") : current,
        inputmode: numeric ? "decimal" : null,
        placeholder: inner.type === "array" ? "comma-separated" : null,
      });
    }
    input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
    input.addEventListener("input", () => { this.validateField(path); this.onchange(); });
    const label = el("label", { for: id, text: title });
    const wrap = el("div", { class: "field", "data-field": path }, label, input,
      el("small", { id: `${id}-help`, text: help || "" }),
      el("span", { class: "error", id: `${id}-error`, "aria-live": "polite" }));
    box.append(wrap);
    this.readers.set(path, { read: () => this.readInput(input, inner, nullable), schema: inner, nullable, required: required?.includes(name) });
  }

  // A discriminated union (the schedule): a kind selector and the chosen variant's fields.
  union(box, path, schema, value) {
    const options = (schema.oneOf || schema.anyOf).map((option) => this.resolve(option));
    const tag = schema.discriminator?.propertyName || "kind";
    const kinds = options.map((option) => option.properties[tag].const ?? option.properties[tag].default);
    const id = fieldId(`${path}.${tag}`);
    const select = el("select", { id, name: `${path}.${tag}`, "aria-describedby": `${id}-help` },
      ...kinds.map((kind, index) => el("option", { value: kind, text: `${kind} (${options[index].title})`, selected: kind === value?.[tag] })));
    const variant = el("div", { class: "fields", style: "grid-column: 1 / -1" });
    const describe = el("small", { id: `${id}-help` });
    const show = (kind, values) => {
      const option = options[kinds.indexOf(kind)];
      describe.textContent = option.description || "";
      for (const key of [...this.readers.keys()]) if (key.startsWith(`${path}.`) && key !== `${path}.${tag}`) this.readers.delete(key);
      variant.replaceChildren();
      for (const [child, childSchema] of Object.entries(option.properties)) {
        if (child !== tag) this.field(variant, `${path}.${child}`, childSchema, values?.[child], option.required);
      }
    };
    select.addEventListener("change", () => {
      const kept = this.read(path) || {}; // shared fields (begin_step, frequency...) keep their values
      show(select.value, kept);
      this.onchange();
    });
    box.append(el("div", { class: "field", "data-field": `${path}.${tag}` },
      el("label", { for: id, text: `${schema.title || path} kind` }), select, describe), variant);
    this.readers.set(`${path}.${tag}`, { read: () => select.value, schema: { type: "string" } });
    show(select.value || kinds[0], value);
  }

  // An object without fixed properties, or an array of arrays/objects: edited as JSON text.
  isStructured(schema) {
    if (schema.type === "object") return !schema.properties;
    if (schema.type !== "array") return false;
    if (schema.items?.oneOf || schema.items?.discriminator) return true; // a list of tagged objects (compress stages)
    const itemType = this.resolve(schema.items || {})?.type;
    return itemType === "array" || itemType === "object";
  }

  readInput(input, schema, nullable) {
    if (input.type === "checkbox") return input.checked;
    const raw = input.value.trim();
    if (raw === "") return nullable ? null : schema.type === "string" ? "" : undefined;
    if (input.dataset.json) {
      try { return JSON.parse(raw); } catch { return NOT_JSON; }
    }
    if (schema.type === "integer" || schema.type === "number") return Number(raw);
    if (schema.type === "array") {
      // Tuples (block_size) type each position in prefixItems; lists type their items.
      const itemTypes = (schema.prefixItems || []).map((item) => this.resolve(item)?.type);
      const itemType = this.resolve(schema.items || {})?.type;
      return raw.split(",").map((part) => part.trim()).filter(Boolean).map((part, index) => {
        const type = itemTypes[index] ?? itemType;
        return type === "number" || type === "integer" ? Number(part) : part;
      });
    }
    return raw;
  }

  // The spec as JSON (or the sub-object under `prefix`), nesting dotted paths.
  read(prefix = "") {
    const spec = {};
    for (const [path, reader] of this.readers) {
      if (prefix && !path.startsWith(`${prefix}.`)) continue;
      const value = reader.read();
      if (value === undefined) continue;
      const parts = (prefix ? path.slice(prefix.length + 1) : path).split(".");
      let node = spec;
      for (const part of parts.slice(0, -1)) node = node[part] ??= {};
      node[parts.at(-1)] = value;
    }
    return spec;
  }

  // Client-side checks from the schema; the server has the last word (its messages replace these).
  validateField(path) {
    const reader = this.readers.get(path);
    if (!reader) return true;
    const value = reader.read();
    const schema = reader.schema;
    let message = "";
    if (value === undefined && schema.type !== "string") message = "a value is required";
    else if (value === NOT_JSON) message = schema.type === "object" ? 'must be JSON, e.g. {"dense": 0.9}' : "must be JSON, e.g. [[0, 0.0], [1.0, 0.8]]";
    else if (typeof value === "number") {
      if (Number.isNaN(value)) message = "must be a number";
      else if (schema.type === "integer" && !Number.isInteger(value)) message = "must be a whole number";
      else if (schema.minimum !== undefined && value < schema.minimum) message = `must be ≥ ${schema.minimum}`;
      else if (schema.maximum !== undefined && value > schema.maximum) message = `must be ≤ ${schema.maximum}`;
      else if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) message = `must be > ${schema.exclusiveMinimum}`;
      else if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) message = `must be < ${schema.exclusiveMaximum}`;
    } else if (typeof value === "string" && schema.maxLength && value.length > schema.maxLength) {
      message = `at most ${schema.maxLength} characters`;
    }
    this.setError(path, message);
    return !message;
  }

  validate() {
    return [...this.readers.keys()].map((path) => this.validateField(path)).every(Boolean);
  }

  setError(path, message) {
    const wrap = document.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (!wrap) return false;
    wrap.classList.toggle("invalid", Boolean(message));
    const input = wrap.querySelector("input, select");
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
    const slot = wrap.querySelector(".error");
    if (slot) slot.textContent = message;
    return true;
  }

  // Drop the server's messages; the browser's own checks (a value required, bad JSON) stay shown.
  clearErrors() {
    for (const path of this.readers.keys()) this.validateField(path);
  }

  // Server 422 `detail`: each message goes next to the field it names; returns the messages no field took.
  showServerErrors(detail) {
    const orphans = [];
    for (const item of Array.isArray(detail) ? detail : [{ field: "", msg: String(detail) }]) {
      if (!this.setError(item.field, item.msg)) orphans.push(item.field ? `${item.field}: ${item.msg}` : item.msg);
    }
    return orphans;
  }

  focusFirstError() {
    document.querySelector(".field.invalid input, .field.invalid select")?.focus();
  }
}
