// LLM planner: serving metrics of one deployment on several devices, the Pareto front
// over concurrency, and breakdowns by phase (system view) or by selected layer group.
"use strict";

(() => {
  const P = perfcast;
  const $ = (id) => document.getElementById(id);
  const state = { estimates: [], selectedLayers: new Set(), sweepToken: 0, estimateToken: 0 };
  const DEFAULT_MODEL = "llama-3.1-8b";
  const DEFAULT_HARDWARE = ["h100-sxm", "h200"];
  const PHASES = [["prefill", "prefill"], ["decode_step", "decode step"]];
  const PARTS = [["compute_s", "compute"], ["memory_s", "memory"],
    ["communication_s", "communication"], ["overhead_s", "overhead"]];

  function deployment() {
    return {
      model: $("model").value,
      precision: $("precision").value,
      engine: $("engine").value,
      tp: P.intValue("tp"), pp: P.intValue("pp"), ep: P.intValue("ep"), dp: P.intValue("dp"),
      dp_attention: $("dp_attention").checked,
      isl: P.intValue("isl"), osl: P.intValue("osl"),
    };
  }

  // -- serving metrics, side by side ------------------------------------------------------
  // [label, format, shown only for a deployment that fits in memory]
  const METRICS = [
    ["TTFT", (e) => P.si(e.ttft_s, "s"), true],
    ["TPOT", (e) => P.si(e.tpot_s, "s"), true],
    ["end-to-end latency", (e) => P.si(e.e2el_s, "s"), true],
    ["interactivity (tok/s/user)", (e) => P.num(e.interactivity), true],
    ["throughput per GPU (tok/s)", (e) => P.num(e.throughput_per_gpu), true],
    ["output throughput per GPU (tok/s)", (e) => P.num(e.output_throughput_per_gpu), true],
    ["GPUs", (e) => e.parallelism.gpus, false],
    ["memory per GPU", (e) => `${P.si(e.memory_bytes.total, "B")} of ` +
      P.si(e.memory_bytes.capacity, "B"), false],
    ["largest feasible concurrency", (e) => P.num(e.max_concurrency, 0), false],
    ["cost per 1M tokens", (e) => P.usd(e.cost_per_million_tokens_usd), true],
    ["confidence", (e) => e.confidence, false],
    ["kernel times", (e) => kernelTimes(e), false],
  ];

  // which model timed the kernels, and the share of decode kernel time per confidence
  function kernelTimes(e) {
    if (!e.profile) return "fitted efficiencies";
    const shares = (e.phases.decode_step || {}).share_by_confidence || {};
    const text = Object.entries(shares).map(([k, v]) => `${k} ${P.pct(v, 0)}`).join(", ");
    return `${e.profile}` + (text ? ` (decode: ${text})` : "");
  }

  function renderMetrics(estimates) {
    const head = P.el("tr", {}, P.el("th", {}, "metric"),
      estimates.map((e) => P.el("th", { class: "num" }, e.hardware)));
    const rows = METRICS.map(([label, fmt, needsFit]) => P.el("tr", {}, P.el("td", {}, label),
      estimates.map((e) => {
        const missing = needsFit && !e.feasible;
        return P.el("td", {
          class: "num" + (missing ? " bad" : ""),
          "data-metric": label, "data-hardware": e.hardware,
        }, missing ? "does not fit" : fmt(e));
      })));
    const notes = estimates.filter((e) => !e.feasible).map((e) =>
      P.el("p", { class: "error" }, `${e.hardware}: ${e.infeasible_reason}`));
    $("metrics").replaceChildren(P.el("table", {}, P.el("thead", {}, head),
      P.el("tbody", {}, rows)), ...notes);
  }

  // -- system view: phases and memory ----------------------------------------------------
  function renderPhases(estimates) {
    const x = [[], []];
    for (const e of estimates) {
      for (const [, label] of PHASES) {
        x[0].push(e.hardware);
        x[1].push(label);
      }
    }
    const traces = PARTS.map(([key, label]) => ({
      type: "bar", name: label, x,
      // an estimate that does not fit in memory has no phases: no bar
      y: estimates.flatMap((e) => PHASES.map(([phase]) => (e.phases[phase] || {})[key] ?? null)),
      hovertemplate: `${label}: %{y:.3s}s<extra></extra>`,
    }));
    P.plot($("phases"), traces, {
      barmode: "stack", title: { text: "Time per phase (one prefill, one decode step)" },
      yaxis: { title: { text: "seconds" }, tickformat: "~s", ticksuffix: "s" },
      legend: { orientation: "h", y: -0.3 },
    });
  }

  function renderMemory(estimates) {
    const parts = [["weights", "weights"], ["kv_cache", "KV cache"],
      ["activations", "activations"], ["reserve", "reserve"]];
    const x = estimates.map((e) => e.hardware);
    const traces = parts.map(([key, label]) => ({
      type: "bar", name: label, x, y: estimates.map((e) => e.memory_bytes[key]),
      hovertemplate: `${label}: %{y:.3s}B<extra></extra>`,
    }));
    traces.push({
      type: "scatter", mode: "markers", name: "capacity", x,
      y: estimates.map((e) => e.memory_bytes.capacity),
      marker: { symbol: "line-ew-open", size: 40, line: { width: 3, color: "#c92a2a" } },
      hovertemplate: "capacity: %{y:.3s}B<extra></extra>",
    });
    P.plot($("memory"), traces, {
      barmode: "stack", title: { text: "Memory per GPU" },
      yaxis: { title: { text: "bytes" }, tickformat: "~s", ticksuffix: "B" },
      legend: { orientation: "h", y: -0.3 },
    });
  }

  // -- per-layer table and layer view ----------------------------------------------------
  function layerGroups(estimates) {
    const groups = new Map();
    for (const e of estimates) {
      for (const row of e.layers) {
        if (!groups.has(row.layer)) groups.set(row.layer, { layer: row.layer, parts: new Set() });
        const g = groups.get(row.layer);
        if (row.time_s > 0) g.parts.add(row.part);
        const key = `${e.hardware}|${row.phase}`;
        g[key] = (g[key] || 0) + row.time_s;
      }
    }
    return [...groups.values()];
  }

  function renderLayerTable(estimates) {
    const groups = layerGroups(estimates);
    const known = new Set(groups.map((g) => g.layer));
    for (const name of [...state.selectedLayers]) {
      if (!known.has(name)) state.selectedLayers.delete(name);
    }
    const columns = [
      { key: "layer", label: "layer group" },
      { key: "parts", label: "parts", format: (v) => [...v].join(", ") },
    ];
    for (const e of estimates) {
      for (const [phase, label] of PHASES) {
        columns.push({ key: `${e.hardware}|${phase}`, label: `${e.hardware} ${label}`, num: true,
          format: (v) => P.si(v, "s") });
      }
    }
    P.table($("layers"), columns, groups, {
      select: { key: (g) => g.layer, selected: state.selectedLayers, onChange: renderView },
    });
  }

  // One bar per (device, phase), stacked by (layer group, part) of the selected groups.
  function renderLayerView(estimates) {
    const x = [[], []];
    for (const e of estimates) {
      for (const [, label] of PHASES) {
        x[0].push(e.hardware);
        x[1].push(label);
      }
    }
    const pieces = [];
    for (const layer of state.selectedLayers) {
      const parts = new Set(estimates.flatMap((e) => e.layers
        .filter((r) => r.layer === layer).map((r) => r.part)));
      for (const part of parts) pieces.push([layer, part]);
    }
    const traces = pieces.map(([layer, part]) => ({
      type: "bar", name: `${layer}: ${part}`, x,
      y: estimates.flatMap((e) => PHASES.map(([phase]) => e.layers
        .filter((r) => r.layer === layer && r.phase === phase && r.part === part)
        .reduce((sum, r) => sum + r.time_s, 0))),
      hovertemplate: `${layer}: ${part} %{y:.3s}s<extra></extra>`,
    }));
    P.plot($("layer-plot"), traces, {
      barmode: "stack", title: { text: "Time of the selected layer groups, by part" },
      yaxis: { title: { text: "seconds" }, tickformat: "~s", ticksuffix: "s" },
      legend: { orientation: "h", y: -0.25 },
    });
  }

  // The layer view is open exactly while some layer is selected.
  function renderView() {
    const layerMode = state.selectedLayers.size > 0;
    $("system-view").hidden = layerMode;
    $("layer-view").hidden = !layerMode;
    $("view-title").textContent = layerMode ? "Layer view" : "System view";
    $("view-hint").textContent = layerMode
      ? `${[...state.selectedLayers].join(", ")}; clear the selection to return to the ` +
        "system view"
      : "select layer groups in the table below to see them";
    document.body.dataset.view = layerMode ? "layer" : "system";
    const estimates = state.estimates;
    if (!estimates.length) return;
    if (layerMode) {
      renderLayerView(estimates);
    } else {
      renderPhases(estimates);
      renderMemory(estimates);
    }
  }

  // -- Pareto front ------------------------------------------------------------------------
  function renderPareto(rows, current) {
    const groups = new Map();
    for (const r of rows) {
      const key = `${r.hardware} ${r.precision}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(r);
    }
    const traces = [...groups.entries()].map(([name, pts]) => {
      pts.sort((a, b) => a.interactivity - b.interactivity);
      return {
        type: "scatter", mode: "lines+markers", name,
        x: pts.map((r) => r.interactivity), y: pts.map((r) => r.throughput_per_gpu),
        customdata: pts.map((r) => [r.concurrency, r.ttft_s, r.tpot_s]),
        hovertemplate: "concurrency %{customdata[0]}<br>%{x:.1f} tok/s/user<br>" +
          "%{y:.0f} tok/s/GPU<br>TTFT %{customdata[1]:.3s}s, TPOT %{customdata[2]:.3s}s" +
          "<extra>%{fullData.name}</extra>",
      };
    });
    const feasible = current.filter((e) => e.feasible);
    traces.push({
      type: "scatter", mode: "markers+text", name: "current concurrency",
      x: feasible.map((e) => e.interactivity), y: feasible.map((e) => e.throughput_per_gpu),
      text: feasible.map((e) => `c=${e.workload.concurrency}`), textposition: "top center",
      marker: { symbol: "star", size: 14, color: "#000" },
      hovertemplate: "%{text}: %{x:.1f} tok/s/user, %{y:.0f} tok/s/GPU<extra></extra>",
    });
    P.plot($("pareto"), traces, {
      title: { text: "Throughput per GPU vs interactivity" },
      xaxis: { title: { text: "interactivity (tok/s/user)" }, rangemode: "tozero" },
      yaxis: { title: { text: "throughput per GPU (tok/s)" }, rangemode: "tozero" },
      annotations: rows.length ? [] : [{ text: "no configuration fits in memory",
        xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false }],
    });
  }

  async function updateSweep() {
    const token = ++state.sweepToken;
    $("sweep-status").textContent = "sweeping…";
    await P.guard(async () => {
      const d = deployment();
      const body = {
        model: d.model, hardware: P.ticked("hardware"), precision: [d.precision],
        tp: [d.tp], pp: [d.pp], ep: [d.ep], dp_attention: d.dp_attention ? "on" : "off",
        isl: [d.isl], osl: [d.osl], engine: d.engine,
      };
      const job = await P.api("/api/llm/sweep", { method: "POST", body });
      const result = await P.waitJob(job.job_id, (j) => {
        if (token === state.sweepToken && j.progress !== undefined && j.progress !== null) {
          $("sweep-status").textContent = `sweeping… ${P.pct(j.progress, 0)}`;
        }
      });
      if (token !== state.sweepToken) return;
      state.sweepRows = result.rows;
      $("sweep-status").textContent = `${result.evaluated} configurations, ` +
        `${result.infeasible} do not fit`;
      renderPareto(state.sweepRows, state.estimates);
    }, "sweep");
  }

  async function updateEstimates() {
    const token = ++state.estimateToken;
    await P.guard(async () => {
      const d = deployment();
      const concurrency = P.intValue("concurrency");
      const devices = P.ticked("hardware");
      const settled = await Promise.allSettled(devices.map((hardware) =>
        P.api("/api/llm/estimate", { method: "POST", body: { ...d, hardware, concurrency } })));
      if (token !== state.estimateToken) return;
      const failed = settled.map((s, i) => (s.status === "rejected"
        ? `${devices[i]}: ${s.reason.message}` : null)).filter((m) => m !== null);
      const estimates = settled.filter((s) => s.status === "fulfilled").map((s) => s.value);
      if (!estimates.length) throw new Error(failed.join("\n"));
      state.estimates = estimates;
      renderMetrics(estimates);
      renderLayerTable(estimates);
      renderView();
      if (state.sweepRows) renderPareto(state.sweepRows, estimates);
      if (failed.length) throw new Error(failed.join("\n"));
    }, "estimate");
  }

  function describeModel() {
    const m = state.models.find((x) => x.name === $("model").value);
    if (!m) return;
    const params = m.params ? `${P.si(m.params)} parameters` : "";
    const active = m.active_params && m.active_params !== m.params
      ? `, ${P.si(m.active_params)} active` : "";
    $("model-facts").textContent = `${m.display_name}: ${params}${active}, ${m.layers} layers, ` +
      `${m.attention}${m.experts ? ", experts " + m.experts : ""}`;
  }

  async function init() {
    await P.guard(async () => {
      const [models, hardware] = await Promise.all([P.api("/api/llm/models"),
        P.api("/api/hardware")]);
      state.models = models;
      P.options($("model"), models, { value: (m) => m.name, label: (m) => m.name,
        selected: DEFAULT_MODEL });
      const devices = hardware.filter((h) => h.kind !== "cpu");
      $("hardware").replaceChildren(...devices.map((h) => P.el("label", {},
        P.el("input", { type: "checkbox", name: "hardware", value: h.name,
          checked: DEFAULT_HARDWARE.includes(h.name) }), h.name)));
      P.applyQuery();
      if (!document.querySelector("#hardware input:checked")) {
        document.querySelector("#hardware input").checked = true;
      }
      describeModel();
    });
    const onEstimateInput = P.debounce(updateEstimates, 200);
    const onAnyInput = P.debounce(() => {
      updateEstimates();
      updateSweep();
    }, 250);
    for (const id of ["model", "precision", "engine", "tp", "pp", "ep", "dp", "dp_attention", "isl", "osl"]) {
      $(id).addEventListener("change", onAnyInput);
    }
    $("model").addEventListener("change", describeModel);
    $("hardware").addEventListener("change", onAnyInput);
    $("concurrency").addEventListener("change", onEstimateInput);
    await Promise.all([updateEstimates(), updateSweep()]);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
