"""The change-point detector on synthetic series with known changes (perfcast.track)."""

from __future__ import annotations

import numpy as np
import pytest

from perfcast.track import DetectorConfig, detect
from perfcast.track.segmentation import (
    hampel,
    optimal_partition,
    prediction_p,
    robust_sigma,
    split_permutation_p,
)

BASE = 1e-3  # 1 ms


def noisy(n: int, noise: float, seed: int) -> np.ndarray:
    """``n`` run medians around 1 ms with log-normal run-to-run noise of ``noise``."""
    return BASE * np.exp(np.random.default_rng(seed).normal(0.0, noise, n))


def test_step_up_reported_at_its_index_as_severe_regression() -> None:
    x = noisy(50, 0.02, seed=1)
    x[25:] *= 1.30
    d = detect(x)
    assert [(c.index, c.kind, c.confirmed) for c in d.changes] == [(25, "step", True)]
    c = d.changes[0]
    assert c.effect == pytest.approx(0.30, abs=0.03)
    assert c.effect_ci95[0] < c.effect < c.effect_ci95[1]
    assert c.effect_ci95[0] > 0.2
    assert c.before == pytest.approx(BASE, rel=0.02)
    assert c.after == pytest.approx(1.3 * BASE, rel=0.02)
    assert c.p_value < 1e-6
    assert (c.start, c.end) == (0, 50)


def test_step_down_reported_as_improvement() -> None:
    x = noisy(40, 0.02, seed=2)
    x[15:] *= 0.85
    d = detect(x)
    assert [c.index for c in d.changes] == [15]
    assert d.changes[0].effect == pytest.approx(-0.15, abs=0.02)


def test_two_steps_each_at_its_index() -> None:
    x = noisy(60, 0.01, seed=3)
    x[20:] *= 1.12
    x[40:] *= 0.70
    d = detect(x)
    assert [c.index for c in d.changes] == [20, 40]
    assert [round(c.effect, 2) for c in d.changes] == [pytest.approx(0.12, abs=0.02),
                                                       pytest.approx(-0.30, abs=0.02)]
    assert [(s.start, s.end) for s in d.segments] == [(0, 20), (20, 40), (40, 60)]


@pytest.mark.parametrize("seed", range(20))
def test_noisy_flat_series_has_no_change(seed: int) -> None:
    assert detect(noisy(50, 0.05, seed=100 + seed)).changes == []


@pytest.mark.parametrize("factor", [3.0, 0.3])
def test_single_outlier_is_not_a_change(factor: float) -> None:
    x = noisy(40, 0.02, seed=4)
    x[18] *= factor
    assert detect(x).changes == []


def test_two_adjacent_outliers_are_not_a_change() -> None:
    x = noisy(40, 0.02, seed=5)
    x[20:22] *= 2.0
    assert detect(x).changes == []


def test_gradual_drift_is_one_drift_over_the_ramp() -> None:
    x = noisy(60, 0.015, seed=6)
    x[20:40] *= np.exp(np.linspace(0.0, np.log(1.3), 20))
    x[40:] *= 1.3
    d = detect(x)
    assert len(d.changes) == 1
    c = d.changes[0]
    assert c.kind == "drift" and c.confirmed
    assert 17 <= c.index <= 22 and 37 <= c.settled <= 42
    assert c.effect == pytest.approx(0.30, abs=0.04)
    assert c.effect_ci95[0] < c.effect < c.effect_ci95[1]
    ramp = [s for s in d.segments if s.first != s.last]
    assert len(ramp) == 1 and ramp[0].last > ramp[0].first


def test_drift_over_the_whole_history() -> None:
    x = noisy(60, 0.02, seed=7) * np.exp(np.linspace(0.0, np.log(1.25), 60))
    d = detect(x)
    assert [c.kind for c in d.changes] == ["drift"]
    assert d.changes[0].effect == pytest.approx(0.25, abs=0.06)


@pytest.mark.parametrize(("step", "severity"), [(1.07, "minor"), (1.15, "moderate"),
                                                (1.40, "severe")])
def test_severity_follows_size(step: float, severity: str) -> None:
    from perfcast.track import DEFAULTS

    x = noisy(40, 0.01, seed=8)
    x[20:] *= step
    d = detect(x, min_effect=DEFAULTS["time"].minor)
    assert [c.index for c in d.changes] == [20]
    assert DEFAULTS["time"].classify(d.changes[0].magnitude) == severity


def test_step_below_min_effect_is_not_reported() -> None:
    x = noisy(40, 0.005, seed=9)
    x[20:] *= 1.03  # clearly significant, but smaller than 5%
    assert detect(x, min_effect=0.05).changes == []
    assert [c.index for c in detect(x, min_effect=0.02).changes] == [20]


