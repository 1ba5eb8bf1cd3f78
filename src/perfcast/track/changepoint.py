"""Change points in one history: steps that are significant and large, drifts, a pending tail.

The series (one value per run, oldest first) is transformed (``log`` for times, so a step is
a relative change; ``linear`` for errors that are already ratios), clipped against outliers
(Hampel filter: ``hampel_k`` robust sigmas around a 5-point running median) and scaled by its
own noise, estimated from the MAD of successive differences so that steps do not inflate it.

1. **Candidates**: the step function minimizing squared error + ``penalty_factor * log(n)``
   per step (exact dynamic programming, segments of ``min_size`` points or more).
2. **Tests**: a step stays only if the two segments around it differ by a Welch t-test at
   ``alpha``, their medians by at least ``max(min_effect, noise_factor * noise)``, and the
   best split of the two segments together is significant at ``alpha`` allowing for the
   search over split positions (a permutation test, as E-divisive does, or the Bonferroni
   bound over the positions when that is already far below ``alpha``). The weakest failing
   step is merged away and the others re-tested, until all pass.
3. **Drift**: a ramp (flat, linear, flat; at least ``2 * min_size`` points long) replaces the
   steps of the whole series, or a run of two or more same-direction steps, when its BIC
   beats theirs by at least one step's penalty, a Kendall trend test is below ``alpha`` and
   its rise is large enough. It is reported once, as kind ``drift``.
4. **Tail**: the newest 2..``tail`` points after the last change, too few to confirm a step,
   are compared with the level before them (prediction-interval t-test at ``alpha``, every one
   of them beyond the effect threshold on the same side): an *unconfirmed* step. One newest
   point alone is never reported; it cannot be told from an outlier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np

from perfcast.track.drift import Ramp, best_ramp, bootstrap_rise
from perfcast.track.segmentation import (
    hampel,
    kendall_p,
    optimal_partition,
    prediction_p,
    robust_sigma,
    split_permutation_p,
    welch_p,
)

Scale = Literal["log", "linear"]
SCALES: tuple[str, ...] = ("log", "linear")
_MIN_BASE = 5  # points of history an unconfirmed (tail) change is judged against
_MIN_DRIFT = 8  # fewest points in which a drift is looked for


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :func:`detect`; the defaults give < 1% false alarms on flat series."""

    alpha: float = 0.001
    min_size: int = 3
    penalty_factor: float = 3.0
    noise_factor: float = 1.0
    permutations: int = 4999
    tail: int = 4
    hampel_k: float = 3.0
    drift: bool = True
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        checks = ((0.0 < self.alpha < 1.0, "alpha must be in (0, 1)"),
                  (self.min_size >= 2, "min_size must be >= 2"),
                  (self.penalty_factor > 0, "penalty_factor must be > 0"),
                  (math.isfinite(self.noise_factor) and self.noise_factor >= 0,
                   "noise_factor must be finite and >= 0"),
                  (self.permutations >= 1, "permutations must be >= 1"),
                  (self.tail >= 0, "tail must be >= 0"),
                  (self.hampel_k > 0, "hampel_k must be > 0"),
                  (self.n_boot >= 1, "n_boot must be >= 1"))
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; got {self}")


@dataclass(frozen=True)
class Change:
    """One change of level.

    A step is at ``index`` (the first point at the new level; ``settled == index``); a drift
    starts moving after ``index`` and reaches the new level at ``settled``. ``before`` and
    ``after`` are the levels (segment medians of a step, the fitted plateaus of a drift), and
    ``start:end`` the points the comparison used. ``effect`` is ``after / before - 1`` on the
    log scale and ``after - before`` on the linear one: positive means the value went up.
    ``confirmed`` is False for a change seen only in the newest few points.
    """

    index: int
    settled: int
    kind: Literal["step", "drift"]
    confirmed: bool
    before: float
    after: float
    effect: float
    effect_ci95: tuple[float, float]
    p_value: float
    start: int
    end: int

    @property
    def magnitude(self) -> float:
        return abs(self.effect)


