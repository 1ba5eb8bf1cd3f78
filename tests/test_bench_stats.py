"""Benchmark statistics: known answers, CI coverage, A/B verdicts, adaptive stopping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from perfcast.bench.stats import (
    Comparison,
    Stats,
    StopRule,
    Verdict,
    bootstrap_median_ci,
    compare,
    format_seconds,
    median_ci_order_stat,
)

MS = 1e-3
SMALL = [x * MS for x in (10, 11, 12, 13, 14, 15, 16, 17, 18, 100)]  # 100 ms is a planted outlier


def timings(seed: int, n: int, noise: float, scale: float = MS) -> np.ndarray:
    """Right-skewed durations: ``scale`` times lognormal noise with median exactly ``scale``."""
    return scale * np.random.default_rng(seed).lognormal(0.0, noise, n)


# --- Stats -----------------------------------------------------------------------------------


def test_stats_known_values_on_small_array():
    s = Stats.from_samples(SMALL)
    assert s.n == 10
    assert s.median == pytest.approx(14.5 * MS)
    assert s.q1 == pytest.approx(12.25 * MS)  # numpy linear: position 2.25
    assert s.q3 == pytest.approx(16.75 * MS)  # position 6.75
    assert s.iqr == pytest.approx(4.5 * MS)
    assert s.min == pytest.approx(10 * MS)
    assert s.max == pytest.approx(100 * MS)
    assert s.p90 == pytest.approx(26.2 * MS)  # position 8.1: 18 + 0.1 * (100 - 18)
    assert s.std == pytest.approx(float(np.std(SMALL, ddof=1)))
    assert s.rel_iqr == pytest.approx(4.5 / 14.5)


def test_outlier_flagged_but_kept():
    s = Stats.from_samples(SMALL)
    assert s.outliers == (9,)
    assert s.samples == tuple(SMALL)
    assert s.mean == pytest.approx(22.6 * MS)  # the outlier still counts in the mean
    assert s.ci95[0] <= s.median <= s.ci95[1]
    assert s.rel_ci_width == pytest.approx((s.ci95[1] - s.ci95[0]) / s.median)


def test_single_sample():
    s = Stats.from_samples([0.5])
    assert (s.n, s.median, s.std, s.ci95, s.outliers) == (1, 0.5, 0.0, (0.5, 0.5), ())


@pytest.mark.parametrize(
    ("samples", "kwargs", "match"),
    [
        ([], {}, "empty"),
        ([1.0, math.nan], {}, "non-finite"),
        ([1.0, math.inf], {}, "non-finite"),
        ([1.0, -0.1], {}, "negative"),
        ([[1.0, 2.0]], {}, "1-D"),
        ([1.0, 2.0], {"confidence": 1.0}, "confidence"),
        ([1.0, 2.0], {"confidence": 0.0}, "confidence"),
        ([1.0, 2.0], {"n_boot": 0}, "n_boot"),
    ],
)
def test_stats_bad_input(samples, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Stats.from_samples(samples, **kwargs)


def test_stats_dict_round_trip():
    s = Stats.from_samples(timings(1, 50, 0.2))
    d = json.loads(json.dumps(s.to_dict()))
    assert isinstance(d["samples"], list)
    assert len(d["samples"]) == 50
    assert Stats.from_dict(d) == s


def test_stats_from_dict_missing_key():
    d = Stats.from_samples(SMALL).to_dict()
    del d["p99"]
    with pytest.raises(ValueError, match="p99"):
        Stats.from_dict(d)


# --- median confidence intervals -------------------------------------------------------------


def coverage(ci_of, trials: int = 300, n: int = 60) -> float:
    """Fraction of seeded lognormal samples whose CI contains the population median (1 ms)."""
    hits = 0
    for seed in range(trials):
        lo, hi = ci_of(timings(seed, n, 0.5))
        hits += lo <= MS <= hi
    return hits / trials


def test_bootstrap_ci_coverage():
    cov = coverage(lambda x: bootstrap_median_ci(x, seed=7))
    assert 0.88 <= cov <= 0.99


def test_order_stat_ci_coverage():
    assert coverage(median_ci_order_stat) >= 0.93


def test_bootstrap_ci_seeded_and_chunked():
    x = timings(3, 100_000, 0.1)  # 100k samples: the resampling runs in several chunks
    ci = bootstrap_median_ci(x, n_boot=60, seed=1)
    assert ci == bootstrap_median_ci(x, n_boot=60, seed=1)
    assert ci[0] < float(np.median(x)) < ci[1]
    assert ci[1] - ci[0] < 0.01 * MS


def test_order_stat_ci_known_ranks():
    x = np.arange(1.0, 61.0)
    # Binomial(60, 1/2): P(B <= 21) = 0.0135 <= 0.025 < P(B <= 22), so ranks 22 and 39 (1-based)
    assert median_ci_order_stat(x) == (22.0, 39.0)
    assert median_ci_order_stat(x[::-1]) == (22.0, 39.0)  # order of measurement is irrelevant
    assert median_ci_order_stat([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)  # n=5: no 95% CI exists
    assert median_ci_order_stat([2.0]) == (2.0, 2.0)


# --- compare ---------------------------------------------------------------------------------


def test_compare_same_distribution():
    c = compare(timings(1, 200, 0.01), timings(2, 200, 0.01))
    assert c.verdict is Verdict.SAME
    assert c.ratio == pytest.approx(1.0, abs=0.01)


def test_compare_slower_and_faster():
    base = timings(1, 200, 0.01)
    slower = compare(base, timings(2, 200, 0.01, scale=1.10 * MS))
    assert slower.verdict is Verdict.SLOWER
    assert slower.ratio == pytest.approx(1.10, abs=0.02)
    assert slower.ratio_ci95[0] > 1.0
    assert slower.speedup == pytest.approx(1 / slower.ratio)
    faster = compare(base, timings(3, 200, 0.01, scale=0.90 * MS))
    assert faster.verdict is Verdict.FASTER
    assert faster.ratio == pytest.approx(0.90, abs=0.02)


def test_compare_noisy_small_samples():
    c = compare(timings(1, 8, 0.4), timings(2, 8, 0.4, scale=1.05 * MS))
    assert c.verdict is Verdict.NOISY


def test_compare_significant_but_negligible_is_same():
    c = compare(timings(1, 2000, 0.01), timings(2, 2000, 0.01, scale=1.01 * MS))
    assert c.p_value < 1e-6
    assert c.verdict is Verdict.SAME


def test_compare_false_positive_rate():
    verdicts = [
        compare(timings(2 * i, 30, 0.1), timings(2 * i + 1, 30, 0.1), n_boot=500).verdict
        for i in range(200)
    ]
    false_positives = sum(v in (Verdict.FASTER, Verdict.SLOWER) for v in verdicts)
    assert false_positives / len(verdicts) <= 0.06


def test_compare_accepts_stats_and_serialises():
    base = Stats.from_samples(timings(1, 40, 0.05))
    c = compare(base, timings(2, 40, 0.05, scale=1.2 * MS))
    assert isinstance(c, Comparison)
    assert c.baseline_median == base.median
    d = json.loads(json.dumps(c.to_dict()))
    assert d["verdict"] == "slower"
    assert d["ratio_ci95"] == list(c.ratio_ci95)


@pytest.mark.parametrize(
    ("baseline", "candidate", "kwargs", "match"),
    [
        ([1.0], [1.0, 2.0], {}, "baseline"),
        ([1.0, 2.0], [1.0], {}, "candidate"),
        ([1.0, 2.0], [1.0, -2.0], {}, "candidate contains negative"),
        ([1.0, 2.0], [1.0, 2.0], {"alpha": 0.0}, "alpha"),
        ([1.0, 2.0], [1.0, 2.0], {"alpha": 1.5}, "alpha"),
        ([1.0, 2.0], [1.0, 2.0], {"min_effect": -0.01}, "min_effect"),
        ([0.0, 0.0], [1.0, 2.0], {}, "baseline median"),
    ],
)
def test_compare_bad_input(baseline, candidate, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(baseline, candidate, **kwargs)


# --- StopRule --------------------------------------------------------------------------------


def run_stream(rule: StopRule, stream: np.ndarray) -> tuple[str, int, float]:
    """Feed samples one at a time (elapsed = their running sum) until the rule stops."""
    samples: list[float] = []
    elapsed = 0.0
    for x in stream:
        samples.append(float(x))
        elapsed += float(x)
        reason = rule.decide(samples, elapsed)
        if reason is not None:
            return reason, len(samples), elapsed
    raise AssertionError("stream ran out before the rule stopped")


def test_quiet_stream_converges_much_sooner_than_noisy():
    reason_q, n_q, _ = run_stream(StopRule(budget_s=1.0), timings(1, 10_000, 0.005))
    reason_n, n_n, _ = run_stream(StopRule(budget_s=1.0), timings(2, 10_000, 0.2))
    assert (reason_q, n_q) == ("converged", 10)
    assert reason_n in ("budget", "max_samples")
    assert n_n > 50 * n_q


def test_noisy_stream_converges_late_with_ample_budget():
    reason, n, _ = run_stream(StopRule(budget_s=100.0), timings(2, 10_000, 0.2))
    assert reason == "converged"
    assert n > 1000


def test_min_samples_and_min_time_respected():
    assert run_stream(StopRule(min_samples=50), timings(1, 1000, 0.005))[:2] == ("converged", 50)
    reason, n, elapsed = run_stream(StopRule(min_time_s=0.03), timings(1, 1000, 0.005))
    assert reason == "converged"
    assert elapsed >= 0.03
    assert 25 <= n <= 35
    # the budget does not cut a run short of min_samples
    assert StopRule(min_samples=10).decide([1.0] * 3, elapsed_s=100.0) is None


def test_budget_and_max_samples_respected():
    reason, _, elapsed = run_stream(
        StopRule(target_rel_ci=1e-6, budget_s=0.05), timings(1, 1000, 0.005)
    )
    assert reason == "budget"
    assert 0.05 <= elapsed < 0.05 + 2 * MS  # stops at the first check past the budget
    rule = StopRule(target_rel_ci=1e-6, max_samples=20)
    assert run_stream(rule, timings(1, 1000, 0.005))[:2] == ("max_samples", 20)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_rel_ci": 0.0}, "target_rel_ci"),
        ({"target_rel_ci": math.nan}, "target_rel_ci"),
        ({"min_samples": 0}, "min_samples"),
        ({"max_samples": 5}, "max_samples"),
        ({"budget_s": 0.0}, "budget_s"),
        ({"budget_s": math.inf}, "budget_s"),
        ({"min_time_s": -1.0}, "min_time_s"),
        ({"min_time_s": 3.0}, "min_time_s"),
    ],
)
def test_stop_rule_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        StopRule(**kwargs)


# --- format_seconds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.234e-3, "1.234 ms"),
        (812e-9, "812 ns"),
        (2.5, "2.50 s"),
        (12.5e-6, "12.5 µs"),
        (0.99996, "1.00 s"),
        (999.96e-6, "1.00 ms"),
        (0.0, "0 s"),
        (-3e-3, "-3.00 ms"),
    ],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_format_seconds_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        format_seconds(math.nan)
