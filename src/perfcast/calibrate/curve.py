"""Achieved rate as a function of work, fitted from microbenchmark timings.

A :class:`Curve` maps work (FLOPs or bytes) to the rate a machine achieved on it
(FLOP/s or bytes/s), piecewise-linear in log-log space between measured knots and
flat beyond them. :func:`fit_curve` builds one from (work, seconds) measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binned_statistic

from perfcast.estimate.efficiency import Confidence

NEAR = 4.0  # work within this factor outside the measured range counts as INTERPOLATED
BUSY_FLOOR = 0.05  # busy time is at least this fraction of the measured time
_LEVELS = (Confidence.CALIBRATED, Confidence.INTERPOLATED, Confidence.THEORETICAL)


@dataclass(frozen=True)
class Curve:
    """Achieved rate (FLOP/s or bytes/s) as a function of work (FLOPs or bytes),
    piecewise-linear in log-log space."""

    work: tuple[float, ...]  # knots, ascending, > 0
    rate: tuple[float, ...]  # achieved rate at each knot, > 0
    n_points: int  # measurements behind the fit
    rel_rmse: float  # RMS relative error of the fit on its own points (time domain)

    def __post_init__(self) -> None:
        work, rate = np.asarray(self.work, float), np.asarray(self.rate, float)
        if work.ndim != 1 or work.size == 0:
            raise ValueError("curve needs at least one knot")
        if work.shape != rate.shape:
            raise ValueError(f"curve has {work.size} work knots but {rate.size} rates")
        if not (np.all(np.isfinite(work)) and np.all(work > 0)):
            raise ValueError(f"curve work knots must be finite and > 0, got {list(work)}")
        if not (np.all(np.isfinite(rate)) and np.all(rate > 0)):
            raise ValueError(f"curve rates must be finite and > 0, got {list(rate)}")
        if np.any(np.diff(work) <= 0):
            raise ValueError(f"curve work knots must be strictly ascending, got {list(work)}")
        if self.n_points < 1:
            raise ValueError(f"curve n_points must be >= 1, got {self.n_points}")
        if not (np.isfinite(self.rel_rmse) and self.rel_rmse >= 0):
            raise ValueError(f"curve rel_rmse must be finite and >= 0, got {self.rel_rmse}")

    def __call__(self, work: float | np.ndarray) -> float | np.ndarray:
        """Rate at ``work``; log-log interpolation, clamped to the end rates outside."""
        w = np.clip(np.asarray(work, float), self.work[0], self.work[-1])
        rate = np.exp(np.interp(np.log(w), np.log(self.work), np.log(self.rate)))
        return float(rate) if rate.ndim == 0 else rate

    def confidence(self, work: float | np.ndarray) -> Confidence | np.ndarray:
        """CALIBRATED inside the knots, INTERPOLATED within NEAR of them, else THEORETICAL."""
        w = np.asarray(work, float)
        lo, hi = self.work[0], self.work[-1]
        inside = (w >= lo) & (w <= hi)
        near = (w >= lo / NEAR) & (w <= hi * NEAR)
        level = np.where(inside, 0, np.where(near, 1, 2))
        if level.ndim == 0:
            return _LEVELS[int(level)]
        return np.array(_LEVELS, dtype=object)[level]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        return {**d, "work": list(self.work), "rate": list(self.rate)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curve:
        """Inverse of :meth:`to_dict`; raises ValueError on missing or invalid fields."""
        if not isinstance(d, dict):
            raise ValueError(f"curve must be a mapping, got {type(d).__name__}")
        missing = [k for k in ("work", "rate", "n_points", "rel_rmse") if k not in d]
        if missing:
            raise ValueError(f"curve is missing fields: {', '.join(missing)}")
        try:
            work = tuple(float(x) for x in d["work"])
            rate = tuple(float(x) for x in d["rate"])
            n_points, rel_rmse = int(d["n_points"]), float(d["rel_rmse"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"curve has a non-numeric field: {exc}") from None
        return cls(work, rate, n_points, rel_rmse)


def fit_curve(work: Sequence[float], seconds: Sequence[float], *, overhead_s: float = 0.0,
              bins_per_decade: int = 4) -> Curve:
    """Fit achieved rate vs work from timings, less a fixed per-call ``overhead_s``.

    Points are grouped into geometric bins of work (``bins_per_decade`` per decade);
    each bin gives one knot: the geometric mean of its work and the median of its rates.
    """
    w, s = _check_samples(work, seconds)
    if not (np.isfinite(overhead_s) and overhead_s >= 0):
        raise ValueError(f"overhead_s must be finite and >= 0, got {overhead_s}")
    if bins_per_decade < 1:
        raise ValueError(f"bins_per_decade must be >= 1, got {bins_per_decade}")
    rates = w / np.maximum(s - overhead_s, BUSY_FLOOR * s)
    x = np.log10(w) * bins_per_decade
    edges = np.arange(np.floor(x.min()), np.floor(x.max()) + 2)
    knot_rate = binned_statistic(x, rates, statistic="median", bins=edges).statistic
    knot_x = binned_statistic(x, x, statistic="mean", bins=edges).statistic
    filled = ~np.isnan(knot_rate)
    knot_work = 10 ** (knot_x[filled] / bins_per_decade)
    curve = Curve(tuple(knot_work.tolist()), tuple(knot_rate[filled].tolist()), w.size, 0.0)
    predicted = overhead_s + w / curve(w)
    rel_rmse = float(np.sqrt(np.mean(((predicted - s) / s) ** 2)))
    return Curve(curve.work, curve.rate, curve.n_points, rel_rmse)


def _check_samples(work: Sequence[float], seconds: Sequence[float]) -> tuple[np.ndarray, ...]:
    w, s = np.asarray(work, float), np.asarray(seconds, float)
    if w.ndim != 1 or s.ndim != 1:
        raise ValueError("work and seconds must be 1-D sequences")
    if w.size != s.size:
        raise ValueError(f"work has {w.size} values but seconds has {s.size}")
    if w.size == 0:
        raise ValueError("no samples to fit")
    for name, values in (("work", w), ("seconds", s)):
        bad = values[~(np.isfinite(values) & (values > 0))]
        if bad.size:
            raise ValueError(f"{name} must be finite and > 0, got {bad.tolist()[:5]}")
    return w, s
