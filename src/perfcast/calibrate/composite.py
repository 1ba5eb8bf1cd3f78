"""Whole-network calibration: how kernels run in sequence inside an eager model.

Microbenchmarks time one op in a hot loop. Inside a model, each op also pays Python
module dispatch, output allocation, and caches left cold by its neighbours. This stage
measures small synthetic networks (random MLPs, CNNs and transformer stacks, generated
from a seed, with shapes no validation model uses), predicts each with the
microbenchmark profile, and fits per thread count one factor per kernel group and the
per-kernel eager overhead by non-negative least squares on relative error, pulled
weakly towards the microbenchmark values. The profile keeps the fit as a check on the
microbenchmark model (its RMS error on these networks); estimates do not apply the
factors, which did not carry over to unseen models (docs/calibrate.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from perfcast.ir import MATRIX_CATEGORIES

GROUPS = ("gemm", "gemm_low", "gemv", "conv", "conv_low", "attention", "memory")
MATRIX = frozenset(str(c) for c in MATRIX_CATEGORIES)  # category names as profiles store them
# GEMMs and convs doing fewer FLOPs per byte than this (small batch, skinny or depthwise)
# run far from both rooflines on CPUs; they get their own factor.
LOW_INTENSITY = 16.0
# Below this (one row: matrix-vector products) a GEMM streams its weights instead.
GEMV_INTENSITY = 1.0
PRIOR_WEIGHT = 0.15  # how strongly each coefficient is pulled towards 1 (the micro fit)
MIN_NETS = 4  # fewer measured networks than this: no composite fit for that thread count

@dataclass(frozen=True)
class CompositeRow:
    """One network measured at one thread count, with the micro profile's prediction."""

    name: str
    threads: int
    measured_s: float
    busy_s: Mapping[str, float]  # predicted busy time per group, without overhead
    kernels: int
    micro_overhead_s: float

    @property
    def micro_predicted_s(self) -> float:
        return sum(self.busy_s.values()) + self.kernels * self.micro_overhead_s


@dataclass(frozen=True)
class CompositeFit:
    """Per-group time factors and the per-kernel overhead for one thread count."""

    scale: Mapping[str, float]
    overhead_s: float
    n_nets: int
    rel_rmse: float  # on the fitted networks, after the fit
    micro_rel_rmse: float  # the same networks predicted by the micro profile alone

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scale": dict(self.scale)}

    @classmethod
    def from_dict(cls, d: Any) -> CompositeFit:
        """Inverse of :meth:`to_dict`; ValueError names what is wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"composite fit must be a mapping, got {type(d).__name__}")
        missing = [k for k in ("scale", "overhead_s", "n_nets", "rel_rmse", "micro_rel_rmse")
                   if k not in d]
        if missing:
            raise ValueError(f"composite fit is missing fields: {', '.join(missing)}")
        scale = d["scale"]
        if not isinstance(scale, dict) or set(scale) - set(GROUPS):
            raise ValueError(f"composite scale must map groups {', '.join(GROUPS)} to factors")
        values = [float(v) for v in scale.values()] + [float(d["overhead_s"])]
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"composite factors and overhead must be finite and > 0, got {d}")
        return cls({k: float(v) for k, v in scale.items()}, float(d["overhead_s"]),
                   int(d["n_nets"]), float(d["rel_rmse"]), float(d["micro_rel_rmse"]))


def group_of(category: str | None, flops: float | np.ndarray,
             nbytes: float | np.ndarray) -> str | np.ndarray:
    """The group a kernel's time is scaled with: by category and arithmetic intensity.

    With array work (a sweep), an array of groups, one per point.
    """
    if category not in MATRIX:
        return "memory"
    if category == "attention":
        return category
    intensity = np.asarray(flops) / np.maximum(np.asarray(nbytes), 1e-30)
    low = np.where(intensity < LOW_INTENSITY, f"{category}_low", category)
    groups = np.where(intensity < GEMV_INTENSITY, "gemv", low) if category == "gemm" else low
    return str(groups) if groups.ndim == 0 else groups


def fit_composite(rows: Sequence[CompositeRow], *,
                  prior_weight: float = PRIOR_WEIGHT) -> CompositeFit:
    """Fit factors so ``Σ scale[g]·busy[g] + kernels·overhead`` matches the measurements.

    Each row is divided by its measured time (relative error); each coefficient is
    expressed relative to the micro profile (1 = unchanged), and the group factors are
    pulled towards 1 with ``prior_weight``. The overhead is not: eager dispatch inside a
    model costs several times a bare op call. Groups no network exercises keep 1.
    """
    if len(rows) < MIN_NETS:
        raise ValueError(f"need at least {MIN_NETS} measured networks, got {len(rows)}")
    overhead = float(np.median([r.micro_overhead_s for r in rows]))
    features = np.array([[r.busy_s.get(g, 0.0) for g in GROUPS] + [r.kernels * overhead]
                         for r in rows])
    measured = np.array([r.measured_s for r in rows])
    a = features / measured[:, None]
    b = np.ones(len(rows))
    n_coef = len(GROUPS) + 1
    prior = prior_weight * np.eye(n_coef)[:-1]
    a = np.vstack([a, prior])
    b = np.concatenate([b, prior_weight * np.ones(n_coef - 1)])
    coef, _ = nnls(a, b)
    used = features.sum(axis=0) > 0
    coef = np.where(used & (coef > 0), coef, 1.0)
    predicted = features @ coef
    micro = features.sum(axis=1)
    return CompositeFit(
        scale={g: float(c) for g, c in zip(GROUPS, coef[:-1], strict=True)},
        overhead_s=float(coef[-1] * overhead),
        n_nets=len(rows),
        rel_rmse=_rel_rmse(predicted, measured),
        micro_rel_rmse=_rel_rmse(micro, measured),
    )


def _rel_rmse(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((predicted - measured) / measured) ** 2)))
