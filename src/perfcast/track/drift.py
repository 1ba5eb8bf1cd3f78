"""Gradual drift: a ramp between two levels, fitted by least squares.

The ramp over a window of ``L`` points is ``level + rise * x(t)`` with
``x(t) = clip((t - s) / (e - s), 0, 1)``: flat before ``s``, linear from ``s`` to ``e``, flat
after. ``s = 0, e = L - 1`` is a straight line over the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_PAIRS = 2500  # (start, end) pairs tried per window; the grid thins out beyond this


@dataclass(frozen=True)
class Ramp:
    """A fitted ramp in window coordinates: flat at ``level`` until ``s``, then ``rise`` over
    ``s..e`` (``x`` reaches 1 at ``e``); ``sse`` is its squared error."""

    s: int
    e: int
    level: float
    rise: float
    sse: float


def ramp_regressor(size: int, s: int, e: int) -> np.ndarray:
    """``x(t)`` of a ramp starting at ``s`` and reaching 1 at ``e`` (``s < e``)."""
    t = np.arange(size, dtype=np.float64)
    return np.clip((t - s) / (e - s), 0.0, 1.0)


def fit_ramp(y: np.ndarray, s: int, e: int) -> Ramp:
    """Least-squares ramp with fixed ``s < e`` through ``y``."""
    return _fit_many(y, np.array([[s, e]]))


def best_ramp(y: np.ndarray, starts: range, ends: range, min_length: int = 1) -> Ramp | None:
    """The least-squares ramp over ``s`` in ``starts``, ``e`` in ``ends``, ``e - s >= min_length``
    (a long grid is thinned evenly)."""
    pairs = np.array([(s, e) for s in _thin(starts) for e in _thin(ends)
                      if e - s >= max(1, min_length)])
    return _fit_many(y, pairs) if pairs.size else None


def bootstrap_rise(y: np.ndarray, ramp: Ramp, n_boot: int,
                   rng: np.random.Generator) -> tuple[float, float]:
    """Percentile 95% CI of ``rise`` with ``s, e`` fixed, resampling the points in pairs."""
    x = ramp_regressor(y.size, ramp.s, ramp.e)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    xs, ys = x[idx], y[idx]
    xc = xs - xs.mean(axis=1, keepdims=True)
    sxx = np.sum(xc * xc, axis=1)
    sxy = np.sum(xc * (ys - ys.mean(axis=1, keepdims=True)), axis=1)
    rises = sxy[sxx > 0] / sxx[sxx > 0]
    if rises.size == 0:
        return ramp.rise, ramp.rise
    lo, hi = np.quantile(rises, [0.025, 0.975])
    return float(lo), float(hi)


def _fit_many(y: np.ndarray, pairs: np.ndarray) -> Ramp:
    t = np.arange(y.size, dtype=np.float64)
    s = pairs[:, :1].astype(np.float64)
    e = pairs[:, 1:].astype(np.float64)
    x = np.clip((t[None, :] - s) / (e - s), 0.0, 1.0)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    sxx = np.sum(xc * xc, axis=1)
    sxy = xc @ yc
    with np.errstate(divide="ignore", invalid="ignore"):
        sse = np.where(sxx > 0, float(yc @ yc) - sxy * sxy / sxx, float(yc @ yc))
    i = int(np.argmin(sse))
    rise = float(sxy[i] / sxx[i]) if sxx[i] > 0 else 0.0
    level = float(y.mean() - rise * x[i].mean())
    return Ramp(int(pairs[i, 0]), int(pairs[i, 1]), level, rise, float(max(sse[i], 0.0)))


def _thin(values: range) -> range:
    """Every value, or an evenly spaced subset so that pairs stay under ``_MAX_PAIRS``."""
    per_side = int(np.sqrt(_MAX_PAIRS))
    step = max(1, -(-len(values) // per_side))
    return values[::step]
