"""Estimate with a calibration profile: an EfficiencyModel and a spec with measured overhead.

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
from perfcast.calibrate.profile import (
    COMPUTE_CATEGORIES,
    MEMORY_CATEGORIES,
    POOLED,
    Profile,
    stream_curve,
)
from perfcast.calibrate.shape_model import model_name, streams
from perfcast.estimate.efficiency import Confidence, Efficiency
from perfcast.estimate.roofline import peak_for
from perfcast.hardware import HardwareSpec
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
class CalibratedEfficiency:
    """EfficiencyModel from a profile, for one thread count."""

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

    def for_weights(self, weights_bytes: float) -> CalibratedEfficiency:
        """This model for a network holding ``weights_bytes`` of weights."""
        return replace(self, weights_bytes=float(weights_bytes))

    def __call__(self, kernel: Kernel, hardware: HardwareSpec) -> Efficiency:
        category = str(kernel.category) if kernel.category is not None else None
        if category not in (*COMPUTE_CATEGORIES, *MEMORY_CATEGORIES):
            return Efficiency(1.0, 1.0, Confidence.THEORETICAL)
        dtype = canonical(kernel.dtype)
        levels = []
        compute: Dim = 1.0
        if category in COMPUTE_CATEGORIES:
            rate, level = self._rate(self.profile.compute, (category,), dtype, kernel.flops,
                                     scale=True)
            compute = 1.0 if rate is None else rate / peak_for(kernel, hardware)
            levels.append(level)
        footprint = kernel.bytes  # GEMVs stream the weights from where all of them fit
        if category == "gemm" and self.weights_bytes:
            footprint = np.maximum(kernel.bytes, self.weights_bytes)
        rate, level = self._rate(self.profile.memory, (category, POOLED), dtype, footprint,
                                 scale=False)
        memory = 1.0 if rate is None else rate / hardware.memory_bandwidth
        levels.append(level)
        if category in ("elementwise", "reduction") and kernel.elements:
            compute = self._element_compute(kernel, hardware, dtype, compute)
        confidence = self._binding_confidence(kernel, hardware, compute, memory, levels)
        if category in ("gemm", "conv") and kernel.shape is not None:
            shaped = self._shaped(kernel, hardware, category, dtype)
            if shaped is not None:
                flows = streams(category, kernel.shape)  # GEMV, depthwise: the memory curve
                compute = np.where(flows, compute, shaped.compute)
                memory = np.where(flows, memory, shaped.memory)
                compute, memory = (float(x) if np.ndim(x) == 0 else x for x in (compute, memory))
                if not np.all(flows):
                    confidence = shaped.confidence if not np.any(flows) else \
                        Confidence.weakest([confidence, shaped.confidence])
        if self.foreign:
            confidence = _ONE_LEVEL_DOWN.get(confidence, confidence)
        return Efficiency(compute, memory, confidence)

    @staticmethod
    def _binding_confidence(kernel: Kernel, hardware: HardwareSpec, compute: Dim, memory: Dim,
                            levels: list[Confidence]) -> Confidence:
        """The confidence of the curve that sets the kernel's time (compute, then memory,
        in ``levels``): an attention kernel's time is its FLOPs over the compute curve, so
        its bytes lying outside the few memory-bound points measured do not make it
        THEORETICAL. The weakest of both for sweeps or a tie."""
        if len(levels) == 2 and np.ndim(compute) == 0 and np.ndim(memory) == 0 \
                and np.ndim(kernel.flops) == 0 and np.ndim(kernel.bytes) == 0:
            compute_s = float(kernel.flops) / (peak_for(kernel, hardware) * float(compute))
            memory_s = float(kernel.bytes) / (hardware.memory_bandwidth * float(memory))
            if compute_s != memory_s:
                return levels[0] if compute_s > memory_s else levels[1]
        return Confidence.weakest(levels)

    def _shaped(self, kernel: Kernel, hardware: HardwareSpec, category: str,
                dtype: str) -> Efficiency | None:
        """Efficiencies that make the roofline's max() equal the shape model's busy time
        (per point of a batch sweep whose points run on different implementations)."""
        assert kernel.shape is not None
        names = model_name(category, kernel.shape, threads=self.threads, dtype=dtype)
        if isinstance(names, str):
            return self._shaped_by(names, kernel, hardware, category, dtype)
        parts = {name: self._shaped_by(name, kernel, hardware, category, dtype)
                 for name in sorted(set(names.tolist()))}
        if any(part is None for part in parts.values()):
            return None
        chosen = [names == name for name in parts]
        return Efficiency(np.select(chosen, [p.compute for p in parts.values()]),
                          np.select(chosen, [p.memory for p in parts.values()]),
                          Confidence.weakest([p.confidence for p in parts.values()]))

    def _shaped_by(self, name: str, kernel: Kernel, hardware: HardwareSpec, category: str,
                   dtype: str) -> Efficiency | None:
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
        busy = (arithmetic + moving) * t / self.threads  # threads scale linearly off-profile
        levels = [cap, _weakest(model.confidence(shape.m, shape.n, shape.k))]
        if t != self.threads:
            levels.append(Confidence.INTERPOLATED)
        compute = kernel.flops / (peak_for(kernel, hardware) * busy)
        memory = kernel.bytes / (hardware.memory_bandwidth * np.maximum(busy, 1e-30)) \
            if np.any(kernel.bytes) else 1.0
        return Efficiency(compute, np.maximum(memory, 1e-12), Confidence.weakest(levels))

    def _element_compute(self, kernel: Kernel, hardware: HardwareSpec, dtype: str,
                         default: Dim) -> Dim:
        """Compute efficiency of an elementwise or pooling kernel from its ops' per-element
        costs and fixed per-call costs."""
        seconds: Dim = 0.0
        for kind, count in kernel.elements:
            found = self._lookup(self.profile.element_cost, (kind,), dtype)
            if found is not None:
                cost, t, _ = found
                fixed = self.profile.element_fixed_s.get((kind, dtype, t), 0.0)
                seconds = seconds + fixed + count * cost * t / self.threads
        if not np.any(seconds) or not np.all(kernel.flops):
            return default
        return kernel.flops / (peak_for(kernel, hardware) * seconds)

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


def apply_profile(spec: HardwareSpec, profile: Profile, threads: int, *,
                  foreign: bool = False) -> tuple[HardwareSpec, CalibratedEfficiency]:
    """``spec`` with the profile's per-kernel overhead at ``threads``, and the efficiency model.

    The overhead is the profile's median eager-layer cost at the nearest thread count
    it measured.
    """
    model = CalibratedEfficiency(profile, threads, foreign)
    if not profile.overhead_s:
        raise ValueError(f"profile {profile.hardware_key!r} has no overhead measurements")
    t = _nearest(profile.overhead_s, threads)
    note = (f"per-kernel overhead of an eager layer at {t} threads from calibration profile "
            f"{profile.hardware_key} ({profile.created_at})")
    if t != threads:
        note += f", the nearest to the {threads} threads asked for"
    data = spec.model_dump()
    data["sources"].setdefault("measured", {"title": "measured on this machine by perfcast"})
    data["launch_overhead_s"] = {"value": profile.overhead_s[t], "source": "measured",
                                 "note": note}
    return HardwareSpec.model_validate(data), model


def _nearest(available: Iterable[int], threads: int) -> int:
    """The thread count in ``available`` closest to ``threads`` (the larger on a tie)."""
    return min(available, key=lambda t: (abs(t - threads), -t))


def _weakest(levels: Confidence | np.ndarray) -> Confidence:
    """The weakest of one confidence or an array of them."""
    return Confidence.weakest([Confidence(c) for c in set(np.atleast_1d(levels).tolist())])
