"""Estimate with a calibration profile: the profile's kernel-time model.

With :func:`apply_profile`, a kernel's time is the eager per-layer overhead plus its busy
time: for GEMMs and convolutions with known dimensions, the profile's shape model
(:mod:`perfcast.calibrate.shape_model`); for GEMVs and depthwise convolutions, their
bytes over the category's memory curve; for elementwise ops, the larger of their bytes
over the memory curve and their elements times the op's measured per-element cost;
otherwise ``max(flops / rate(flops), bytes / rate(bytes))`` from the curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from perfcast.calibrate.curve import Curve
from perfcast.calibrate.eager_cpu import ELEMENT_COST_NAMES
from perfcast.calibrate.profile import (
    COMPUTE_CATEGORIES,
    MEMORY_CATEGORIES,
    POOLED,
    Profile,
    stream_curve,
)
from perfcast.calibrate.shape_model import model_name, streams
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.kernel_time import KernelTime, peak_flops_for, roofline
from perfcast.estimate.memory import weight_bytes
from perfcast.hardware import HardwareSpec
from perfcast.ir import Graph
from perfcast.ir.dtypes import canonical
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel

_T = TypeVar("_T")
FALLBACK_DTYPE = "float32"  # curves used, at THEORETICAL confidence, for an unmeasured dtype
_ONE_LEVEL_DOWN = {
    Confidence.CALIBRATED: Confidence.INTERPOLATED,
    Confidence.INTERPOLATED: Confidence.THEORETICAL,
}


class ProfileMismatch(ValueError):
    """A profile from another machine or environment, or an incompatible perfcast version."""


def check_compatible(profile: Profile, *, fingerprint: str | None,
                     hardware_key: str | None) -> list[str]:
    """Why ``profile`` does not describe this machine and environment; empty if it does.

    A ``None`` argument is not checked.
    """
    reasons = []
    if hardware_key is not None and profile.hardware_key != hardware_key:
        reasons.append(f"profile was measured on {profile.hardware_key!r}, "
                       f"this machine is {hardware_key!r}")
    if fingerprint is not None and profile.fingerprint != fingerprint:
        reasons.append(f"profile environment fingerprint {profile.fingerprint} differs from "
                       f"this environment's {fingerprint}")
    return reasons


@dataclass(frozen=True)
class CalibratedTime:
    """The kernel-time model of a calibration profile, for one thread count.

    Seconds come straight from what was measured: no efficiency is derived to be
    cancelled against a datasheet peak. The per-kernel overhead is the profile's eager
    per-layer cost at the nearest thread count it measured.
    """

    profile: Profile
    threads: int
    foreign: bool = False  # profile from another environment: confidences drop one level
    # Bytes of the model's weights: every forward streams all of them through the caches,
    # so a GEMM's or convolution's operands come from the memory level that holds this
    # many bytes, not from the level its own bytes would fit in (0: the kernel's own).
    weights_bytes: float = 0.0

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not self.profile.overhead_s:
            raise ValueError(f"profile {self.profile.hardware_key!r} has no overhead "
                             "measurements")

    @property
    def overhead_s(self) -> float:
        return self.profile.overhead_s[_nearest(self.profile.overhead_s, self.threads)]

    def for_graph(self, graph: Graph) -> CalibratedTime:
        """This model for a network holding ``graph``'s weights."""
        return replace(self, weights_bytes=float(weight_bytes(graph)))

    def time(self, kernel: Kernel, hardware: HardwareSpec) -> KernelTime:
        category = str(kernel.category) if kernel.category is not None else None
        if category not in (*COMPUTE_CATEGORIES, *MEMORY_CATEGORIES):
            return roofline(kernel, hardware, 1.0, 1.0, overhead_s=self.overhead_s,
                            confidence=Confidence.THEORETICAL)
        dtype = canonical(kernel.dtype)
        levels = []
        compute_s: Dim = kernel.flops / peak_flops_for(kernel, hardware)
        if category in COMPUTE_CATEGORIES:
            rate, level = self._rate(self.profile.compute, (category,), dtype, kernel.flops,
                                     scale=True)
            if rate is not None:
                compute_s = kernel.flops / rate
            levels.append(level)
        footprint = kernel.bytes  # GEMVs stream the weights from where all of them fit
        if category == "gemm" and self.weights_bytes:
            footprint = np.maximum(kernel.bytes, self.weights_bytes)
        rate, level = self._rate(self.profile.memory, (category, POOLED), dtype, footprint,
                                 scale=False)
        memory_s = kernel.bytes / (hardware.memory_bandwidth if rate is None else rate)
        levels.append(level)
        if category in ("elementwise", "reduction") and kernel.elements:
            compute_s = self._element_seconds(kernel, dtype, compute_s)
        confidence = _binding_confidence(compute_s, memory_s, levels)
        busy = None
        if category in ("gemm", "conv") and kernel.shape is not None:
            shaped = self._shaped(kernel, category, dtype)
            if shaped is not None:
                arithmetic, moving, level = shaped
                flows = streams(category, kernel.shape)  # GEMV, depthwise: the memory curve
                busy = _scalar(np.where(flows, np.maximum(compute_s, memory_s),
                                        arithmetic + moving))
                compute_s = _scalar(np.where(flows, compute_s, arithmetic))
                memory_s = _scalar(np.where(flows, memory_s, moving))
                if not np.all(flows):
                    confidence = level if not np.any(flows) else \
                        Confidence.weakest([confidence, level])
        if self.foreign:
            confidence = _ONE_LEVEL_DOWN.get(confidence, confidence)
        return KernelTime(compute_s, memory_s, self.overhead_s, confidence, busy)

    def _shaped(self, kernel: Kernel, category: str,
                dtype: str) -> tuple[Dim, Dim, Confidence] | None:
        """(arithmetic s, data-movement s, confidence) from the shape model, per point of
        a batch sweep whose points run on different implementations."""
        assert kernel.shape is not None
        names = model_name(category, kernel.shape, threads=self.threads, dtype=dtype)
        if isinstance(names, str):
            return self._shaped_by(names, kernel, category, dtype)
        parts = {name: self._shaped_by(name, kernel, category, dtype)
                 for name in sorted(set(names.tolist()))}
        if any(part is None for part in parts.values()):
            return None
        chosen = [names == name for name in parts]
        found = [p for p in parts.values() if p is not None]
        return (np.select(chosen, [p[0] for p in found]), np.select(chosen, [p[1] for p in found]),
                Confidence.weakest([p[2] for p in found]))

    def _shaped_by(self, name: str, kernel: Kernel, category: str,
                   dtype: str) -> tuple[Dim, Dim, Confidence] | None:
        """:meth:`_shaped` with the shape model ``name`` (else the category's)."""
        shape = kernel.shape
        assert shape is not None
        found = self._lookup(self.profile.shape, tuple(dict.fromkeys((name, category))), dtype)
        if found is None:
            return None
        model, t, cap = found
        bandwidth = stream_curve(self.profile.memory, category, dtype, t)
        if bandwidth is None:
            return None
        arithmetic, moving = model.busy_s(shape.m, shape.n, shape.k, kernel.flops, kernel.bytes,
                                          bandwidth, footprint=self.weights_bytes,
                                          window=shape.window)
        scale = t / self.threads  # threads scale linearly off-profile
        levels = [cap, _weakest(model.confidence(shape.m, shape.n, shape.k))]
        if t != self.threads:
            levels.append(Confidence.INTERPOLATED)
        return arithmetic * scale, moving * scale, Confidence.weakest(levels)

    def _element_seconds(self, kernel: Kernel, dtype: str, default: Dim) -> Dim:
        """Busy seconds of an elementwise or pooling kernel from its ops' per-element
        costs and fixed per-call costs (``default`` where none was measured)."""
        seconds: Dim = 0.0
        for op_kind, count in kernel.elements:
            kind = ELEMENT_COST_NAMES.get(op_kind, op_kind)
            found = self._lookup(self.profile.element_cost, (kind,), dtype)
            if found is not None:
                cost, t, _ = found
                fixed = self.profile.element_fixed_s.get((kind, dtype, t), 0.0)
                seconds = seconds + fixed + count * cost * t / self.threads
        if not np.any(seconds) or not np.all(kernel.flops):
            return default
        return seconds

    def _lookup(self, table: Mapping[tuple[str, str, int], _T], names: tuple[str, ...],
                dtype: str) -> tuple[_T, int, Confidence] | None:
        """The first entry of ``table`` found for ``names`` (in order) at ``dtype``, else at
        float32 (THEORETICAL), at the nearest thread count: (entry, its threads, the
        confidence cap)."""
        for d, cap in ((dtype, Confidence.CALIBRATED), (FALLBACK_DTYPE, Confidence.THEORETICAL)):
            for name in names:
                threads = [t for c, dt, t in table if c == name and dt == d]
                if threads:
                    t = _nearest(threads, self.threads)
                    return table[(name, d, t)], t, cap
        return None

    def _rate(self, table: Mapping[tuple[str, str, int], Curve], categories: tuple[str, ...],
              dtype: str, work: Dim, *, scale: bool) -> tuple[Dim | None, Confidence]:
        """Rate at ``work`` from the first curve :meth:`_lookup` finds, and its confidence
        (INTERPOLATED at most off the measured thread count; rates scaled linearly if
        ``scale``)."""
        found = self._lookup(table, categories, dtype)
        if found is not None:
            curve, t, cap = found
            rate = curve(work) * (self.threads / t if scale else 1.0)
            levels = [cap, _weakest(curve.confidence(work))]
            if t != self.threads:
                levels.append(Confidence.INTERPOLATED)
            return rate, Confidence.weakest(levels)
        return None, Confidence.THEORETICAL


