// Model analysis: totals on several devices, a roofline with every kernel as a point, the
// per-layer table, and the time by category and bound (system view) or the kernels of
// the selected layers (layer view).
"use strict";

(() => {
  const P = perfcast;
  const $ = (id) => document.getElementById(id);
  const state = { results: [], selectedLayers: new Set(), token: 0 };
  const DEFAULT_MODEL = "gpt2";
  const DEFAULT_HARDWARE = ["h100-sxm", "mi300x"];
  const BOUND_COLORS = { compute: "#d9480f", memory: "#1f6feb", overhead: "#868e96" };

  function current() {
    return state.results.find((r) => r.hardware === $("roof-hw").value) || state.results[0];
  }

  function sumBy(items, key, value) {
    const out = new Map();
    for (const item of items) out.set(item[key], (out.get(item[key]) || 0) + item[value]);
    return out;
  }

  // -- totals ------------------------------------------------------------------------------
  const TOTALS = [
    ["time", (r) => P.si(r.totals.time_s, "s")],
    ["FLOPs", (r) => P.si(r.totals.flops, "FLOP")],
    ["bytes moved", (r) => P.si(r.totals.bytes, "B")],
    ["parameters", (r) => P.si(r.totals.params)],
    ["weights", (r) => P.si(r.totals.memory_bytes.weights, "B")],
    ["activations (peak)", (r) => P.si(r.totals.memory_bytes.activations_peak, "B")],
    ["energy", (r) => P.si(r.totals.energy_j, "J")],
    ["kernels", (r) => r.kernels.length],
    ["confidence", (r) => r.confidence],
  ];

  function renderTotals(results) {
    const first = results[0];
    $("totals-title").textContent = `${first.model}, ${first.dtype}, target ${first.target}`;
    const head = P.el("tr", {}, P.el("th", {}, ""),
      results.map((r) => P.el("th", { class: "num" }, r.hardware)));
    const rows = TOTALS.map(([label, fmt]) => P.el("tr", {}, P.el("td", {}, label),
      results.map((r) => P.el("td", { class: "num", "data-metric": label,
        "data-hardware": r.hardware }, fmt(r)))));
    const notes = results.flatMap((r) => r.notes.map((n) => P.el("p", { class: "muted" },
      `${r.hardware}: ${n}`)));
    $("totals").replaceChildren(P.el("table", {}, P.el("thead", {}, head),
      P.el("tbody", {}, rows)), ...notes);
  }

  // -- roofline ----------------------------------------------------------------------------
  function markerStyle(name, layerMode) {
    if (name === "other layers") return { size: 7, opacity: 0.3, color: "#adb5bd" };
    const style = { size: 8, opacity: 0.85 };
    if (!layerMode) style.color = BOUND_COLORS[name];
    return style;
  }

  function renderRoofline() {
    const r = current();
    const plotted = r.kernels.filter((k) => k.flops > 0 && k.bytes > 0);
    const skipped = r.kernels.length - plotted.length;
    $("roof-count").textContent = `${plotted.length} of ${r.kernels.length} kernels plotted` +
      (skipped ? ` (${skipped} move no FLOPs or no bytes)` : "");
    $("roofline").dataset.points = String(plotted.length);
    const layerMode = state.selectedLayers.size > 0;
    const groups = new Map();
    for (const k of plotted) {
      const key = layerMode ? (state.selectedLayers.has(k.layer) ? k.layer : "other layers")
        : k.bound;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(k);
    }
    const kernelTraces = [...groups.entries()].map(([name, ks]) => ({
      type: "scatter", mode: "markers", name,
      x: ks.map((k) => k.intensity), y: ks.map((k) => k.achieved_flops_per_s),
      text: ks.map((k) => k.name),
      customdata: ks.map((k) => [k.time_s, k.op, k.layer, k.bound]),
      marker: markerStyle(name, layerMode),
      hovertemplate: "%{text} (%{customdata[1]})<br>%{customdata[2]}<br>" +
        "%{x:.3g} FLOP/B, %{y:.3s}FLOP/s<br>%{customdata[0]:.3s}s, %{customdata[3]} bound" +
        "<extra></extra>",
    }));
    // One roof per ceiling pair the kernels report: min(peak, bandwidth x intensity).
    const ceilings = new Map();
    for (const k of plotted) ceilings.set(`${k.peak_flops}|${k.bandwidth_bytes_per_s}`, k);
    const ridges = [...ceilings.values()].map((k) => k.peak_flops / k.bandwidth_bytes_per_s);
    const xs = plotted.map((k) => k.intensity);
    const lo = Math.min(...xs, ...ridges) / 4;
    const hi = Math.max(...xs, ...ridges) * 4;
    const roofTraces = [...ceilings.values()].map((k) => {
      const ridge = k.peak_flops / k.bandwidth_bytes_per_s;
      return {
        type: "scatter", mode: "lines", name: `roof ${P.si(k.peak_flops, "FLOP/s")}`,
        x: [lo, ridge, hi], y: [k.bandwidth_bytes_per_s * lo, k.peak_flops, k.peak_flops],
        line: { color: "#495057", width: 1.5, dash: "dot" }, hoverinfo: "name",
      };
    });
    const ys = plotted.map((k) => k.achieved_flops_per_s)
      .concat([...ceilings.values()].map((k) => k.peak_flops));
    P.plot($("roofline"), [...roofTraces, ...kernelTraces], {
      title: { text: `${r.model} on ${r.hardware}` },
      xaxis: P.logAxis("arithmetic intensity (FLOP/byte)", "", [lo, hi]),
      yaxis: { ...P.logAxis("achieved rate (FLOP/s)", "", ys),
        range: [Math.log10(Math.min(...ys)) - 0.3, Math.log10(Math.max(...ys)) + 0.3] },
      legend: { orientation: "h", y: -0.22 },
    });
  }

  // -- per-layer table ---------------------------------------------------------------------
  function dominantBound(kernels) {
    const byBound = [...sumBy(kernels, "bound", "time_s").entries()].sort((a, b) => b[1] - a[1]);
    const total = byBound.reduce((s, [, t]) => s + t, 0);
    return byBound.length ? `${byBound[0][0]} ${P.pct(byBound[0][1] / total, 0)}` : "–";
  }

  function renderLayerTable() {
    const r = current();
    const known = new Set(r.layers.map((l) => l.layer));
    for (const name of [...state.selectedLayers]) {
      if (!known.has(name)) state.selectedLayers.delete(name);
    }
    const rows = r.layers.map((l) => ({
      ...l, share: l.time_s / r.totals.time_s,
      bound: dominantBound(r.kernels.filter((k) => k.layer === l.layer)),
    }));
    P.table($("layers"), [
      { key: "layer", label: "layer" },
      { key: "kernels", label: "kernels", num: true },
      { key: "time_s", label: "time", num: true, format: (v) => P.si(v, "s") },
      { key: "share", label: "share", num: true, format: (v) => P.pct(v) },
      { key: "flops", label: "FLOPs", num: true, format: (v) => P.si(v, "FLOP") },
      { key: "bytes", label: "bytes", num: true, format: (v) => P.si(v, "B") },
      { key: "bound", label: "bound (share of time)" },
    ], rows, {
      select: { key: (l) => l.layer, selected: state.selectedLayers, onChange: renderView },
    });
  }

  // -- system view / layer view ------------------------------------------------------------
  function stackedByHardware(container, key, title, colors) {
    const results = state.results;
    const names = [...new Set(results.flatMap((r) => r.kernels.map((k) => k[key])))];
    const traces = names.map((name) => ({
      type: "bar", name, x: results.map((r) => r.hardware),
      y: results.map((r) => sumBy(r.kernels, key, "time_s").get(name) || 0),
      ...(colors ? { marker: { color: colors[name] } } : {}),
      hovertemplate: `${name}: %{y:.3s}s<extra></extra>`,
    }));
    P.plot(container, traces, {
      barmode: "stack", title: { text: title },
      yaxis: { title: { text: "seconds" }, tickformat: "~s", ticksuffix: "s" },
      legend: { orientation: "h", y: -0.3 },
    });
  }

  function renderLayerKernels() {
    const r = current();
    const kernels = r.kernels.filter((k) => state.selectedLayers.has(k.layer))
      .sort((a, b) => b.time_s - a.time_s);
    const several = state.selectedLayers.size > 1;
    P.table($("layer-kernels"), [
      { key: "name", label: "kernel", clip: true },
      ...(several ? [{ key: "layer", label: "layer" }] : []),
      { key: "category", label: "category" },
      { key: "time_s", label: "time", num: true, format: (v) => P.si(v, "s") },
      { key: "intensity", label: "FLOP/B", num: true, format: (v) => P.num(v, 2) },
      { key: "achieved_flops_per_s", label: "achieved", num: true,
        format: (v) => P.si(v, "FLOP/s") },
      { key: "bound", label: "bound" },
    ], kernels);
  }

  // The layer view is open exactly while some layer is selected.
  function renderView() {
    const layerMode = state.selectedLayers.size > 0;
    $("system-view").hidden = layerMode;
    $("layer-view").hidden = !layerMode;
    document.body.dataset.view = layerMode ? "layer" : "system";
    $("view-title").textContent = layerMode ? "Layer view" : "System view";
    $("view-hint").textContent = layerMode
      ? `kernels of ${[...state.selectedLayers].join(", ")} on ${current().hardware}; clear ` +
        "the selection to return to the system view"
      : "tick layers in the table below to see their kernels";
    if (!state.results.length) return;
    if (layerMode) {
      renderLayerKernels();
    } else {
      stackedByHardware($("categories"), "category", "Time by kernel category");
      stackedByHardware($("bounds"), "bound", "Time by bound", BOUND_COLORS);
    }
    renderRoofline();
  }

  function show(results) {
    state.results = results;
    const keep = $("roof-hw").value;
    P.options($("roof-hw"), results.map((r) => r.hardware),
      { selected: results.some((r) => r.hardware === keep) ? keep : results[0].hardware });
    renderTotals(results);
    renderLayerTable();
    renderView();
  }

  async function analyze() {
    const token = ++state.token;
    await P.guard(async () => {
      const body = {
        model: $("model").value, hardware: P.ticked("hardware"), batch: P.intValue("batch"),
        seq_len: P.intValue("seq_len"), target: $("target").value,
      };
      if ($("dtype").value) body.dtype = $("dtype").value;
      const results = await P.api("/api/analyze", { method: "POST", body });
      if (token === state.token) show(results);
    });
  }

  async function analyzeOnnx() {
    const file = $("onnx").files[0];
    if (!file) return;
    const token = ++state.token;
    await P.guard(async () => {
      const form = new FormData();
      form.append("file", file);
      for (const h of P.ticked("hardware")) form.append("hardware", h);
      form.append("target", $("target").value);
      if ($("dtype").value) form.append("dtype", $("dtype").value);
      form.append("batch", String(P.intValue("batch")));
      if ($("onnx-dims").value.trim()) form.append("dims", $("onnx-dims").value.trim());
      const results = await P.api("/api/analyze/onnx", { method: "POST", body: form });
      if (token === state.token) show(results);
    });
  }

  // An uploaded ONNX file stays the subject until another example model is picked.
  function rerun() {
    return $("onnx").files.length ? analyzeOnnx() : analyze();
  }

  function describe() {
    const ex = state.examples.find((e) => e.name === $("model").value);
    $("model-description").textContent = ex ? `${ex.description} — ${ex.source}` : "";
  }

  async function init() {
    await P.guard(async () => {
      const [examples, hardware] = await Promise.all([P.api("/api/examples"),
        P.api("/api/hardware")]);
      state.examples = examples;
      P.options($("model"), examples, { value: (e) => e.name, label: (e) => e.name,
        selected: DEFAULT_MODEL });
      $("hardware").replaceChildren(...hardware.map((h) => P.el("label", {},
        P.el("input", { type: "checkbox", name: "hardware", value: h.name,
          checked: DEFAULT_HARDWARE.includes(h.name) }), h.name)));
      P.applyQuery();
      if (!document.querySelector("#hardware input:checked")) {
        document.querySelector("#hardware input").checked = true;
      }
      describe();
    });
    const later = P.debounce(rerun, 250);
    for (const id of ["dtype", "batch", "seq_len", "target", "hardware", "onnx-dims"]) {
      $(id).addEventListener("change", later);
    }
    $("model").addEventListener("change", () => {
      $("onnx").value = "";
      describe();
      later();
    });
    $("onnx").addEventListener("change", () => {
      if ($("onnx").files.length) {
        $("model-description").textContent = `uploaded ONNX file ${$("onnx").files[0].name}`;
      } else {
        describe();
      }
      later();
    });
    $("roof-hw").addEventListener("change", () => {
      renderLayerTable();
      renderView();
    });
    await analyze();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
