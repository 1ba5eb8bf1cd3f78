"""The kernel-time model: one interface through which every source of timing answers.

A :class:`KernelTimeModel` takes one kernel (its dimensions may be NumPy arrays, so one
call times a whole sweep) and a device, and returns a :class:`KernelTime`: compute,
memory and overhead seconds, the busy time, the bound and the confidence. Nothing else
in perfcast turns FLOPs and bytes into seconds. Implementations:

- :class:`RooflineTime`: datasheet peaks times fractions from an efficiency model
  (:class:`~perfcast.estimate.efficiency.TheoreticalEfficiency` by default: the plain
  roofline, THEORETICAL), launch overhead from the device's catalog entry;
- :class:`~perfcast.estimate.llm_efficiency.ServingTime`: the fractions fitted for
  LLM-serving kernels, with their engine launch overhead;
- :class:`~perfcast.calibrate.model.CalibratedTime`: a machine's calibration profile,
  which gives seconds directly from its shape models, curves and element costs.

A model may specialise to the graph it times (:meth:`KernelTimeModel.for_graph`: the
calibrated model needs the weights' bytes to know where GEMV operands stream from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from perfcast.estimate.efficiency import (
    Confidence,
    Efficiency,
    EfficiencyModel,
    TheoreticalEfficiency,
)
from perfcast.ir import MATRIX_CATEGORIES
from perfcast.ir.tensor import Dim

if TYPE_CHECKING:
    from perfcast.hardware import HardwareSpec
    from perfcast.ir import Graph
    from perfcast.passes import Kernel


@dataclass(frozen=True)
class KernelTime:
    """Seconds of one kernel (arrays over a sweep): ``busy_s + overhead_s`` in all.

    ``busy_s`` defaults to ``max(compute_s, memory_s)`` (the roofline); a model whose
    time is not that max (a shape model's arithmetic plus data movement) gives it.
    """

    compute_s: Dim
    memory_s: Dim
    overhead_s: float
    confidence: Confidence
    busy: Dim | None = field(default=None, repr=False)

    @property
    def busy_s(self) -> Dim:
        return np.maximum(self.compute_s, self.memory_s) if self.busy is None else self.busy

    @property
    def time_s(self) -> Dim:
        busy = self.busy_s
        return busy + self.overhead_s if np.ndim(busy) else float(busy) + self.overhead_s

    @property
    def bound(self) -> str | np.ndarray:
        """"compute", "memory" or "overhead" (an array of them for sweeps)."""
        bound = np.where(self.overhead_s > self.busy_s, "overhead",
                         np.where(self.compute_s >= self.memory_s, "compute", "memory"))
        return str(bound) if bound.ndim == 0 else bound


class KernelTimeModel(Protocol):
    """Seconds for a kernel on a device; see the module docstring."""

    def time(self, kernel: Kernel, hardware: HardwareSpec) -> KernelTime: ...

    def for_graph(self, graph: Graph) -> KernelTimeModel: ...


def peak_flops_for(kernel: Kernel, hardware: HardwareSpec, allow_tf32: bool = False) -> float:
    """The FLOP/s ceiling that applies to ``kernel`` on ``hardware``.

    Matrix kernels (GEMM, convolution, attention) run at the device's peak for their
    dtype (tensor cores on GPUs); everything else on the vector units, taken as the
    device's fp32 rate where it lists one, else the kernel dtype's rate. fp32 matmuls
    use the fp32 peak, not tf32 (PyTorch's default), unless ``allow_tf32``.
    """
    if kernel.category in MATRIX_CATEGORIES:
        dtype = "tf32" if allow_tf32 and kernel.dtype == "float32" else kernel.dtype
        return hardware.peak_flops(dtype)
    if hardware.supports("fp32"):
        return hardware.peak_flops("fp32")
    return hardware.peak_flops(kernel.dtype)


def roofline(kernel: Kernel, hardware: HardwareSpec, compute_eff: Dim, memory_eff: Dim, *,
             overhead_s: float, confidence: Confidence,
             allow_tf32: bool = False) -> KernelTime:
    """FLOPs over the achieved peak, bytes over the achieved bandwidth."""
    compute_s = kernel.flops / (peak_flops_for(kernel, hardware, allow_tf32) * compute_eff)
    memory_s = kernel.bytes / (hardware.memory_bandwidth * memory_eff)
    return KernelTime(compute_s, memory_s, overhead_s, confidence)


@dataclass(frozen=True)
class RooflineTime:
    """Datasheet roofline scaled by an efficiency model; the catalog's launch overhead."""

    efficiency: EfficiencyModel = field(default_factory=TheoreticalEfficiency)
    allow_tf32: bool = False

    def time(self, kernel: Kernel, hardware: HardwareSpec) -> KernelTime:
        eff: Efficiency = self.efficiency(kernel, hardware)
        return roofline(kernel, hardware, eff.compute, eff.memory,
                        overhead_s=hardware.launch_overhead_s.value,
                        confidence=eff.confidence, allow_tf32=self.allow_tf32)

    def for_graph(self, graph: Graph) -> RooflineTime:
        return self


def as_time_model(model: KernelTimeModel | EfficiencyModel | None, *,
                  allow_tf32: bool = False) -> KernelTimeModel:
    """A kernel-time model from a model, a bare efficiency model (roofline) or None."""
    if model is None:
        return RooflineTime(allow_tf32=allow_tf32)
    if hasattr(model, "time"):
        return model  # type: ignore[return-value]
    return RooflineTime(model, allow_tf32)  # type: ignore[arg-type]
