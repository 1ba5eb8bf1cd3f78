// Accuracy: predicted against measured, from the store's validation runs or from the
// published LLM serving results, with the error (APE) by category.
"use strict";

(() => {
  const P = perfcast;
  const $ = (id) => document.getElementById(id);
  const cache = {};

  // How each source's answer is read: its metrics and groupings, its rows as
  // (predicted, measured, ape) and the error summaries the API computed.
  const SOURCES = {
    store: {
      url: "/api/validation",
      metrics: () => [["time_s", "time per forward pass"]],
      groups: [["confidence", "confidence", "by_confidence"], ["model", "model", "by_model"]],
      rows: (data) => data.models.map((m) => ({
        label: `${m.model} (${Object.entries(m.params).map(([k, v]) => `${k}=${v}`).join(", ")})`,
        model: m.model, confidence: m.confidence || "–",
        predicted: m.predicted_s, measured: m.measured_s, ape: m.ape,
      })),
      overall: (data) => data,
      byGroup: (data, metric, key) => data[key],
      unit: "s",
    },
    llm: {
      url: "/api/validation/llm?rows=true",
      metrics: (data) => data.metrics.map((m) => [m, LLM_METRIC_LABELS[m] || m]),
      groups: [["hardware", "hardware", "by_hardware"], ["model", "model", "by_model"],
        ["framework", "framework", "by_framework"]],
      rows: (data, metric) => data.rows
        .filter((r) => r.status === "ok" && r.ape && typeof r.ape[metric] === "number")
        .map((r) => ({
          label: `${r.model} on ${r.hardware}, ${r.parallelism}, ${r.isl}/${r.osl}, ` +
            `c=${r.concurrency} (${r.framework})`,
          model: r.model, hardware: r.hardware, framework: r.framework,
          predicted: r.predicted[metric], measured: r.measured[metric], ape: r.ape[metric],
        })),
      overall: (data, metric) => data.summary.overall[metric],
      byGroup: (data, metric, key) => Object.fromEntries(Object.entries(data.summary[key])
        .map(([name, perMetric]) => [name, perMetric[metric]])),
      unit: "",
    },
  };

  const LLM_METRIC_LABELS = {
    throughput_per_gpu: "throughput per GPU (tok/s)",
    output_throughput_per_gpu: "output throughput per GPU (tok/s)",
    tpot_s: "TPOT (s)", interactivity: "interactivity (tok/s/user)", ttft_s: "TTFT (s)",
  };

  async function load(source) {
    if (!cache[source]) cache[source] = await P.api(SOURCES[source].url);
    return cache[source];
  }

  function setChoices(source, data) {
    const src = SOURCES[source];
    const metrics = src.metrics(data);
    const keepMetric = $("metric").value;
    P.options($("metric"), metrics, { value: (m) => m[0], label: (m) => m[1],
      selected: metrics.some((m) => m[0] === keepMetric) ? keepMetric : metrics[0][0] });
    const keepGroup = $("group").value;
    P.options($("group"), src.groups, { value: (g) => g[0], label: (g) => g[1],
      selected: src.groups.some((g) => g[0] === keepGroup) ? keepGroup : src.groups[0][0] });
  }

  function render(source, data) {
    const src = SOURCES[source];
    const metric = $("metric").value;
    const group = $("group").value;
    const rows = src.rows(data, metric);
    $("empty").hidden = !(source === "store" && rows.length === 0);
    const overall = src.overall(data, metric);
    P.cards($("summary"), [
      ["rows", String(overall.count)],
      ["MAPE", P.pct(overall.mape)],
      ["median APE", P.pct(overall.median_ape)],
      ["within ±10 %", "within_10pct" in overall ? P.pct(overall.within_10pct, 0) : "–"],
    ]);
    $("summary-title").textContent = "APE = |predicted − measured| / measured";

    const groups = new Map();
    for (const r of rows) {
      const key = r[group] ?? "–";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(r);
    }
    const names = [...groups.keys()].sort();
    const unit = src.unit;
    const scatter = names.map((name) => {
      const g = groups.get(name);
      return {
        type: "scatter", mode: "markers", name,
        x: g.map((r) => r.measured), y: g.map((r) => r.predicted), text: g.map((r) => r.label),
        customdata: g.map((r) => r.ape), marker: { size: 8, opacity: 0.75 },
        hovertemplate: `%{text}<br>measured %{x:.3s}${unit}, predicted %{y:.3s}${unit}` +
          "<br>APE %{customdata:.1%}<extra>%{fullData.name}</extra>",
      };
    });
    const values = rows.flatMap((r) => [r.predicted, r.measured]).filter((v) => v > 0);
    if (values.length) {
      const lo = Math.min(...values) / 1.5;
      const hi = Math.max(...values) * 1.5;
      scatter.push({ type: "scatter", mode: "lines", name: "predicted = measured",
        x: [lo, hi], y: [lo, hi], line: { color: "#495057", dash: "dot" }, hoverinfo: "skip" });
    }
    $("scatter").dataset.points = String(rows.length);
    const metricLabel = $("metric").selectedOptions[0].textContent;
    P.plot($("scatter"), scatter, {
      xaxis: P.logAxis(`measured ${metricLabel}`, unit, values),
      yaxis: P.logAxis(`predicted ${metricLabel}`, unit, values),
      legend: { orientation: "h", y: -0.2 },
      margin: { l: 64, r: 16, t: 16, b: 60 },
    });

    const groupKey = src.groups.find((g) => g[0] === group)[2];
    const summaries = src.byGroup(data, metric, groupKey);
    const stats = Object.entries(summaries).filter(([, v]) => v && v.count > 0)
      .map(([name, v]) => ({ name, count: v.count, mape: v.mape, median: v.median_ape }));
    $("group-title").textContent = $("group").selectedOptions[0].textContent;
    P.plot($("by-group"), [
      { type: "bar", name: "MAPE", x: stats.map((s) => s.name), y: stats.map((s) => s.mape),
        customdata: stats.map((s) => s.count),
        hovertemplate: "%{x}: MAPE %{y:.1%} over %{customdata} rows<extra></extra>" },
      { type: "bar", name: "median APE", x: stats.map((s) => s.name),
        y: stats.map((s) => s.median), hovertemplate: "%{x}: median APE %{y:.1%}<extra></extra>" },
    ], {
      barmode: "group", yaxis: { title: { text: "absolute percentage error" }, tickformat: ".0%" },
      xaxis: { automargin: true, tickangle: names.length > 6 ? -35 : 0 },
      margin: { l: 64, r: 16, t: 16, b: 60 },
    });

    $("rows-title").textContent = `(${rows.length}, worst first)`;
    P.table($("rows"), [
      { key: "label", label: "case" },
      { key: group, label: $("group").selectedOptions[0].textContent },
      { key: "predicted", label: "predicted", num: true, format: (v) => P.si(v, unit) },
      { key: "measured", label: "measured", num: true, format: (v) => P.si(v, unit) },
      { key: "ape", label: "APE", num: true, format: (v) => P.pct(v) },
    ], [...rows].sort((a, b) => b.ape - a.ape).slice(0, 300));
  }

  async function update() {
    await P.guard(async () => {
      const source = $("source").value;
      const data = await load(source);
      render(source, data);
    });
  }

  async function changeSource(fromLink = false) {
    await P.guard(async () => {
      const source = $("source").value;
      const data = await load(source);
      setChoices(source, data);
      if (fromLink) P.applyQuery();
      render(source, data);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("source").addEventListener("change", () => changeSource());
    $("metric").addEventListener("change", update);
    $("group").addEventListener("change", update);
    P.applyQuery();
    changeSource(true);
  });
})();
