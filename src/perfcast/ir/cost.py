"""Cost value objects: FLOPs and bytes, additive, broadcastable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Scalar = int | float | np.ndarray


@dataclass(frozen=True)
class Cost:
    """Work of one op or kernel: floating-point operations and bytes moved.

    Values may be NumPy arrays (one entry per point of a sweep); ``+`` adds them
    elementwise with broadcasting.
    """

    flops: Scalar = 0
    bytes: Scalar = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.bytes + other.bytes)

    @property
    def intensity(self) -> Scalar:
        """Arithmetic intensity in FLOPs per byte (0 where no byte moves)."""
        b = np.asarray(self.bytes, dtype=float)
        f = np.asarray(self.flops, dtype=float)
        out = np.divide(f, b, out=np.zeros(np.broadcast(f, b).shape), where=b > 0)
        return out if out.ndim else float(out)
