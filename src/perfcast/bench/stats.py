"""Statistics of benchmark timings: summaries, median CIs, A/B comparison, adaptive stopping.

Samples are durations in seconds. They are typically right-skewed with occasional outliers, so
everything here is built on the median and on distribution-free or bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.stats import binom, mannwhitneyu

_CHUNK_ELEMENTS = 1 << 22  # resampled values held at once by the bootstrap (~32 MiB of float64)
_TUKEY_K = 1.5
_RATIO_CONFIDENCE = 0.95
_SEQUENCE_FIELDS = frozenset({"samples", "ci95", "outliers"})  # Stats fields that are not floats


def _as_samples(samples: Any, name: str = "samples") -> np.ndarray:
    """Validate durations and return them as a 1-D float64 array."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of seconds, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if (arr < 0).any():
        raise ValueError(f"{name} contains negative durations")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_n_boot(n_boot: int) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _relative(width: float, median: float) -> float:
    """``width / median``; 0 when both are 0, inf when only the median is 0."""
    if median > 0:
        return width / median
    return 0.0 if width == 0 else math.inf


def _bootstrap_medians(arr: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n_boot`` resamples of ``arr``, drawn in chunks to bound memory."""
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // arr.size)
    medians = np.empty(n_boot)
    for start in range(0, n_boot, rows_per_chunk):
        rows = min(rows_per_chunk, n_boot - start)
        idx = rng.integers(0, arr.size, size=(rows, arr.size))
        medians[start : start + rows] = np.median(arr[idx], axis=1)
    return medians


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)


def bootstrap_median_ci(
    samples: Sequence[float], *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median (seeded; memory-bounded for large samples)."""
    arr = _as_samples(samples)
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    medians = _bootstrap_medians(arr, n_boot, np.random.default_rng(seed))
    return _percentile_interval(medians, confidence)


def _order_stat_index(n: int, confidence: float) -> int:
    """0-based index k so that [x_(k), x_(n-1-k)] covers the median at ``confidence``; -1 if none.

    P(x_(k) <= median <= x_(n-1-k)) = 1 - 2 * P(B <= k) with B ~ Binomial(n, 1/2).
    """
    tail = (1.0 - confidence) / 2.0
    k = int(binom.ppf(tail, n, 0.5))  # smallest k with P(B <= k) >= tail
    if binom.cdf(k, n, 0.5) > tail * (1.0 + 1e-12):
        k -= 1
    return k


def median_ci_order_stat(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from binomial order statistics (conservative, O(n)).

    For n too small to reach ``confidence`` (n < 6 at 95%) this is (min, max).
    """
    arr = _as_samples(samples)
    _check_confidence(confidence)
    k = max(_order_stat_index(arr.size, confidence), 0)
    lo_hi = np.partition(arr, (k, arr.size - 1 - k))
    return float(lo_hi[k]), float(lo_hi[arr.size - 1 - k])


@dataclass(frozen=True)
class Stats:
    """Summary of a series of timings; outliers are flagged by index, never dropped.

    Quantiles use NumPy's default (linear) method, ``std`` is the sample std (ddof=1, 0 for n=1)
    and ``ci95`` is the percentile-bootstrap CI of the median at the requested confidence.
    """

    samples: tuple[float, ...]
    median: float
    mean: float
    std: float
    min: float
    max: float
    q1: float
    q3: float
    iqr: float
    p90: float
    p99: float
    ci95: tuple[float, float]
    outliers: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def rel_iqr(self) -> float:
        return _relative(self.iqr, self.median)

    @property
    def rel_ci_width(self) -> float:
        return _relative(self.ci95[1] - self.ci95[0], self.median)

    @classmethod
    def from_samples(
        cls,
        samples: Sequence[float],
        *,
        confidence: float = 0.95,
        n_boot: int = 2000,
        seed: int = 0,
    ) -> Stats:
        """Summarise durations in seconds, kept in measurement order."""
        arr = _as_samples(samples)
        quantiles = np.quantile(arr, [0.25, 0.5, 0.75, 0.9, 0.99])
        q1, median, q3, p90, p99 = (float(q) for q in quantiles)
        iqr = q3 - q1
        fences = (q1 - _TUKEY_K * iqr, q3 + _TUKEY_K * iqr)
        outliers = np.flatnonzero((arr < fences[0]) | (arr > fences[1]))
        return cls(
            samples=tuple(arr.tolist()),
            median=median,
            mean=float(arr.mean()),
            std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            min=float(arr.min()),
            max=float(arr.max()),
            q1=q1,
            q3=q3,
            iqr=iqr,
            p90=p90,
            p99=p99,
            ci95=bootstrap_median_ci(arr, confidence=confidence, n_boot=n_boot, seed=seed),
            outliers=tuple(outliers.tolist()),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats and lists) including the samples."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in d]
        if missing:
            raise ValueError(f"Stats dict lacks keys: {', '.join(missing)}")
        scalars = {name: float(d[name]) for name in names if name not in _SEQUENCE_FIELDS}
        return cls(
            samples=tuple(float(x) for x in d["samples"]),
            ci95=(float(d["ci95"][0]), float(d["ci95"][1])),
            outliers=tuple(int(i) for i in d["outliers"]),
            **scalars,
        )


class Verdict(StrEnum):
    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"
    NOISY = "too noisy"


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline timings; ``ratio`` > 1 means the candidate is slower."""

    baseline_median: float
    candidate_median: float
    ratio: float
    ratio_ci95: tuple[float, float]
    p_value: float
    verdict: Verdict
    alpha: float
    min_effect: float

    @property
    def speedup(self) -> float:
        return self.baseline_median / self.candidate_median

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the verdict is its string value."""
        d = asdict(self)
        d["ratio_ci95"] = list(self.ratio_ci95)
        d["verdict"] = self.verdict.value
        return d


def _verdict(
    ratio: float, ci: tuple[float, float], p_value: float, alpha: float, min_effect: float
) -> Verdict:
    significant = p_value < alpha
    large = abs(ratio - 1.0) >= min_effect
    if significant and large and (ci[0] > 1.0 or ci[1] < 1.0):
        return Verdict.FASTER if ratio < 1.0 else Verdict.SLOWER
    if 1.0 / (1.0 + min_effect) <= ci[0] and ci[1] <= 1.0 + min_effect:
        return Verdict.SAME
    if significant and not large:
        return Verdict.SAME
    return Verdict.NOISY


def _side(samples: Stats | Sequence[float], name: str) -> np.ndarray:
    arr = _as_samples(samples.samples if isinstance(samples, Stats) else samples, name)
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {arr.size}")
    return arr


def compare(
    baseline: Stats | Sequence[float],
    candidate: Stats | Sequence[float],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.03,
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare two timing series by the ratio of medians (candidate / baseline).

    ``ratio_ci95`` is a 95% percentile-bootstrap CI of the ratio, resampling each side
    independently; ``p_value`` is a two-sided Mann-Whitney U test. Verdict:

    - p < alpha, |ratio - 1| >= min_effect and the CI excludes 1 -> FASTER (ratio < 1) or SLOWER;
    - else the whole CI within [1/(1+min_effect), 1+min_effect] -> SAME (any effect is too small);
    - else p < alpha but |ratio - 1| < min_effect -> SAME;
    - else NOISY: the data still allow an effect >= min_effect either way.
    """
    base = _side(baseline, "baseline")
    cand = _side(candidate, "candidate")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (math.isfinite(min_effect) and min_effect >= 0.0):
        raise ValueError(f"min_effect must be finite and >= 0, got {min_effect}")
    _check_n_boot(n_boot)
    base_median, cand_median = float(np.median(base)), float(np.median(cand))
    if base_median == 0.0:
        raise ValueError("baseline median is 0 s; the ratio of medians is undefined")
    rng = np.random.default_rng(seed)
    base_boot = _bootstrap_medians(base, n_boot, rng)
    cand_boot = _bootstrap_medians(cand, n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_ci = _percentile_interval(cand_boot / base_boot, _RATIO_CONFIDENCE)
    ratio = cand_median / base_median
    p_value = float(mannwhitneyu(base, cand, alternative="two-sided").pvalue)
    return Comparison(
        baseline_median=base_median,
        candidate_median=cand_median,
        ratio=ratio,
        ratio_ci95=ratio_ci,
        p_value=p_value,
        verdict=_verdict(ratio, ratio_ci, p_value, alpha, min_effect),
        alpha=alpha,
        min_effect=min_effect,
    )


@dataclass(frozen=True)
class StopRule:
    """When adaptive repetition stops.

    Checked in order: ``max_samples`` reached -> "max_samples"; fewer than ``min_samples`` ->
    continue (min_samples is a floor even for the budget); relative width of the order-statistic
    95% CI of the median <= ``target_rel_ci`` and at least ``min_time_s`` elapsed -> "converged";
    ``budget_s`` elapsed -> "budget".
    """

    target_rel_ci: float = 0.02
    min_samples: int = 10
    max_samples: int = 100_000
    budget_s: float = 2.0
    min_time_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_rel_ci) and self.target_rel_ci > 0):
            raise ValueError(f"target_rel_ci must be finite and > 0, got {self.target_rel_ci}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        if self.max_samples < self.min_samples:
            raise ValueError(
                f"max_samples must be >= min_samples ({self.min_samples}), got {self.max_samples}"
            )
        if not (math.isfinite(self.budget_s) and self.budget_s > 0):
            raise ValueError(f"budget_s must be finite and > 0, got {self.budget_s}")
        if not 0 <= self.min_time_s <= self.budget_s:
            raise ValueError(
                f"min_time_s must be in [0, budget_s={self.budget_s}], got {self.min_time_s}"
            )

    def decide(self, samples: Sequence[float], elapsed_s: float) -> str | None:
        """None to keep sampling, else the reason to stop: "converged", "budget", "max_samples"."""
        n = len(samples)
        if n >= self.max_samples:
            return "max_samples"
        if n < self.min_samples:
            return None
        if elapsed_s >= self.min_time_s and self._rel_ci_width(samples) <= self.target_rel_ci:
            return "converged"
        if elapsed_s >= self.budget_s:
            return "budget"
        return None

    @staticmethod
    def _rel_ci_width(samples: Sequence[float]) -> float:
        lo, hi = median_ci_order_stat(samples)
        return _relative(hi - lo, float(np.median(samples)))


_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def format_seconds(s: float) -> str:
    """Human-readable duration with 3-4 significant digits: 1.234 ms, 812 ns, 2.50 s."""
    if not math.isfinite(s):
        raise ValueError(f"duration must be finite, got {s}")
    if s == 0:
        return "0 s"
    rounded = float(f"{abs(s):.4g}")  # round first so 999.96 µs becomes 1.00 ms
    scale, unit = next(((k, u) for k, u in _TIME_UNITS if rounded >= k), _TIME_UNITS[-1])
    value = rounded / scale
    decimals = max(0, 3 - math.floor(math.log10(value)))
    text = f"{value:.{decimals}f}"
    while "." in text and text.endswith("0") and len(text.replace(".", "").lstrip("0")) > 3:
        text = text[:-1]
    sign = "-" if s < 0 else ""
    return f"{sign}{text.rstrip('.')} {unit}"
