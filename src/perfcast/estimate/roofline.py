"""One kernel's estimate: its :class:`KernelTime` from a kernel-time model, kept with it.

See :mod:`perfcast.estimate.kernel_time` for the models; this module only binds a kernel
to the time a model gives it, for reports and totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfcast.estimate.efficiency import Confidence, EfficiencyModel
from perfcast.estimate.kernel_time import (
    KernelTime,
    KernelTimeModel,
    as_time_model,
    peak_flops_for,
)
from perfcast.hardware import HardwareSpec
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel


@dataclass(frozen=True)
class KernelEstimate:
    """A kernel, the seconds a kernel-time model gave it, and the device's ceilings
    for it (datasheet peak FLOP/s and DRAM bandwidth, for achieved-vs-peak reports)."""

    kernel: Kernel
    timing: KernelTime
    peak_flops: float
    bandwidth: float

    @property
    def compute_s(self) -> Dim:
        return self.timing.compute_s

    @property
    def memory_s(self) -> Dim:
        return self.timing.memory_s

    @property
    def overhead_s(self) -> float:
        return self.timing.overhead_s

    @property
    def time_s(self) -> Dim:
        return self.timing.time_s

    @property
    def bound(self) -> str | np.ndarray:
        return self.timing.bound

    @property
    def confidence(self) -> Confidence:
        return self.timing.confidence


def estimate_kernel(kernel: Kernel, hardware: HardwareSpec,
                    model: KernelTimeModel | EfficiencyModel | None = None,
                    allow_tf32: bool = False) -> KernelEstimate:
    """Time, bound and the terms behind them for one kernel (``model``: see
    :func:`~perfcast.estimate.kernel_time.as_time_model`)."""
    timing = as_time_model(model, allow_tf32=allow_tf32).time(kernel, hardware)
    return KernelEstimate(kernel, timing, peak_flops_for(kernel, hardware, allow_tf32),
                          hardware.memory_bandwidth)
