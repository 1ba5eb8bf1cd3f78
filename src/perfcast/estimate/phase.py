"""Time of one LLM phase graph (prefill or one decode step) on one device.

The graph is partitioned once into kernels as a serving engine runs them (norms,
activations and quantization fused; GEMMs, attention and collectives on their own);
each kernel's FLOPs and bytes are arrays over the sweep. Timing a device is then a few
NumPy operations per kernel, so hardware is looped in Python and everything else is
vectorized.

Per kernel: the time a kernel-time model gives it (by default
:class:`~perfcast.estimate.llm_efficiency.ServingTime`: ``max(FLOPs / (peak x compute
efficiency), bytes / (bandwidth x memory efficiency)) + launch overhead``); collectives
use the model's own ``collective`` method where it has one (measured tables), else the
link model of :mod:`perfcast.estimate.collectives`. Kernels run one after
another (no overlap of communication with compute), which is what the engines do for TP
all-reduces on the critical path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfcast.estimate.collectives import collective_time
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.kernel_time import KernelTimeModel
from perfcast.frontends.llm.graph import PhaseGraph
from perfcast.hardware import HardwareSpec
from perfcast.ir import Category
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel, partition

SERVING_TARGET = "compile"  # pointwise + norm fusion, library GEMMs: what serving engines run
PARTS = ("compute", "memory", "communication", "overhead")


@dataclass(frozen=True)
class PhaseKernel:
    """One kernel of a phase graph with its repeat count (layers of its group) and, for a
    collective, its payload."""

    kernel: Kernel
    group: str
    part: str
    repeats: Dim
    collective: tuple[str, Dim, Dim] | None  # (kind, payload bytes, group size)


def phase_kernels(pg: PhaseGraph) -> list[PhaseKernel]:
    """Partition ``pg`` and attach repeats and collective payloads to each kernel."""
    g = pg.graph
    out = []
    for k in partition(g, SERVING_TARGET):
        group, _, part = k.module.partition(".")
        coll = None
        if k.category is Category.COLLECTIVE:
            node = k.nodes[0]
            tensor = node.outputs[0] if node.kind == "all_gather" else node.inputs[0]
            coll = (node.kind, g.tensors[tensor].nbytes, node.attrs.get("group_size", 1))
        out.append(PhaseKernel(k, group, part, pg.repeats[group], coll))
    return out


@dataclass
class PhaseTime:
    """Seconds of one phase on one device; each entry broadcasts over the sweep."""

    total_s: Dim = 0.0
    by_part: dict[str, Dim] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    by_layer: dict[str, Dim] = field(default_factory=dict)  # "<group>.<part>" -> seconds
    confidences: list[Confidence] = field(default_factory=list)  # of the timed kernels
    by_confidence: dict[str, Dim] = field(default_factory=dict)  # seconds per confidence

    @property
    def confidence(self) -> Confidence:
        """The weakest confidence of the kernels timed (THEORETICAL if none)."""
        return Confidence.weakest(self.confidences)

    def count(self, confidence: Confidence, seconds: Dim) -> None:
        """Record a timed kernel's confidence and the seconds it accounts for."""
        self.confidences.append(confidence)
        self.by_confidence[str(confidence)] = self.by_confidence.get(str(confidence), 0.0) \
            + seconds

    def add(self, key: str, part: str, seconds: Dim) -> None:
        self.total_s = self.total_s + seconds
        self.by_part[part] = self.by_part[part] + seconds
        self.by_layer[key] = self.by_layer.get(key, 0.0) + seconds


def phase_time(kernels: list[PhaseKernel], hw: HardwareSpec,
               model: KernelTimeModel) -> PhaseTime:
    """Time of one pass over ``kernels`` on ``hw`` with ``model`` (for serving,
    :class:`~perfcast.estimate.llm_efficiency.ServingTime`); raises
    UnsupportedPrecisionError."""
    result = PhaseTime()
    for kc in kernels:
        k = kc.kernel
        key = f"{kc.group}.{kc.part}"
        if kc.collective is not None:
            kind, payload, group = kc.collective
            measured = model.collective(kind, payload, group, hw) \
                if hasattr(model, "collective") else None
            if measured is None:
                comm = collective_time(kind, payload, group, hw).time_s
                confidence = Confidence.THEORETICAL
            else:
                comm, confidence = measured
            result.count(confidence, comm * kc.repeats)
            result.add(key, "communication", comm * kc.repeats)
            continue
        t = model.time(k, hw)
        bound = t.compute_s >= t.memory_s
        result.add(key, "compute", np.where(bound, t.busy_s, 0.0) * kc.repeats)
        result.add(key, "memory", np.where(bound, 0.0, t.busy_s) * kc.repeats)
        result.add(key, "overhead", t.overhead_s * kc.repeats)
        result.count(t.confidence, t.time_s * kc.repeats)
    return result
