"""Analyze a model: capture -> dead-code elimination -> kernels -> per-kernel roofline."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfcast.estimate.efficiency import Confidence, EfficiencyModel
from perfcast.estimate.kernel_time import KernelTimeModel, as_time_model
from perfcast.estimate.memory import peak_activation_bytes, weight_bytes
from perfcast.estimate.result import Estimate, Totals
from perfcast.estimate.roofline import estimate_kernel
from perfcast.frontends.torch_export import Capture, Progress, capture
from perfcast.hardware import HardwareSpec, load_spec
from perfcast.ir import Graph
from perfcast.ir.tensor import Dim
from perfcast.passes import (
    PASS_NAMES,
    FusionTarget,
    Kernel,
    eliminate_dead_code,
    get_target,
    partition,
    run_passes,
)

CONFIDENCE_TIME_SHARE = 0.95  # a model's confidence: kernels that make up this share of time


@dataclass(frozen=True)
class Prepared:
    """A captured graph ready to estimate on any hardware and target."""

    name: str
    dtype: str
    capture: Capture
    live_graph: Graph  # the captured graph without dead code
    _by_target: dict = field(default_factory=dict, compare=False, repr=False)

    def graph_for(self, target: FusionTarget) -> Graph:
        """The graph ``target``'s passes make of the capture (computed once per target)."""
        if target.passes == ("dce",):
            return self.live_graph
        if not target.passes:
            return self.capture.graph
        key = ("graph", target.passes)
        if key not in self._by_target:
            enable = {name: name in target.passes for name in PASS_NAMES}
            self._by_target[key] = run_passes(self.capture.graph, {}, evaluate=None,
                                              enable=enable)[0]
        return self._by_target[key]

    def kernels(self, target: FusionTarget) -> list[Kernel]:
        """The kernels ``target`` runs, in order (computed once per target)."""
        key = ("kernels", target.name)
        if key not in self._by_target:
            graph = self.graph_for(target)
            if target.kernels == "steps":
                from perfcast.runtime.kernels import step_kernels

                self._by_target[key] = step_kernels(graph)
            else:
                self._by_target[key] = partition(graph, target)
        return self._by_target[key]


def prepare(model: Any, example_inputs: Any, *, dtype: str | None = None,
            name: str | None = None, progress: Progress | None = None) -> Prepared:
    """Capture ``model`` once; the result can be estimated on many devices."""
    cap = capture(model, example_inputs, dtype=dtype, name=name, progress=progress)
    return prepare_graph(cap, dtype=dtype)


def prepare_graph(cap: Capture, *, dtype: str | None = None) -> Prepared:
    """A graph captured by any frontend (torch.export, ONNX), ready to estimate."""
    return Prepared(cap.graph.name, dtype or _dominant_dtype(cap.graph), cap,
                    eliminate_dead_code(cap.graph))


def estimate_prepared(prepared: Prepared, hardware: str | HardwareSpec, *,
                      target: str = "eager",
                      efficiency: KernelTimeModel | EfficiencyModel | None = None,
                      allow_tf32: bool = False) -> Estimate:
    """Estimate a prepared model on one device for one fusion target.

    ``efficiency`` is the kernel-time model (a bare efficiency model means the roofline
    scaled by it; None, the plain roofline).
    """
    hw = load_spec(hardware) if isinstance(hardware, str) else hardware
    fusion = get_target(target)
    graph = prepared.graph_for(fusion)
    model = as_time_model(efficiency, allow_tf32=allow_tf32).for_graph(graph)
    kernels = prepared.kernels(fusion)
    estimates = [estimate_kernel(k, hw, model, allow_tf32) for k in kernels]
    energy = [kernel_energy(e.kernel.flops, e.kernel.bytes, e.time_s, hw) for e in estimates]
    by_category: Counter = Counter()
    for node in graph.nodes:
        cat = graph.category(node)
        if cat is not None and not graph.is_view(node):
            by_category[str(cat)] = by_category[str(cat)] + graph.cost(node).flops
    unsupported = dict(graph.unsupported())
    confidence = Confidence.PARTIAL if unsupported else _confidence(estimates)
    notes = []
    if unsupported:
        notes.append(f"{sum(unsupported.values())} ops of {len(unsupported)} kinds are unknown to "
                     "the registry: their FLOPs are missing (bytes estimated from shapes)")
    totals = Totals(
        flops=_sum(k.flops for k in kernels),
        flops_by_category=dict(by_category),
        bytes=_sum(k.bytes for k in kernels),
        time_s=_sum(e.time_s for e in estimates),
        params=prepared.capture.params,
        weights_bytes=weight_bytes(graph),
        activations_peak_bytes=peak_activation_bytes(graph, kernels),
        energy_j=_sum(energy),
    )
    return Estimate(prepared.name, hw.name, prepared.dtype, fusion.name, totals,
                    estimates, energy, unsupported, confidence, notes)


def analyze_model(model: Any, example_inputs: Any, *, hardware: str | HardwareSpec = "h100-sxm",
                  dtype: str | None = None, target: str = "eager", name: str | None = None,
                  efficiency: KernelTimeModel | EfficiencyModel | None = None) -> Estimate:
    """Capture ``model`` with ``example_inputs`` and estimate it on ``hardware``."""
    prepared = prepare(model, example_inputs, dtype=dtype, name=name)
    return estimate_prepared(prepared, hardware, target=target, efficiency=efficiency)


def kernel_energy(flops: Dim, nbytes: Dim, time_s: Dim, hw: HardwareSpec) -> Dim:
    """Dynamic energy of the work plus static (idle) power over the kernel's time."""
    return flops * hw.energy.flop_j + nbytes * hw.energy.dram_byte_j + hw.power.idle_w * time_s


def _confidence(estimates: list) -> Confidence:
    """The weakest confidence among the kernels that make up 95% of the predicted time."""
    ranked = sorted(estimates, key=lambda e: float(np.max(e.time_s)), reverse=True)
    total = sum(float(np.max(e.time_s)) for e in ranked)
    levels, covered = [], 0.0
    for e in ranked:
        if covered >= CONFIDENCE_TIME_SHARE * total:
            break
        levels.append(e.confidence)
        covered += float(np.max(e.time_s))
    return Confidence.weakest(levels)


def _sum(values) -> Dim:
    total: Dim = 0
    for v in values:
        total = total + v
    return total


def _dominant_dtype(graph: Graph) -> str:
    """The dtype holding most weight bytes (the model's precision), else float32."""
    weights: Counter = Counter()
    for t in graph.constants():
        weights[t.dtype] += float(np.max(t.nbytes))
    return weights.most_common(1)[0][0] if weights else "float32"
