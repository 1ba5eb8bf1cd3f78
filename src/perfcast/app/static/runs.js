// Runs: the measured history of one benchmark target (median with its 95% confidence
// band, run after run) and two runs compared target by target.
"use strict";

(() => {
  const P = perfcast;
  const $ = (id) => document.getElementById(id);
  const state = { runs: [], history: null };
  const VERDICT_COLORS = { faster: "#2b8a3e", slower: "#c92a2a", same: "#868e96",
    "too noisy": "#e67700" };

  const paramsText = (params) => Object.entries(params).map(([k, v]) => `${k}=${v}`).join(", ")
    || "(no parameters)";
  const runLabel = (r) => `${r.id} · ${r.git_commit ? r.git_commit.slice(0, 8) : "no commit"}`;

  // -- history -----------------------------------------------------------------------------
  function chosenSeries() {
    const all = state.history.series;
    const pick = $("series").value;
    return pick === "all" ? all : all.filter((_, i) => String(i) === pick);
  }

  function seriesName(s) {
    return `${paramsText(s.params)}${s.hardware ? " on " + s.hardware : ""}`;
  }

  function renderHistory() {
    const series = chosenSeries();
    // One category per run, in start order, shared by every series.
    const order = new Map();
    for (const s of state.history.series) {
      for (const p of s.points) order.set(p.run_id, p.started_at);
    }
    const runs = [...order.entries()].sort((a, b) => a[1].localeCompare(b[1])).map(([id]) => id);
    const traces = [];
    series.forEach((s, i) => {
      const color = P.COLORS[i % P.COLORS.length];
      const x = s.points.map((p) => p.run_id);
      const band = s.points.filter((p) => p.ci_low_s !== null && p.ci_high_s !== null);
      traces.push({
        type: "scatter", mode: "lines", x: band.map((p) => p.run_id).concat(
          band.map((p) => p.run_id).reverse()),
        y: band.map((p) => p.ci_high_s).concat(band.map((p) => p.ci_low_s).reverse()),
        fill: "toself", fillcolor: color + "33", line: { width: 0 }, hoverinfo: "skip",
        showlegend: false, name: `${seriesName(s)} 95% CI`,
      });
      traces.push({
        type: "scatter", mode: "lines+markers", name: seriesName(s), x,
        y: s.points.map((p) => p.median_s), line: { color }, marker: { color, size: 7 },
        customdata: s.points.map((p) => [p.ci_low_s, p.ci_high_s, p.git_commit || "–",
          p.started_at, p.n]),
        hovertemplate: "%{x}<br>median %{y:.3s}s (95% CI %{customdata[0]:.3s}s–" +
          "%{customdata[1]:.3s}s)<br>commit %{customdata[2]}, %{customdata[3]}, " +
          "n=%{customdata[4]}<extra>%{fullData.name}</extra>",
      });
    });
    $("history").dataset.series = String(series.length);
    $("history-title").textContent = `${state.history.target}: median per run, 95% CI band`;
    P.plot($("history"), traces, {
      xaxis: { type: "category", categoryorder: "array", categoryarray: runs,
        title: { text: "run (oldest → newest)" }, tickangle: -30, automargin: true },
      yaxis: P.logAxis("median time", "s", series.flatMap((s) => s.points.flatMap((p) =>
        [p.median_s, p.ci_low_s, p.ci_high_s]))),
      legend: { orientation: "h", y: -0.35 },
      margin: { l: 64, r: 16, t: 16, b: 110 },
    });
    const rows = series.map((s) => {
      const first = s.points[0];
      const last = s.points[s.points.length - 1];
      return {
        series: seriesName(s), runs: s.points.length, latest: last.median_s,
        ci: [last.ci_low_s, last.ci_high_s], change: last.median_s / first.median_s - 1,
      };
    });
    P.table($("history-table"), [
      { key: "series", label: "parameters" },
      { key: "runs", label: "runs", num: true },
      { key: "latest", label: "latest median", num: true, format: (v) => P.si(v, "s") },
      { key: "ci", label: "95% CI", num: true,
        format: ([lo, hi]) => `${P.si(lo, "s")} – ${P.si(hi, "s")}` },
      { key: "change", label: "latest vs first", num: true,
        format: (v) => `${v > 0 ? "+" : ""}${P.pct(v)}` },
    ], rows);
  }

  async function loadHistory() {
    await P.guard(async () => {
      const target = $("target").value;
      if (!target) return;
      state.history = await P.api(`/api/history?target=${encodeURIComponent(target)}`);
      P.options($("series"), ["all", ...state.history.series.map((_, i) => String(i))], {
        label: (v) => v === "all" ? "all series" : seriesName(state.history.series[Number(v)]),
      });
      renderHistory();
    });
  }

  // -- comparison --------------------------------------------------------------------------
  // The x range of the ratio plot: every CI and the line at 1, with a margin.
  function ratioRange(rows) {
    const ends = rows.flatMap((r) => r.ratio_ci95).concat([1]);
    const lo = Math.min(...ends);
    const hi = Math.max(...ends);
    const pad = Math.max(hi - lo, 0.02) * 0.08;
    return [lo - pad, hi + pad];
  }

  async function compare() {
    await P.guard(async () => {
      const a = $("run-a").value;
      const b = $("run-b").value;
      if (!a || !b) return;
      const query = `a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}` +
        "&allow_environment_change=true";
      const c = await P.api(`/api/runs/compare?${query}`);
      const summary = Object.entries(c.summary).filter(([, n]) => n > 0)
        .map(([verdict, n]) => `${n} ${verdict}`).join(", ") || "no common target";
      const notes = [];
      if (c.environment_differences.length) {
        notes.push(`different environments: ${c.environment_differences.join("; ")}`);
      }
      if (c.only_in_a.length) notes.push(`only in A: ${c.only_in_a.join(", ")}`);
      if (c.only_in_b.length) notes.push(`only in B: ${c.only_in_b.join(", ")}`);
      $("compare-summary").textContent = `B against A: ${summary}.` +
        (notes.length ? " " + notes.join(". ") + "." : "");
      const rows = c.results.map((r) => ({ ...r, label: `${r.target} (${paramsText(r.params)})` }));
      P.plot($("compare-plot"), [{
        type: "scatter", mode: "markers", y: rows.map((r) => r.label), x: rows.map((r) => r.ratio),
        error_x: {
          type: "data", symmetric: false,
          array: rows.map((r) => r.ratio_ci95[1] - r.ratio),
          arrayminus: rows.map((r) => r.ratio - r.ratio_ci95[0]),
          color: "#495057",
        },
        marker: { size: 11, color: rows.map((r) => VERDICT_COLORS[r.verdict] || "#868e96") },
        customdata: rows.map((r) => [r.verdict, r.ratio_ci95[0], r.ratio_ci95[1]]),
        hovertemplate: "%{y}<br>B/A %{x:.3f} (95% CI %{customdata[1]:.3f}–%{customdata[2]:.3f})" +
          ", %{customdata[0]}<extra></extra>",
      }], {
        title: { text: "time ratio B / A with 95% CI (below 1: B is faster)" },
        xaxis: { title: { text: "B / A" }, zeroline: false, range: ratioRange(rows) },
        yaxis: { automargin: true, type: "category" },
        shapes: [{ type: "line", x0: 1, x1: 1, yref: "paper", y0: 0, y1: 1,
          line: { color: "#495057", dash: "dot" } }],
        margin: { l: 16, r: 16, t: 36, b: 48 },
        showlegend: false,
      });
      P.table($("compare-table"), [
        { key: "target", label: "target" },
        { key: "params", label: "parameters", format: paramsText },
        { key: "median_a_s", label: "median A", num: true, format: (v) => P.si(v, "s") },
        { key: "median_b_s", label: "median B", num: true, format: (v) => P.si(v, "s") },
        { key: "ratio", label: "B / A", num: true, format: (v) => P.num(v, 3) },
        { key: "ratio_ci95", label: "95% CI", num: true,
          format: ([lo, hi]) => `${P.num(lo, 3)}–${P.num(hi, 3)}` },
        { key: "verdict", label: "verdict" },
      ], rows);
    });
  }

  // -- run list and one run ----------------------------------------------------------------
  async function showRun(runId) {
    await P.guard(async () => {
      const doc = await P.api(`/api/runs/${encodeURIComponent(runId)}`);
      const container = P.el("div");
      P.table(container, [
        { key: "target", label: "target" },
        { key: "params", label: "parameters", format: paramsText },
        { key: "status", label: "status" },
        { key: "median_s", label: "median", num: true, format: (v) => P.si(v, "s") },
        { key: "rel_ci", label: "CI width", num: true, format: (v) => P.pct(v) },
        { key: "n", label: "samples", num: true },
        { key: "error", label: "error", format: (v) => v || "" },
      ], doc.results);
      $("run-detail").replaceChildren(
        P.el("h2", {}, `Run ${doc.run.run_id} `, P.el("span", { class: "muted" },
          `${doc.run.command} (${doc.run.status}, ${doc.run.started_at})`)), container);
    });
  }

  function renderRuns() {
    P.table($("runs"), [
      { key: "id", label: "run" },
      { key: "started_at", label: "started" },
      { key: "status", label: "status" },
      { key: "git_commit", label: "commit", format: (v) => (v ? v.slice(0, 10) : "–") },
      { key: "n_results", label: "results", num: true },
      { key: "command", label: "command" },
    ], state.runs);
    $("runs").querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.style.cursor = "pointer";
      tr.addEventListener("click", () => showRun(state.runs[i].id));
    });
  }

  async function init() {
    await P.guard(async () => {
      const [runs, targets] = await Promise.all([P.api("/api/runs?limit=200"),
        P.api("/api/history/targets")]);
      state.runs = runs;
      $("empty").hidden = runs.length > 0;
      $("content").hidden = runs.length === 0;
      P.options($("target"), targets);
      P.options($("run-a"), runs, { value: (r) => r.id, label: runLabel,
        selected: runs.length > 1 ? runs[1].id : undefined });
      P.options($("run-b"), runs, { value: (r) => r.id, label: runLabel });
      P.applyQuery();
      renderRuns();
    });
    $("target").addEventListener("change", loadHistory);
    $("series").addEventListener("change", () => renderHistory());
    $("run-a").addEventListener("change", compare);
    $("run-b").addEventListener("change", compare);
    await Promise.all([loadHistory(), compare()]);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
