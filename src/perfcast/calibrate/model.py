"""Estimate with a calibration profile: an EfficiencyModel and a spec with measured overhead.

With :func:`apply_profile`, the roofline estimator's time becomes
``overhead + scale[group] * max(flops / rate_compute(flops), bytes / rate_memory(bytes))``,
the rates read from the profile's curves, the group scale and the per-kernel overhead
from its whole-network fit when it has one for the thread count (1 and the
microbenchmark overhead otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from perfcast.calibrate.composite import CompositeFit, group_of
from perfcast.calibrate.curve import Curve
from perfcast.calibrate.profile import COMPUTE_CATEGORIES, MEMORY_CATEGORIES, POOLED, Profile
from perfcast.estimate.efficiency import Confidence, Efficiency
from perfcast.estimate.roofline import peak_for
from perfcast.hardware import HardwareSpec
from perfcast.ir.dtypes import canonical
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel

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

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def __call__(self, kernel: Kernel, hardware: HardwareSpec) -> Efficiency:
        category = str(kernel.category) if kernel.category is not None else None
        if category not in (*COMPUTE_CATEGORIES, *MEMORY_CATEGORIES):
            return Efficiency(1.0, 1.0, Confidence.THEORETICAL)
        scale = self._scale(group_of(category, kernel.flops, kernel.bytes))
        dtype = canonical(kernel.dtype)
        levels = []
        compute: Dim = 1.0
        if category in COMPUTE_CATEGORIES:
            rate, level = self._rate(self.profile.compute, (category,), dtype, kernel.flops,
                                     scale=True)
            compute = 1.0 if rate is None else rate / peak_for(kernel, hardware)
            levels.append(level)
        rate, level = self._rate(self.profile.memory, (category, POOLED), dtype, kernel.bytes,
                                 scale=False)
        memory = 1.0 if rate is None else rate / hardware.memory_bandwidth
        levels.append(level)
        confidence = Confidence.weakest(levels)
        if self.foreign:
            confidence = _ONE_LEVEL_DOWN.get(confidence, confidence)
        return Efficiency(compute / scale, memory / scale, confidence)

    def _composite(self) -> CompositeFit | None:
        if not self.profile.composite:
            return None
        return self.profile.composite[_nearest(self.profile.composite, self.threads)]

    def _scale(self, group: str | np.ndarray) -> float | np.ndarray:
        fit = self._composite()
        if fit is None:
            return 1.0
        if isinstance(group, np.ndarray):  # a sweep: one group per point
            return np.vectorize(lambda g: fit.scale.get(g, 1.0), otypes=[float])(group)
        return fit.scale.get(group, 1.0)

    def _rate(self, table: Mapping[tuple[str, str, int], Curve], categories: tuple[str, ...],
              dtype: str, work: Dim, *, scale: bool) -> tuple[Dim | None, Confidence]:
        """Rate at ``work`` from the first curve found, and the confidence of that rate.

        Searches ``dtype`` then float32 (THEORETICAL), each over ``categories`` in order, at
        the nearest thread count (INTERPOLATED at most; rates scaled linearly if ``scale``).
        """
        for d, cap in ((dtype, Confidence.CALIBRATED), (FALLBACK_DTYPE, Confidence.THEORETICAL)):
            for category in categories:
                threads = [t for c, dt, t in table if c == category and dt == d]
                if not threads:
                    continue
                t = _nearest(threads, self.threads)
                curve = table[(category, d, t)]
                rate = curve(work) * (self.threads / t if scale else 1.0)
                levels = [cap, _weakest(curve.confidence(work))]
                if t != self.threads:
                    levels.append(Confidence.INTERPOLATED)
                return rate, Confidence.weakest(levels)
        return None, Confidence.THEORETICAL


def apply_profile(spec: HardwareSpec, profile: Profile, threads: int, *,
                  foreign: bool = False) -> tuple[HardwareSpec, CalibratedEfficiency]:
    """``spec`` with the profile's per-kernel overhead at ``threads``, and the efficiency model.

    The overhead comes from the nearest thread count the profile measured: the
    whole-network fit's where there is one, else the microbenchmark median.
    """
    model = CalibratedEfficiency(profile, threads, foreign)
    if not profile.overhead_s:
        raise ValueError(f"profile {profile.hardware_key!r} has no overhead measurements")
    if profile.composite:
        t = _nearest(profile.composite, threads)
        overhead, what = profile.composite[t].overhead_s, "whole-network fit of the per-kernel"
    else:
        t = _nearest(profile.overhead_s, threads)
        overhead, what = profile.overhead_s[t], "median per-kernel"
    note = (f"{what} overhead at {t} threads from calibration profile "
            f"{profile.hardware_key} ({profile.created_at})")
    if t != threads:
        note += f", the nearest to the {threads} threads asked for"
    data = spec.model_dump()
    data["sources"].setdefault("measured", {"title": "measured on this machine by perfcast"})
    data["launch_overhead_s"] = {"value": overhead, "source": "measured",
                                 "note": note}
    return HardwareSpec.model_validate(data), model


def _nearest(available: Iterable[int], threads: int) -> int:
    """The thread count in ``available`` closest to ``threads`` (the larger on a tie)."""
    return min(available, key=lambda t: (abs(t - threads), -t))


def _weakest(levels: Confidence | np.ndarray) -> Confidence:
    """The weakest of one confidence or an array of them."""
    return Confidence.weakest([Confidence(c) for c in set(np.atleast_1d(levels).tolist())])
