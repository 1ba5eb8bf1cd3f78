"""Pure array functions behind the change-point detector: noise, outlier clipping, step fitting
and the significance tests of a step."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its sigma
_HAMPEL_WINDOW = 2  # points each side of the running median
_PERM_ELEMENTS = 1 << 21  # shuffled values held at once by the permutation test


def robust_sigma(y: np.ndarray) -> float:
    """Noise sigma of a series from the MAD of its first differences (ignores level steps)."""
    if y.size < 3:
        return float(np.std(y, ddof=1)) if y.size > 1 else 0.0
    d = np.diff(y)
    return float(_MAD_TO_SIGMA * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def hampel(y: np.ndarray, sigma: float, k: float) -> np.ndarray:
    """``y`` clipped to ``k * sigma`` around its 5-point running median (shorter at the ends)."""
    if sigma <= 0:
        return y.copy()
    padded = np.pad(y, _HAMPEL_WINDOW, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * _HAMPEL_WINDOW + 1)
    med = np.nanmedian(windows, axis=1)
    return np.clip(y, med - k * sigma, med + k * sigma)


def optimal_partition(z: np.ndarray, penalty: float, min_size: int) -> list[int]:
    """Change indices minimizing within-segment squared error + ``penalty`` per change.

    Every segment has at least ``min_size`` points. Exact dynamic programming in O(n²)
    (optimal partitioning: the objective PELT solves with pruning).
    """
    n = z.size
    if n < 2 * min_size:
        return []
    s1 = np.concatenate([[0.0], np.cumsum(z)])
    s2 = np.concatenate([[0.0], np.cumsum(z * z)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)
    for t in range(min_size, n + 1):
        s = np.arange(0, t - min_size + 1)
        s = s[(s == 0) | (s >= min_size)]
        cost = (s2[t] - s2[s]) - (s1[t] - s1[s]) ** 2 / (t - s)
        total = best[s] + cost + penalty
        i = int(np.argmin(total))
        best[t], last[t] = total[i], s[i]
    cps: list[int] = []
    t = n
    while last[t] > 0:
        t = int(last[t])
        cps.append(t)
    return sorted(cps)


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; 0 for two constant segments at different levels."""
    va = float(np.var(a, ddof=1)) / a.size if a.size > 1 else 0.0
    vb = float(np.var(b, ddof=1)) / b.size if b.size > 1 else 0.0
    diff = float(np.mean(b) - np.mean(a))
    if va + vb == 0.0:
        return 0.0 if diff != 0.0 else 1.0
    dof = (va + vb) ** 2 / ((va * va / (a.size - 1) if va else 0.0)
                            + (vb * vb / (b.size - 1) if vb else 0.0))
    return float(2.0 * sps.t.sf(abs(diff) / math.sqrt(va + vb), dof))


def split_permutation_p(window: np.ndarray, min_size: int, permutations: int, *,
                        alpha: float, seed: int = 0) -> float:
    """P-value of the best split of ``window`` into two levels, allowing for the search.

    The statistic is the largest drop in squared error over all splits leaving at least
    ``min_size`` points on each side (what the step fit maximizes). When the Bonferroni bound
    over the ``K`` split positions, ``K`` times the pooled t-test p-value of the best split,
    is already below ``alpha / 100``, that bound is returned. Otherwise the maximum is
    recomputed on up to ``permutations`` (at least ``5 / alpha``) shuffled copies, so picking
    the split that looks best does not bias the p-value (as in E-divisive); shuffling stops
    early once p >= ``alpha`` is certain.
    """
    size = window.size
    if size < 2 * min_size:
        raise ValueError(f"a window of {size} points has no split with {min_size} per side")
    observed = float(_best_split_drop(window[None, :], min_size)[0])
    splits = size - 2 * min_size + 1
    bound = splits * _drop_p(window, observed)
    if bound < alpha / 100:
        return bound
    rng = np.random.default_rng([seed, size])
    permutations = max(permutations, math.ceil(5.0 / alpha) - 1)
    stop = math.ceil(alpha * (permutations + 1))  # this many exceedances mean p >= alpha
    exceed, done = 0, 0
    rows = min(permutations, max(64, _PERM_ELEMENTS // size))
    while done < permutations and exceed < stop:
        block = np.broadcast_to(window, (min(rows, permutations - done), size))
        drops = _best_split_drop(rng.permuted(block, axis=1), min_size)
        exceed += int(np.sum(drops >= observed * (1 - 1e-12)))
        done += block.shape[0]
    if done < permutations:
        return (1 + exceed) / (1 + done)
    return (1 + exceed) / (1 + permutations)


def _drop_p(window: np.ndarray, drop: float) -> float:
    """Pooled two-sample t-test p-value of a split whose squared-error drop is ``drop``."""
    total = float(np.sum((window - window.mean()) ** 2))
    rest = total - drop
    dof = window.size - 2
    if rest <= 0:
        return 0.0 if drop > 0 else 1.0
    return float(sps.f.sf(drop / (rest / dof), 1, dof))


def _best_split_drop(rows: np.ndarray, min_size: int) -> np.ndarray:
    """Per row, the largest k(L-k)/L * (mean_right - mean_left)² over the splits k."""
    size = rows.shape[1]
    k = np.arange(min_size, size - min_size + 1)
    csum = np.cumsum(rows, axis=1)
    left = csum[:, k - 1]
    diff = (csum[:, -1:] - left) / (size - k) - left / k
    return np.max(diff * diff * k * (size - k) / size, axis=1)


def prediction_p(base: np.ndarray, new: np.ndarray) -> float:
    """P-value that the mean of ``new`` comes from the distribution ``base`` was drawn from.

    t = (mean(new) - mean(base)) / (s_base * sqrt(1/r + 1/m)) with m - 1 degrees of freedom:
    the prediction-interval test, usable for a handful of new points.
    """
    m, r = base.size, new.size
    s = float(np.std(base, ddof=1))
    diff = float(np.mean(new) - np.mean(base))
    if s == 0.0:
        return 0.0 if diff != 0.0 else 1.0
    t = diff / (s * math.sqrt(1.0 / r + 1.0 / m))
    return float(2.0 * sps.t.sf(abs(t), df=m - 1))


def kendall_p(y: np.ndarray) -> float:
    """Two-sided p-value of Kendall's tau between ``y`` and its index (a monotone trend)."""
    if np.ptp(y) == 0:
        return 1.0
    return float(sps.kendalltau(np.arange(y.size), y).pvalue)
