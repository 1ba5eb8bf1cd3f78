"""Tensor descriptions: name, shape (ints or NumPy arrays per dimension), dtype."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from perfcast.ir.dtypes import canonical, itemsize

Dim = int | np.ndarray
Shape = tuple[Dim, ...]


def numel(shape: Sequence[Dim]) -> Dim:
    """Number of elements of ``shape``; broadcasts when dimensions are arrays."""
    n: Dim = 1
    for d in shape:
        n = n * d
    return n


def ceil_div(a: Dim, b: Dim) -> Dim:
    """``ceil(a / b)`` for integer dimensions; broadcasts when either is an array."""
    return -(-a // b)


def is_static(shape: Sequence[Dim]) -> bool:
    """True when every dimension is a plain integer."""
    return all(isinstance(d, int | np.integer) for d in shape)


@dataclass(frozen=True)
class Tensor:
    """A value in the graph. ``const`` marks weights, buffers and constants."""

    name: str
    shape: Shape
    dtype: str
    const: bool = False
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", canonical(self.dtype))
        object.__setattr__(self, "shape", tuple(_dim(d) for d in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> Dim:
        return numel(self.shape)

    @property
    def nbytes(self) -> Dim:
        return self.numel * itemsize(self.dtype)

    def describe(self) -> str:
        dims = ", ".join(_fmt_dim(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


def _dim(d: object) -> Dim:
    if isinstance(d, np.ndarray):
        return d
    if isinstance(d, bool) or not isinstance(d, int | np.integer):
        raise TypeError(f"shape dimension must be an int or a NumPy array, got {d!r}")
    if d < 0:
        raise ValueError(f"shape dimension must be >= 0, got {d}")
    return int(d)


def _fmt_dim(d: Dim) -> str:
    if isinstance(d, np.ndarray):
        return f"<{d.min()}..{d.max()}>" if d.size else "<>"
    return str(d)
