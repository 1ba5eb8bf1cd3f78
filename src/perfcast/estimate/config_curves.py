"""Per-configuration refinements of a fitted kernel form along one dimension.

Some kernels behave per configuration in ways a smooth function of the shape does not
capture. A MoE layer's grouped GEMMs, for example, pick tactics per (hidden, inter,
experts, top-k, EP) model. For each configuration that was measured, a
:class:`ConfigCurves` keeps a smooth log-correction over one dimension (tokens). It is
piecewise linear on shared knots, with a curvature penalty, fitted to what the form and
its correction grid left. Unmeasured configurations get no refinement (factor 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfcast.ir.tensor import Dim

KNOTS = 6
SMOOTHING = 0.3
MIN_POINTS = 4


def _key(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(f"{v:.6g}") for v in values)


def _weights(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation weights of ``x`` on ``knots`` (``[len(x), K]``)."""
    eye = np.eye(len(knots))
    return np.stack([np.interp(x, knots, eye[i]) for i in range(len(knots))], axis=1)


@dataclass(frozen=True)
class ConfigCurves:
    """Log-corrections along ``along`` for each measured value of ``config``."""

    config: tuple[str, ...]
    along: str
    knots: tuple[float, ...]  # log of ``along``
    curves: dict[tuple[float, ...], tuple[float, ...]]

    def __call__(self, dims: dict[str, Dim]) -> np.ndarray:
        """Log-correction at ``dims`` (arrays broadcast); 0 where unmeasured."""
        configs = np.broadcast_arrays(*(np.asarray(dims[c], dtype=float) for c in self.config))
        x = np.log(np.asarray(dims[self.along], dtype=float))
        out = np.zeros(np.broadcast_shapes(configs[0].shape, x.shape))
        rows = np.stack([c.reshape(-1) for c in configs], axis=1)
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        for i, row in enumerate(unique):  # a few configurations (layouts) per call
            curve = self.curves.get(_key(row))
            if curve is not None:
                here = (inverse.reshape(-1) == i).reshape(configs[0].shape)
                out = np.where(here, np.interp(x, self.knots, curve), out)
        return out

    def to_dict(self) -> dict:
        return {"config": list(self.config), "along": self.along,
                "knots": [round(k, 5) for k in self.knots],
                "curves": [[list(k), [round(v, 3) for v in c]] for k, c in self.curves.items()]}

    @classmethod
    def from_dict(cls, data: dict) -> ConfigCurves:
        knots = tuple(float(k) for k in data["knots"])
        curves = {tuple(float(v) for v in k): tuple(float(v) for v in c)
                  for k, c in data["curves"]}
        if any(len(c) != len(knots) for c in curves.values()):
            raise ValueError("config curves: a curve does not match the knots")
        return cls(tuple(data["config"]), str(data["along"]), knots, curves)


def fit_config_curves(dims: dict[str, Dim], log_residual: np.ndarray, config: tuple[str, ...],
                      along: str) -> ConfigCurves:
    """One smooth curve per configuration with at least MIN_POINTS measurements."""
    x = np.log(np.asarray(dims[along], dtype=float))
    knots = np.quantile(np.unique(x), np.linspace(0, 1, KNOTS)) if len(np.unique(x)) > 1 \
        else np.unique(x)
    configs = np.stack([np.broadcast_to(np.asarray(dims[c], dtype=float), x.shape)
                        for c in config], axis=1)
    second = np.diff(np.eye(len(knots)), 2, axis=0)
    penalty = SMOOTHING ** 2 * second.T @ second + 1e-6 * np.eye(len(knots))
    unique, inverse = np.unique(configs, axis=0, return_inverse=True)
    curves = {}
    for i, row in enumerate(unique):
        rows = inverse.reshape(-1) == i
        if rows.sum() < MIN_POINTS:
            continue
        basis = _weights(x[rows], knots)
        values = np.linalg.solve(basis.T @ basis + penalty, basis.T @ log_residual[rows])
        curves[_key(row)] = tuple(float(v) for v in values)
    return ConfigCurves(config, along, tuple(float(k) for k in knots), curves)
