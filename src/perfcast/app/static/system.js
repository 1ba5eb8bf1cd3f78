// System: this machine's processor, memory and accelerators with derived peaks, the
// software perfcast runs with, and the peaks set against a catalog device.
"use strict";

(() => {
  const P = perfcast;
  const $ = (id) => document.getElementById(id);
  const state = {};

  function keyValues(container, rows) {
    P.table(container, [{ key: "k", label: "" }, { key: "v", label: "" }],
      rows.map(([k, v]) => ({ k, v })));
    container.querySelector("thead").remove();
  }

  function renderMachine(detect) {
    const f = detect.facts;
    const caches = f.caches.map((c) => `L${c.level} ${c.instances} × ${P.binary(c.size_bytes)}`)
      .join(", ");
    const gpu = detect.gpu;
    $("machine-title").textContent = detect.spec.display_name;
    keyValues($("machine"), [
      ["processor", `${f.model_name} (${f.vendor}, ${f.arch})`],
      ["cores", `${f.physical_cores} physical, ${f.logical_cores} logical, ` +
        `${f.usable_cpus} usable`],
      ["frequency", `${P.si(f.freq_hz, "Hz")} (${f.freq_source})`],
      ["instruction sets", f.isa.join(" ") || "–"],
      ["caches", caches || "–"],
      ["memory", P.si(f.total_ram_bytes, "B")],
      ["memory bandwidth", `${P.si(f.dram_bandwidth_bytes_per_s, "B/s")} (measured copy)`],
      ["accelerator", gpu ? `${gpu.name}` : "none visible to PyTorch"],
    ]);
  }

  function renderSoftware(sys) {
    const store = sys.store;
    keyValues($("software"), [
      ["perfcast", sys.perfcast],
      ["Python", sys.python],
      ["platform", sys.platform],
      ["PyTorch importable", sys.torch_importable ? "yes" : "no"],
      ["results store", `${store.path} (${store.exists ? `schema ${store.schema_version}, ` +
        `${store.runs} runs` : "not created yet"})`],
      ["catalogs", `${sys.catalog.hardware} devices, ${sys.catalog.llm_models} LLMs, ` +
        `${sys.catalog.examples} example models`],
      ["server", `token ${sys.server.token_required ? "required" : "not required"}, ` +
        `uploads up to ${P.si(sys.server.max_upload_bytes, "B")}`],
    ]);
    const rows = [
      ...sys.dependencies.map((d) => ({ what: "requirement", ...d })),
      ...Object.entries(sys.features).flatMap(([feature, f]) =>
        f.packages.map((d) => ({ what: `feature: ${feature}`, ...d }))),
    ];
    P.table($("deps"), [
      { key: "what", label: "for" },
      { key: "name", label: "package" },
      { key: "required", label: "required", format: (v) => v || "any" },
      { key: "installed", label: "installed", format: (v) => v || "missing" },
      { key: "ok", label: "ok", format: (v) => (v ? "yes" : "NO") },
    ], rows);
  }

  function renderPeaks() {
    const local = state.detect.spec;
    const other = state.hardware.find((h) => h.name === $("compare").value);
    const dtypes = [...new Set([...Object.keys(local.compute), ...Object.keys(other.peak_flops)])];
    const localPeaks = dtypes.map((d) => (local.compute[d] ? local.compute[d].dense : null));
    const otherPeaks = dtypes.map((d) => other.peak_flops[d] ?? null);
    const here = "this machine";
    P.plot($("peaks"), [
      { type: "bar", name: here, x: dtypes, y: localPeaks,
        hovertemplate: `${here} %{x}: %{y:.3s}FLOP/s<extra></extra>` },
      { type: "bar", name: other.name, x: dtypes, y: otherPeaks,
        hovertemplate: `${other.name} %{x}: %{y:.3s}FLOP/s<extra></extra>` },
    ], {
      barmode: "group", title: { text: "Dense peak compute per precision" },
      yaxis: P.logAxis("FLOP/s (OP/s for int8)", "", [...localPeaks, ...otherPeaks]),
    });
    const dram = local.memory.find((m) => m.level === "dram") || {};
    const names = [here, other.name];
    P.plot($("memory"), [
      { type: "bar", name: "bandwidth", x: names, xaxis: "x", yaxis: "y",
        y: [dram.bandwidth_bytes_per_s, other.memory_bandwidth_bytes_per_s],
        hovertemplate: "%{x}: %{y:.3s}B/s<extra>bandwidth</extra>" },
      { type: "bar", name: "capacity", x: names, xaxis: "x2", yaxis: "y2",
        y: [dram.capacity_bytes, other.memory_capacity_bytes],
        hovertemplate: "%{x}: %{y:.3s}B<extra>capacity</extra>" },
    ], {
      title: { text: "Main memory" },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      yaxis: P.logAxis("bandwidth", "B/s", [dram.bandwidth_bytes_per_s,
        other.memory_bandwidth_bytes_per_s]),
      yaxis2: { title: { text: "capacity" }, tickformat: "~s", ticksuffix: "B" },
      showlegend: false,
    });
    const common = dtypes.filter((d, i) => localPeaks[i] && otherPeaks[i]);
    $("ratio").dataset.device = other.name;
    P.cards($("ratio"), [
      ...common.map((d) => [`${d} peak`,
        `${P.num(other.peak_flops[d] / local.compute[d].dense, 1)} ×`,
        `${other.name} / this machine`]),
      ["memory bandwidth", `${P.num(other.memory_bandwidth_bytes_per_s /
        dram.bandwidth_bytes_per_s, 1)} ×`, `${other.name} / this machine`],
    ]);
    $("peak-notes").replaceChildren(...Object.entries(local.compute).map(([d, f]) =>
      P.el("p", { class: "muted" }, `${d} on this machine: ${f.note || f.source}`)));
  }

  async function init() {
    await P.guard(async () => {
      const [sys, detect, hardware] = await Promise.all([P.api("/api/system"),
        P.api("/api/hardware/detect"), P.api("/api/hardware")]);
      Object.assign(state, { sys, detect, hardware });
      renderMachine(detect);
      renderSoftware(sys);
      const match = detect.gpu && detect.gpu.catalog_match;
      P.options($("compare"), hardware.map((h) => h.name),
        { selected: match || (hardware.some((h) => h.name === "h100-sxm") ? "h100-sxm"
          : hardware[0].name) });
      P.applyQuery();
      renderPeaks();
    });
    $("compare").addEventListener("change", () => P.guard(async () => renderPeaks()));
  }

  document.addEventListener("DOMContentLoaded", init);
})();
