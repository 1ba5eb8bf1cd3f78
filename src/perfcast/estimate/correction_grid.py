"""A smooth multiplicative correction over log-spaced kernel dimensions.

A fitted kernel form (:mod:`perfcast.estimate.gpu_forms`) carries the physics: FLOPs
over the achieved peak, bytes over the achieved bandwidth, wave quantization, launch
latency. What it misses (library tile heuristics, split-K, cache effects) is a smooth
function of the dimensions, fitted as ``log(measured / form)`` on a grid of knots in log
space with multilinear interpolation and a curvature penalty. Outside the knots the
correction is held at its edge value, so extrapolation is the physics alone, scaled by
the nearest measured correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg

DEFAULT_KNOTS = 12
DEFAULT_SMOOTHING = 0.3


@dataclass(frozen=True)
class CorrectionGrid:
    """Knots per axis (log of a dimension) and the log-correction at each grid point."""

    axes: tuple[tuple[float, ...], ...]
    values: tuple[float, ...]  # flattened in C order over the axes

    @cached_property
    def _table(self) -> np.ndarray:
        return np.asarray(self.values)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Log-correction at ``features`` (``[..., n_axes]`` of log dimensions)."""
        flat = features.reshape(-1, len(self.axes))
        out = np.zeros(len(flat))
        for index, weight in _corners(flat, self.axes):
            out += weight * self._table[index]
        return out.reshape(features.shape[:-1])

    def to_dict(self) -> dict:
        return {"axes": [[round(x, 5) for x in a] for a in self.axes],
                "values": [round(v, 3) for v in self.values]}

    @classmethod
    def from_dict(cls, data: dict) -> CorrectionGrid:
        axes = tuple(tuple(float(x) for x in a) for a in data["axes"])
        values = tuple(float(v) for v in data["values"])
        if len(values) != int(np.prod([len(a) for a in axes])):
            raise ValueError("correction grid: values do not match the axes' knots")
        return cls(axes, values)


def fit_grid(features: np.ndarray, log_ratio: np.ndarray, knots: int = DEFAULT_KNOTS,
             smoothing: float = DEFAULT_SMOOTHING) -> CorrectionGrid:
    """Least-squares log-correction over ``features`` (``[N, n_axes]``)."""
    axes = tuple(tuple(float(x) for x in _knots(features[:, j], knots))
                 for j in range(features.shape[1]))
    design = _basis(features, axes)
    penalty = _curvature(axes)
    # normal equations of the penalized least squares; a tiny ridge pins knots no row
    # reaches and no curvature constrains
    lhs = (design.T @ design + smoothing ** 2 * (penalty.T @ penalty)
           + 1e-8 * sp.identity(design.shape[1])).tocsr()
    values, _ = cg(lhs, design.T @ log_ratio, rtol=1e-10, maxiter=20000)
    return CorrectionGrid(axes, tuple(float(v) for v in values))


def _knots(x: np.ndarray, count: int) -> np.ndarray:
    unique = np.unique(np.round(x, 6))
    if len(unique) <= count:
        return unique
    return np.quantile(unique, np.linspace(0.0, 1.0, count))


def _corners(x: np.ndarray, axes: tuple[tuple[float, ...], ...]):
    """(flat grid index, weight) of each of the 2^n corners around every row of ``x``."""
    n = x.shape[0]
    shape = [len(a) for a in axes]
    lower, upper, w_lower, w_upper = [], [], [], []
    for j, knots in enumerate(axes):
        a = np.asarray(knots)
        if len(a) == 1:
            zero = np.zeros(n, dtype=np.int64)
            lower.append(zero), upper.append(zero)
            w_lower.append(np.ones(n)), w_upper.append(np.zeros(n))
            continue
        xj = np.clip(x[:, j], a[0], a[-1])
        i = np.clip(np.searchsorted(a, xj, side="right") - 1, 0, len(a) - 2)
        t = (xj - a[i]) / (a[i + 1] - a[i])
        lower.append(i), upper.append(i + 1)
        w_lower.append(1 - t), w_upper.append(t)
    for corner in range(2 ** len(axes)):
        flat = np.zeros(n, dtype=np.int64)
        weight = np.ones(n)
        for j in range(len(axes)):
            high = (corner >> j) & 1
            flat = flat * shape[j] + (upper[j] if high else lower[j])
            weight = weight * (w_upper[j] if high else w_lower[j])
        yield flat, weight


def _basis(x: np.ndarray, axes: tuple[tuple[float, ...], ...]) -> sp.csr_matrix:
    """Multilinear interpolation weights of each row of ``x`` on the grid (sparse)."""
    rows, cols, vals = [], [], []
    for flat, weight in _corners(x, axes):
        rows.append(np.arange(len(x))), cols.append(flat), vals.append(weight)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(x), int(np.prod([len(a) for a in axes]))))


def _curvature(axes: tuple[tuple[float, ...], ...]) -> sp.csr_matrix:
    """Second differences along each axis (the smoothness penalty)."""
    shape = [len(a) for a in axes]
    blocks = []
    for j, size in enumerate(shape):
        if size < 3:
            continue
        second = sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(size - 2, size), dtype=float)
        mats = [second if i == j else sp.identity(s, format="csr") for i, s in enumerate(shape)]
        block = mats[0]
        for m in mats[1:]:
            block = sp.kron(block, m, format="csr")
        blocks.append(block)
    if not blocks:
        return sp.csr_matrix((0, int(np.prod(shape))))
    return sp.vstack(blocks).tocsr()