def test_noisy_series_needs_a_larger_shift() -> None:
    """An 8% step is highly significant in 400 runs at either noise level, but where the
    runs scatter by 10% it is smaller than the series' own noise and not reported."""
    quiet, loud = noisy(400, 0.01, seed=10), noisy(400, 0.10, seed=10)
    quiet[200:] *= 1.08
    loud[200:] *= 1.08
    dq, dl = detect(quiet), detect(loud)
    assert [c.index for c in dq.changes] == [200]
    assert dq.threshold == 0.05  # the minimum effect
    assert dl.changes == []
    assert dl.threshold == pytest.approx(dl.noise) and 0.09 < dl.noise < 0.12
    blind = detect(loud, config=DetectorConfig(noise_factor=0.0))
    assert [c.index for c in blind.changes] == [pytest.approx(200, abs=15)]


def test_newest_runs_give_an_unconfirmed_change() -> None:
    x = noisy(40, 0.02, seed=11)
    x[-2:] *= 1.3
    d = detect(x)
    assert [(c.index, c.confirmed) for c in d.changes] == [(38, False)]
    assert d.changes[0].effect == pytest.approx(0.3, abs=0.05)
    x1 = noisy(40, 0.02, seed=11)
    x1[-1] *= 1.3  # one newest run alone could be an outlier
    assert detect(x1).changes == []
    assert detect(x, config=DetectorConfig(tail=0)).changes == []


def test_accuracy_series_on_linear_scale() -> None:
    rng = np.random.default_rng(12)
    ape = np.concatenate([0.05 + rng.normal(0, 0.01, 15), 0.15 + rng.normal(0, 0.01, 10)])
    d = detect(np.abs(ape), scale="linear", min_effect=0.02)
    assert [c.index for c in d.changes] == [15]
    assert d.changes[0].effect == pytest.approx(0.10, abs=0.015)


def test_short_constant_and_bad_series() -> None:
    assert detect([1e-3] * 5).note == "too short: 5 point(s), a change needs 6"
    assert detect([1e-3] * 30).changes == []
    with pytest.raises(ValueError, match="NaN"):
        detect([1e-3, float("nan"), 1e-3])
    with pytest.raises(ValueError, match="> 0 on the log scale"):
        detect([1e-3, 0.0, 1e-3])
    with pytest.raises(ValueError, match="scale"):
        detect([1.0, 2.0], scale="sqrt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        DetectorConfig(alpha=0.0)


def test_quantized_step_without_noise() -> None:
    x = np.array([2.0] * 10 + [3.0] * 10)
    d = detect(x)
    assert [c.index for c in d.changes] == [10]
    assert d.changes[0].effect == pytest.approx(0.5)


# -- building blocks ---------------------------------------------------------------------------


def test_optimal_partition_finds_noiseless_steps_and_respects_min_size() -> None:
    z = np.array([0.0] * 8 + [5.0] * 6 + [-3.0] * 7)
    assert optimal_partition(z, penalty=1.0, min_size=3) == [8, 14]
    # the two high points cannot form a segment alone: the best split keeps 3 points on the right
    assert optimal_partition(np.array([0.0] * 8 + [9.0] * 2), penalty=1.0, min_size=3) == [7]
    assert optimal_partition(np.array([0.0] * 8 + [9.0] * 2), penalty=1.0, min_size=2) == [8]


def test_robust_sigma_ignores_a_step_and_hampel_clips_an_outlier() -> None:
    y = np.random.default_rng(13).normal(0.0, 1.0, 400)
    y[200:] += 10.0
    assert robust_sigma(y) == pytest.approx(1.0, rel=0.15)
    spike = np.zeros(20)
    spike[10] = 50.0
    assert hampel(spike, 1.0, 3.0)[10] == 3.0
    assert hampel(np.r_[np.zeros(10), np.ones(10) * 8], 1.0, 3.0).tolist() == \
        [0.0] * 10 + [8.0] * 10  # a step survives the filter


def test_split_permutation_p_accounts_for_the_search() -> None:
    rng = np.random.default_rng(14)
    strong = np.r_[rng.normal(0, 1, 20), rng.normal(4, 1, 20)]
    assert split_permutation_p(strong, 3, 999, alpha=0.001) < 1e-6
    # Under no change, the permutation p-value is roughly uniform: about 10% below 0.1.
    ps = [split_permutation_p(rng.normal(0, 1, 30), 3, 199, alpha=0.5) for _ in range(200)]
    assert 0.04 < np.mean(np.array(ps) < 0.1) < 0.17


def test_prediction_p_matches_a_hand_computed_t() -> None:
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, s = 1.5811
    new = np.array([9.0])
    t = 6.0 / (1.5811388 * np.sqrt(1 + 1 / 5))
    from scipy.stats import t as student

    assert prediction_p(base, new) == pytest.approx(2 * student.sf(t, 4), rel=1e-6)


def test_welch_p_matches_scipy() -> None:
    from scipy.stats import ttest_ind

    from perfcast.track.segmentation import welch_p

    rng = np.random.default_rng(15)
    a, b = rng.normal(0, 1, 7), rng.normal(1, 2, 12)
    assert welch_p(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert welch_p(np.ones(4), np.full(5, 2.0)) == 0.0
    assert welch_p(np.ones(4), np.ones(5)) == 1.0
