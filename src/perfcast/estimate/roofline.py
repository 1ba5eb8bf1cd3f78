"""Roofline time per kernel: max(compute time, memory time) + launch overhead.

Matrix kernels (GEMM, convolution, attention) run at the device's peak for their
dtype (tensor cores on GPUs); everything else runs on the vector units, taken as
the device's fp32 rate where it lists one, else the kernel dtype's rate. fp32
matmuls use the fp32 peak, not tf32 (PyTorch's default), unless ``allow_tf32``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfcast.estimate.efficiency import Efficiency, EfficiencyModel
from perfcast.hardware import HardwareSpec
from perfcast.ir import Category
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel

MATRIX_CATEGORIES = frozenset({Category.GEMM, Category.CONV, Category.ATTENTION})


@dataclass(frozen=True)
class KernelEstimate:
    kernel: Kernel
    compute_s: Dim
    memory_s: Dim
    overhead_s: float
    time_s: Dim
    bound: str | np.ndarray  # "compute" | "memory" | "overhead" (array for sweeps)
    peak_flops: float
    bandwidth: float
    efficiency: Efficiency


def peak_for(kernel: Kernel, hardware: HardwareSpec, allow_tf32: bool = False) -> float:
    """The FLOP/s ceiling that applies to ``kernel`` on ``hardware``."""
    if kernel.category in MATRIX_CATEGORIES:
        dtype = "tf32" if allow_tf32 and kernel.dtype == "float32" else kernel.dtype
        return hardware.peak_flops(dtype)
    if hardware.supports("fp32"):
        return hardware.peak_flops("fp32")
    return hardware.peak_flops(kernel.dtype)


def estimate_kernel(kernel: Kernel, hardware: HardwareSpec, efficiency: EfficiencyModel,
                    allow_tf32: bool = False) -> KernelEstimate:
    """Time, bound and the terms behind them for one kernel."""
    eff = efficiency(kernel, hardware)
    peak = peak_for(kernel, hardware, allow_tf32)
    bandwidth = hardware.memory_bandwidth
    compute_s = kernel.flops / (peak * eff.compute)
    memory_s = kernel.bytes / (bandwidth * eff.memory)
    overhead_s = hardware.launch_overhead_s.value
    busy = np.maximum(compute_s, memory_s)
    bound = np.where(overhead_s > busy, "overhead",
                     np.where(compute_s >= memory_s, "compute", "memory"))
    return KernelEstimate(
        kernel=kernel,
        compute_s=compute_s,
        memory_s=memory_s,
        overhead_s=overhead_s,
        time_s=busy + overhead_s if np.ndim(busy) else float(busy) + overhead_s,
        bound=str(bound) if bound.ndim == 0 else bound,
        peak_flops=peak,
        bandwidth=bandwidth,
        efficiency=eff,
    )
