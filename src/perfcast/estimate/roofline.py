"""One kernel's estimate: the :class:`KernelTime` a kernel-time model gave it, with the
kernel and the device's ceilings for it.

See :mod:`perfcast.estimate.kernel_time` for the models; this module only binds a kernel
to the time a model gives it, for reports and totals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from perfcast.estimate.efficiency import EfficiencyModel
from perfcast.estimate.kernel_time import (
    KernelTime,
    KernelTimeModel,
    as_time_model,
    peak_flops_for,
)
from perfcast.hardware import HardwareSpec
from perfcast.passes import Kernel


@dataclass(frozen=True, kw_only=True)
class KernelEstimate(KernelTime):
    """A kernel's :class:`KernelTime`, the kernel, and the device's ceilings for it
    (datasheet peak FLOP/s and DRAM bandwidth, for achieved-vs-peak reports)."""

    kernel: Kernel
    peak_flops: float
    bandwidth: float


def estimate_kernel(kernel: Kernel, hardware: HardwareSpec,
                    model: KernelTimeModel | EfficiencyModel | None = None,
                    allow_tf32: bool = False) -> KernelEstimate:
    """Time, bound and the terms behind them for one kernel (``model``: see
    :func:`~perfcast.estimate.kernel_time.as_time_model`)."""
    timing = as_time_model(model, allow_tf32=allow_tf32).time(kernel, hardware)
    return KernelEstimate(**{f.name: getattr(timing, f.name) for f in fields(KernelTime)},
                          kernel=kernel, peak_flops=peak_flops_for(kernel, hardware, allow_tf32),
                          bandwidth=hardware.memory_bandwidth)
