// Shared helpers of the perfcast dashboard: API calls, number formatting, tables, plots.
// Every figure a page shows comes from the API; these helpers only format and lay out.
// A server started with a token is opened once as /?token=...: it answers with a cookie
// that the browser then sends with every page, asset and API call.
"use strict";

const perfcast = (() => {
  // GET (or POST with a JSON body, or a FormData upload) and return the decoded JSON.
  async function api(path, { method = "GET", body = undefined } = {}) {
    const headers = {};
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      throw new Error(`${method} ${path}: the server answered ${response.status} with non-JSON`);
    }
    if (!response.ok) {
      const why = data && data.reason ? data.reason : `the server answered ${response.status}`;
      throw new Error(data && data.field ? `${data.field}: ${why}` : why);
    }
    return data;
  }

  // Poll a background job until it is done; onProgress gets the job object each time.
  async function waitJob(jobId, onProgress, intervalMs = 250) {
    for (;;) {
      const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
      if (onProgress) onProgress(job);
      if (job.status === "done") return job.result;
      if (job.status === "failed") {
        const e = job.error || {};
        throw new Error(`job ${job.kind}: ${e.field ? e.field + ": " : ""}${e.reason || "failed"}`);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  const PREFIXES = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""],
    [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];

  // 3 significant digits with an SI prefix: si(0.0123, "s") -> "12.3 ms".
  function si(value, unit = "") {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
    if (value === 0) return `0 ${unit}`.trim();
    const abs = Math.abs(value);
    const [scale, prefix] = PREFIXES.find(([s]) => abs >= s) || PREFIXES[PREFIXES.length - 1];
    return `${(value / scale).toPrecision(3)} ${prefix}${unit}`.trim();
  }

  // Binary prefixes for sizes that come in powers of two (caches): 32 KiB, 1 MiB.
  function binary(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let i = 0;
    while (Math.abs(value) >= 1024 && i < units.length - 1) {
      value /= 1024;
      i += 1;
    }
    return `${Number(value.toPrecision(3))} ${units[i]}`;
  }

  function num(value, digits = 1) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return Number(value).toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
  }

  function pct(value, digits = 1) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return `${(100 * value).toFixed(digits)} %`;
  }

  function usd(value) {
    return value === null || value === undefined ? "–" : `$${Number(value).toFixed(3)}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(key, value === true ? "" : value);
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // columns: [{key, label, format?(value,row), num?: bool, clip?: bool}]; rows: objects.
  // A clipped column cuts long text with an ellipsis and shows it whole on hover.
  // options.select: {key(row) -> id, selected: Set, onChange(Set)} adds a checkbox column.
  function table(container, columns, rows, options = {}) {
    const select = options.select;
    const head = el("tr", {},
      select ? el("th", { class: "check" }) : null,
      columns.map((c) => el("th", { class: c.num ? "num" : "" }, c.label)));
    const body = rows.map((row) => {
      const cells = columns.map((c) => {
        const value = row[c.key];
        const text = c.format ? c.format(value, row) : value;
        const cls = c.num ? "num" : c.clip ? "clip" : "";
        return el("td", { class: cls, title: c.clip ? text : null }, text);
      });
      if (!select) return el("tr", {}, cells);
      const id = select.key(row);
      const box = el("input", { type: "checkbox", "data-id": id, "aria-label": "select " + id });
      box.checked = select.selected.has(id);
      const tr = el("tr", { class: box.checked ? "selected" : "" },
        el("td", { class: "check" }, box), cells);
      box.addEventListener("change", () => {
        if (box.checked) select.selected.add(id); else select.selected.delete(id);
        tr.classList.toggle("selected", box.checked);
        select.onChange(select.selected);
      });
      tr.addEventListener("click", (event) => {
        if (event.target !== box) box.click();
      });
      return tr;
    });
    container.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
  }

  // Key-value cards: [[label, value, note?], ...]
  function cards(container, items) {
    container.replaceChildren(...items.map(([label, value, note]) =>
      el("div", { class: "card" },
        el("div", { class: "label" }, label),
        el("div", { class: "value", "data-metric": label }, value),
        note ? el("div", { class: "note" }, note) : null)));
  }

  const COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#e67700",
    "#5f3dc4", "#364fc7", "#a61e4d"];

  function plot(container, traces, layout = {}) {
    const base = {
      margin: { l: 64, r: 16, t: 36, b: 52 },
      font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12 },
      colorway: COLORS,
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      legend: { orientation: "h", y: -0.2 },
      hoverlabel: { namelength: -1 },
    };
    const merged = { ...base, ...layout };
    return Plotly.react(container, traces, merged, { displaylogo: false, responsive: true });
  }

  // Busy state shown to people, and read by the browser tests: body[data-busy] counts
  // the updates in flight, body[data-updates] the updates finished so far.
  let busy = 0;
  let updates = 0;
  function setBusy(delta) {
    busy = Math.max(0, busy + delta);
    if (delta < 0) updates += 1;
    document.body.dataset.busy = String(busy);
    document.body.dataset.updates = String(updates);
  }

  // The error banner shows the latest failure of each kind of update (a failed sweep
  // does not hide a failed estimate); a successful update clears its own.
  const errors = new Map();
  function showError(message, key = "page") {
    if (message) errors.set(key, message); else errors.delete(key);
    const box = document.getElementById("error");
    if (!box) return;
    box.textContent = [...errors.values()].join("\n");
    box.hidden = errors.size === 0;
  }

  // Run an async page update with the busy flag and error banner handled.
  async function guard(work, key = "page") {
    setBusy(1);
    try {
      const out = await work();
      showError("", key);
      return out;
    } catch (err) {
      showError(err.message || String(err), key);
      return undefined;
    } finally {
      setBusy(-1);
    }
  }

  function options(selectEl, items, { value = (x) => x, label = (x) => x, selected } = {}) {
    selectEl.replaceChildren(...items.map((item) => {
      const opt = el("option", { value: value(item) }, label(item));
      if (selected !== undefined && value(item) === selected) opt.selected = true;
      return opt;
    }));
  }

  // The value of a whole-number input of at least 1, or an error naming it.
  function intValue(id) {
    const raw = document.getElementById(id).value;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${id}: enter a whole number of at least 1 (got "${raw}")`);
    }
    return value;
  }

  // The values of the ticked boxes inside #id; an error naming it when none is ticked.
  function ticked(id) {
    const values = [...document.querySelectorAll(`#${id} input:checked`)].map((b) => b.value);
    if (!values.length) throw new Error(`${id}: tick at least one`);
    return values;
  }

  // Start a page from a link: ?model=gpt2&batch=4&hardware=h100-sxm,mi300x sets those
  // inputs (by id; "hardware" ticks exactly the listed boxes) before the first update.
  function applyQuery() {
    for (const [key, value] of new URLSearchParams(window.location.search)) {
      if (key === "hardware") {
        const wanted = new Set(value.split(","));
        for (const box of document.querySelectorAll("#hardware input[type=checkbox]")) {
          box.checked = wanted.has(box.value);
        }
        continue;
      }
      const input = document.getElementById(key);
      if (!input || !["INPUT", "SELECT"].includes(input.tagName) || input.type === "file") {
        continue;
      }
      if (input.type === "checkbox") input.checked = value === "true" || value === "1";
      else input.value = value;
    }
  }

  // A log axis over `values` with ticks at 1-2-5 (or only decades when the range is wide),
  // each labelled with an SI prefix and the unit: 100 µs, 200 µs, 500 µs, 1 ms... A range
  // too narrow for two such ticks keeps Plotly's own ticks, with SI labels.
  function logAxis(title, unit, values) {
    const positive = values.filter((v) => v > 0 && Number.isFinite(v));
    const axis = { type: "log", title: { text: title }, automargin: true, tickformat: "~s",
      ticksuffix: unit };
    if (!positive.length) return axis;
    const min = Math.min(...positive);
    const max = Math.max(...positive);
    const lo = Math.floor(Math.log10(min));
    const hi = Math.ceil(Math.log10(max));
    const steps = hi - lo > 2 ? [1] : [1, 2, 5];
    const ticks = [];
    for (let e = lo; e <= hi; e += 1) {
      for (const m of steps) ticks.push(m * 10 ** e);
    }
    if (ticks.filter((t) => t >= min && t <= max).length < 2) return axis;
    delete axis.tickformat;
    delete axis.ticksuffix;
    axis.tickvals = ticks;
    // si() keeps 3 digits ("2.00 ms"); a tick needs only its own ("2 ms")
    axis.ticktext = ticks.map((v) => si(v, unit).replace(/^(\d+)\.0+(?=\D|$)/, "$1"));
    return axis;
  }

  function debounce(fn, ms = 250) {
    let timer;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    const here = window.location.pathname;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.getAttribute("href") === here) link.classList.add("active");
    }
    setBusy(0);
  });

  return {
    api, waitJob, si, num, pct, usd, binary, el, table, cards, plot, guard, options, debounce,
    applyQuery, logAxis, intValue, ticked, showError, COLORS,
  };
})();
