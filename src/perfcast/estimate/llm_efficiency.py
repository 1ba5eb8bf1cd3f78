"""Achieved fractions of peak for LLM-serving kernels, and per-step engine overhead.

The defaults live in ``data/llm_efficiency.yaml`` with where each figure comes from;
``perfcast validate llm`` reports how well they do against published results.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path

import yaml

from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.kernel_time import KernelTime, roofline
from perfcast.hardware import HardwareSpec
from perfcast.ir import Category, Graph
from perfcast.passes import Kernel

DATA = Path(__file__).with_name("data") / "llm_efficiency.yaml"


@dataclass(frozen=True)
class LLMEfficiency:
    """Fractions of peak FLOP/s (``*_compute``) and of DRAM bandwidth (``*_memory``)."""

    gemm_compute: float = 1.0
    gemm_memory: float = 1.0
    moe_compute: float = 1.0
    moe_memory: float = 1.0
    attention_compute: float = 1.0
    attention_memory: float = 1.0
    vector_memory: float = 1.0
    kernel_launch_s: float | None = None  # None: the device's launch overhead
    step_overhead_s: float = 0.0  # per forward pass: scheduling, sampling, host work
    request_overhead_s: float = 0.0  # per request, before its first token: API, tokenizer

    def for_kernel(self, kernel: Kernel) -> tuple[float, float]:
        """(compute, memory) efficiency of one kernel."""
        if kernel.category is Category.GEMM:
            if any(n.kind == "grouped_gemm" for n in kernel.nodes):
                return self.moe_compute, self.moe_memory
            return self.gemm_compute, self.gemm_memory
        if kernel.category is Category.ATTENTION:
            return self.attention_compute, self.attention_memory
        return 1.0, self.vector_memory

    def launch_overhead_s(self, hw: HardwareSpec) -> float:
        return hw.launch_overhead_s.value if self.kernel_launch_s is None else self.kernel_launch_s

    def with_values(self, **values: float) -> LLMEfficiency:
        return replace(self, **values)


THEORETICAL = LLMEfficiency(kernel_launch_s=0.0)


@dataclass(frozen=True)
class ServingTime:
    """The kernel-time model of LLM serving: the roofline at :class:`LLMEfficiency`'s
    fractions, with its launch overhead. Its fractions are fitted to end-to-end results,
    not measured per kernel on the device, so its times are THEORETICAL."""

    efficiency: LLMEfficiency
    confidence: Confidence = Confidence.THEORETICAL

    def time(self, kernel: Kernel, hardware: HardwareSpec) -> KernelTime:
        compute, memory = self.efficiency.for_kernel(kernel)
        return roofline(kernel, hardware, compute, memory,
                        overhead_s=self.efficiency.launch_overhead_s(hardware),
                        confidence=self.confidence)

    def for_graph(self, graph: Graph) -> ServingTime:
        return self


def _load(section: str) -> LLMEfficiency:
    data = yaml.safe_load(DATA.read_text())
    known = {f.name for f in fields(LLMEfficiency)}
    values = {k: float(v["value"]) for k, v in data[section].items() if k in known}
    return LLMEfficiency(**values)


@cache
def default_efficiency() -> LLMEfficiency:
    """The bundled defaults (``data/llm_efficiency.yaml``, ``efficiency``)."""
    return _load("efficiency")


@cache
def measured_overheads() -> LLMEfficiency:
    """The defaults when a measured GPU profile times the kernels: what the profiles leave
    out, fitted with them (``measured_profile_overheads``), over :func:`default_efficiency`
    for the rest."""
    fitted = _load("measured_profile_overheads")
    base = default_efficiency()
    return base.with_values(**{f.name: getattr(fitted, f.name) for f in fields(fitted)
                               if f.name in _MEASURED_FIELDS})


_MEASURED_FIELDS = ("vector_memory", "kernel_launch_s", "step_overhead_s", "request_overhead_s")