def _binding_confidence(compute_s: Dim, memory_s: Dim, levels: list[Confidence]) -> Confidence:
    """The confidence of the curve that sets the kernel's time (compute, then memory, in
    ``levels``): an attention kernel's time is its FLOPs over the compute curve, so its
    bytes lying outside the few memory-bound points measured do not make it THEORETICAL.
    The weakest of both for sweeps or a tie."""
    if len(levels) == 2 and np.ndim(compute_s) == 0 and np.ndim(memory_s) == 0 \
            and float(compute_s) != float(memory_s):
        return levels[0] if float(compute_s) > float(memory_s) else levels[1]
    return Confidence.weakest(levels)


def apply_profile(spec: HardwareSpec, profile: Profile, threads: int, *,
                  foreign: bool = False) -> tuple[HardwareSpec, CalibratedTime]:
    """``spec`` and the profile's kernel-time model at ``threads`` (which carries the
    measured per-kernel overhead; the spec is returned as it is)."""
    return spec, CalibratedTime(profile, threads, foreign)


def _scalar(value: Dim) -> Dim:
    return float(value) if np.ndim(value) == 0 else value


def _nearest(available: Iterable[int], threads: int) -> int:
    """The thread count in ``available`` closest to ``threads`` (the larger on a tie)."""
    return min(available, key=lambda t: (abs(t - threads), -t))


def _weakest(levels: Confidence | np.ndarray) -> Confidence:
    """The weakest of one confidence or an array of them."""
    return Confidence.weakest([Confidence(c) for c in set(np.atleast_1d(levels).tolist())])