@dataclass(frozen=True)
class Segment:
    """Points ``start:end``, going from level ``first`` to ``last`` (equal when flat)."""

    start: int
    end: int
    first: float
    last: float


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found in one series.

    ``noise`` is the series' robust sigma in effect units (relative on the log scale);
    ``threshold`` the smallest effect reported, ``max(min_effect, noise_factor * noise)``.
    """

    n: int
    scale: str
    noise: float
    threshold: float
    changes: list[Change] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    note: str | None = None


def min_points(config: DetectorConfig) -> int:
    """Fewest points in which a change can be reported at all."""
    return 2 * config.min_size


def detect(values: Sequence[float], *, scale: Scale = "log", min_effect: float = 0.05,
           config: DetectorConfig | None = None) -> Detection:
    """Change points of ``values`` (oldest first); see the module docstring for the method."""
    config = config or DetectorConfig()
    raw = np.asarray(values, dtype=np.float64)
    _check(raw, scale, min_effect)
    n = raw.size
    y = np.log(raw) if scale == "log" else raw.copy()
    sigma = robust_sigma(y)
    noise = _to_effect(sigma, scale)
    threshold = max(min_effect, config.noise_factor * noise)
    if n < min_points(config) or float(np.ptp(y)) == 0.0:
        note = (f"too short: {n} point(s), a change needs {min_points(config)}"
                if n < min_points(config) else None)
        return Detection(n, scale, noise, threshold, segments=_segments(raw, []), note=note)
    fit = _Fit(raw, y, hampel(y, sigma, config.hampel_k), sigma, scale, threshold, config)
    changes = fit.steps()
    if config.drift:
        changes = fit.with_drifts(changes)
    tail = fit.tail(changes[-1].settled if changes else 0)
    if tail is not None:
        changes.append(tail)
    return Detection(n, scale, noise, threshold, changes, _segments(raw, changes))


class _Fit:
    """One series being analyzed: raw values, transformed, clipped, and the settings."""

    def __init__(self, raw: np.ndarray, y: np.ndarray, clipped: np.ndarray, sigma: float,
                 scale: str, threshold: float, config: DetectorConfig) -> None:
        self.raw, self.y, self.clipped, self.scale = raw, y, clipped, scale
        self.unit = sigma if sigma > 0 else 1e-12 * max(1.0, float(np.max(np.abs(y))))
        self.threshold, self.config = threshold, config
        self.rng = np.random.default_rng(config.seed)
        self.log_n = math.log(raw.size)

    def steps(self) -> list[Change]:
        """Candidate steps, then the tests; each survivor as a confirmed step."""
        cfg = self.config
        z = (self.clipped - np.median(self.clipped)) / self.unit
        cps = optimal_partition(z, cfg.penalty_factor * self.log_n, cfg.min_size)
        p_values: dict[tuple[int, int, int], float] = {}
        while cps:
            bounds = [0, *cps, self.raw.size]
            weakest, weakest_key = -1, (-1.0, 0.0)
            for i, c in enumerate(cps):
                key = (bounds[i], c, bounds[i + 2])
                p, size = self._step_test(key, p_values)
                if p < cfg.alpha and size >= self.threshold:
                    continue
                if (p, -size) > weakest_key:
                    weakest, weakest_key = i, (p, -size)
            if weakest < 0:
                break
            del cps[weakest]
        bounds = [0, *cps, self.raw.size]
        return [self._step(bounds[i], c, bounds[i + 2], p_values[bounds[i], c, bounds[i + 2]])
                for i, c in enumerate(cps)]

    def _step_test(self, key: tuple[int, int, int],
                   cache: dict[tuple[int, int, int], float]) -> tuple[float, float]:
        start, c, end = key
        size = abs(_effect(float(np.median(self.raw[start:c])),
                           float(np.median(self.raw[c:end])), self.scale))
        if key not in cache:
            p = welch_p(self.clipped[start:c], self.clipped[c:end])
            if p < self.config.alpha and size >= self.threshold:
                p = max(p, split_permutation_p(self.clipped[start:end], self.config.min_size,
                                               self.config.permutations,
                                               alpha=self.config.alpha, seed=self.config.seed))
            cache[key] = p
        return cache[key], size

    def _step(self, start: int, c: int, end: int, p: float) -> Change:
        before, after = float(np.median(self.raw[start:c])), float(np.median(self.raw[c:end]))
        return Change(index=c, settled=c, kind="step", confirmed=True, before=before,
                      after=after, effect=_effect(before, after, self.scale),
                      effect_ci95=self._median_ci(self.raw[start:c], self.raw[c:end]),
                      p_value=p, start=start, end=end)

    def _median_ci(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """Percentile-bootstrap 95% CI of the effect between the medians of ``a`` and ``b``."""
        n_boot = self.config.n_boot
        med_a = np.median(a[self.rng.integers(0, a.size, size=(n_boot, a.size))], axis=1)
        med_b = np.median(b[self.rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
        effects = med_b / med_a - 1.0 if self.scale == "log" else med_b - med_a
        lo, hi = np.quantile(effects, [0.025, 0.975])
        return float(lo), float(hi)

    # -- drift ------------------------------------------------------------------------------

    def with_drifts(self, steps: list[Change]) -> list[Change]:
        """``steps`` with the whole series, or runs of same-direction steps, as drifts."""
        n = self.raw.size
        whole = self._ramp_change(0, n, range(0, n - 1), range(1, n), steps)
        if whole is not None:
            return [whole]
        out: list[Change] = []
        i = 0
        while i < len(steps):
            j = i
            while j + 1 < len(steps) and steps[j + 1].effect * steps[i].effect > 0:
                j += 1
            run = steps[i:j + 1]
            drift = None
            if len(run) >= 2:
                a, b = run[0].start, run[-1].end
                drift = self._ramp_change(a, b, range(0, run[0].index - a + 1),
                                          range(run[-1].index - a, b - a), run)
            out.extend([drift] if drift is not None else run)
            i = j + 1
        return out

    def _ramp_change(self, a: int, b: int, starts: range, ends: range,
                     steps: list[Change]) -> Change | None:
        """A drift over ``a:b`` if a ramp beats the ``steps`` inside it (or a flat level)."""
        if b - a < _MIN_DRIFT:
            return None
        window = self.clipped[a:b]
        p = kendall_p(window)
        if not p < self.config.alpha:
            return None
        ramp = best_ramp(window, starts, ends, min_length=2 * self.config.min_size)
        if ramp is None:
            return None
        bounds = [a, *(s.index for s in steps), b]
        sse_steps = sum(float(np.sum((self.clipped[u:v] - self.clipped[u:v].mean()) ** 2))
                        for u, v in pairwise(bounds))
        bic_steps = sse_steps / self.unit**2 + (2 * len(steps) + 1) * self.log_n
        bic_ramp = ramp.sse / self.unit**2 + 4 * self.log_n
        if bic_ramp + self.config.penalty_factor * self.log_n >= bic_steps:
            return None  # a ramp must beat the steps by as much as one more step costs
        return self._drift(a, b, ramp, p)

    def _drift(self, a: int, b: int, ramp: Ramp, p: float) -> Change | None:
        before, after = self._level(ramp.level), self._level(ramp.level + ramp.rise)
        effect = _effect(before, after, self.scale)
        if abs(effect) < self.threshold:
            return None
        lo, hi = bootstrap_rise(self.clipped[a:b], ramp, self.config.n_boot, self.rng)
        return Change(index=a + ramp.s, settled=a + ramp.e, kind="drift", confirmed=True,
                      before=before, after=after, effect=effect,
                      effect_ci95=(_to_effect(lo, self.scale), _to_effect(hi, self.scale)),
                      p_value=p, start=a, end=b)

    def _level(self, value: float) -> float:
        return math.exp(value) if self.scale == "log" else value

    # -- newest points ----------------------------------------------------------------------

    def tail(self, since: int) -> Change | None:
        """An unconfirmed step in the newest 2..tail points after ``since``; the largest wins."""
        raw, n = self.raw, self.raw.size
        for r in range(min(self.config.tail, n - since - _MIN_BASE), 1, -1):
            cut = n - r
            level = float(np.median(raw[since:cut]))
            effects = np.array([_effect(level, float(v), self.scale) for v in raw[cut:]])
            if not (np.all(effects >= self.threshold) or np.all(effects <= -self.threshold)):
                continue
            p = prediction_p(self.y[since:cut], self.y[cut:])
            if p >= self.config.alpha:
                continue
            after = float(np.median(raw[cut:]))
            return Change(index=cut, settled=cut, kind="step", confirmed=False, before=level,
                          after=after, effect=_effect(level, after, self.scale),
                          effect_ci95=self._median_ci(raw[since:cut], raw[cut:]), p_value=p,
                          start=since, end=n)
        return None


def _check(raw: np.ndarray, scale: str, min_effect: float) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if raw.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence, got shape {raw.shape}")
    if not np.isfinite(raw).all():
        raise ValueError("values contain NaN or infinity")
    if scale == "log" and (raw <= 0).any():
        raise ValueError("values must be > 0 on the log scale (times); use scale='linear'")
    if not (math.isfinite(min_effect) and min_effect >= 0):
        raise ValueError(f"min_effect must be finite and >= 0, got {min_effect}")


def _to_effect(delta: float, scale: str) -> float:
    return math.expm1(delta) if scale == "log" else delta


def _effect(before: float, after: float, scale: str) -> float:
    return after / before - 1.0 if scale == "log" else after - before


def _segments(raw: np.ndarray, changes: list[Change]) -> list[Segment]:
    """Flat pieces between changes (their medians) and the ramps of drifts."""
    out: list[Segment] = []
    position = 0
    for change in changes:
        if change.kind == "step":
            if change.index > position:
                out.append(_flat(raw, position, change.index))
            position = change.index
        else:
            if change.index > position:
                out.append(_flat(raw, position, change.index))
            out.append(Segment(change.index, change.settled + 1, change.before, change.after))
            position = change.settled + 1
    if raw.size > position:
        out.append(_flat(raw, position, raw.size))
    return out


def _flat(raw: np.ndarray, start: int, end: int) -> Segment:
    level = float(np.median(raw[start:end]))
    return Segment(start, end, level, level)
