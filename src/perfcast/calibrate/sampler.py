"""Which microbenchmark cases calibration measures, and in what order.

Each *family* varies one size of one microbenchmark over a range (GEMM side, rows of a
norm, sequence length...). Calibration first measures a few log-spaced sizes per
family, then spends the remaining budget bisecting, in log space, the gap where the
achieved rate changes most between neighbouring measurements: where efficiency moves
fastest, more points land.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfcast.ir import MATRIX_CATEGORIES

COMPUTE_CATEGORIES = frozenset(str(c) for c in MATRIX_CATEGORIES)  # category names
INITIAL_POINTS = 4
# Elementwise ops timed for a per-element cost of their own (the others stream at the
# bandwidth ``add`` measures); names as in the micro suite and the IR.
POOL_FAMILIES = (("max_pool2d", "2"), ("max_pool2d", "3s2"), ("avg_pool2d", "2"))
COSTLY_ELEMENTWISE = ("tanh", "exp", "erf", "gelu", "sigmoid", "silu", "div", "rsqrt")


@dataclass(frozen=True)
class Family:
    """One microbenchmark with one size swept between ``lo`` and ``hi``."""

    name: str
    target: str
    category: str
    lo: int
    hi: int
    make: Callable[[int, str], dict[str, Any]]

    @property
    def rate_of(self) -> str:
        """The work the achieved rate is measured against: flops or bytes."""
        return "flops" if self.category in COMPUTE_CATEGORIES else "bytes"

    def initial_sizes(self, points: int = INITIAL_POINTS) -> list[int]:
        ratio = (self.hi / self.lo) ** (1 / max(points - 1, 1))
        return sorted({round(self.lo * ratio**i) for i in range(points)})


def _conv(cin: int, cout: int, size: int, kernel: int, stride: int = 1,
          groups: int = 1) -> str:
    return f"{cin}-{cout}-{size}-{kernel}-{stride}-{groups}"


def families() -> list[Family]:
    """The calibration families for CPU (fp32 and other dtypes alike)."""
    def attention(causal: bool) -> Callable[[int, str], dict[str, Any]]:
        return lambda v, d: {"batch": 1, "heads": 12, "head_dim": 64, "seq": v,
                             "causal": causal, "dtype": d}

    def elementwise(op: str) -> Callable[[int, str], dict[str, Any]]:
        return lambda v, d: {"op": op, "numel": v, "dtype": d}

    def pool(op: str, window: str) -> Callable[[int, str], dict[str, Any]]:
        return lambda v, d: {"op": op, "window": window, "channels": v, "size": 56, "dtype": d}

    def linear(nk: str) -> Callable[[int, str], dict[str, Any]]:
        return lambda v, d: {"m": v, "nk": nk, "dtype": d}

    return [
        Family("gemm-square", "micro:gemm", "gemm", 16, 1536,
               lambda v, d: {"n": v, "dtype": d}),
        # Rows of a linear layer (M) at three weight shapes, from a GEMV (m=1) up.
        Family("linear-640x640", "micro:gemm-skinny", "gemm", 1, 2048, linear("640x640")),
        Family("linear-2560x640", "micro:gemm-skinny", "gemm", 1, 2048, linear("2560x640")),
        Family("linear-640x2560", "micro:gemm-skinny", "gemm", 1, 2048, linear("640x2560")),
        # Few rows against a weight from L2-sized to far past the last-level cache.
        # N rounded to a multiple of 8 in one, odd in the other: unaligned weight rows
        # cost extra packing (ShapeModel.unaligned_weight).
        Family("linear-m6-n", "micro:gemm-skinny", "gemm", 256, 32768,
               lambda v, d: {"m": 6, "nk": f"{max(v - v % 8, 8)}x1280", "dtype": d}),
        Family("linear-m40-n-odd", "micro:gemm-skinny", "gemm", 16, 65536,
               lambda v, d: {"m": 40, "nk": f"{v | 1}x640", "dtype": d}),
        Family("linear-m40-k", "micro:gemm-skinny", "gemm", 16, 8192,
               lambda v, d: {"m": 40, "nk": f"640x{v}", "dtype": d}),
        # Sides of 4 mod 8: never a validation model's width (all multiples of 8).
        Family("gemv-square", "micro:gemm-skinny", "gemm", 96, 6400,
               lambda v, d: {"m": 1, "nk": f"{v - v % 8 + 4}x{v - v % 8 + 4}", "dtype": d}),
        Family("bmm-12", "micro:gemm-batched", "gemm", 16, 512,
               lambda v, d: {"batch": 12, "n": v, "dtype": d}),
        Family("conv3x3-26", "micro:conv2d", "conv", 8, 384,
               lambda v, d: {"shape": _conv(v, v, 26, 3), "batch": 1, "dtype": d}),
        # Channels in whole blocks of 16 at a larger image, and output channels swept one
        # by one: oneDNN computes whole channel blocks (ShapeModel.block).
        Family("conv3x3-blocks", "micro:conv2d", "conv", 1, 16,
               lambda v, d: {"shape": _conv(16 * v, 16 * v, 40, 3), "batch": 1, "dtype": d}),
        Family("conv3x3-cout", "micro:conv2d", "conv", 4, 100,
               lambda v, d: {"shape": _conv(48, v, 36, 3), "batch": 2, "dtype": d}),
        Family("conv3x3-spatial", "micro:conv2d", "conv", 6, 120,
               lambda v, d: {"shape": _conv(40, 40, v, 3), "batch": 1, "dtype": d}),
        Family("conv3x3-widen", "micro:conv2d", "conv", 8, 320,
               lambda v, d: {"shape": _conv(v, 2 * v, 20, 3), "batch": 1, "dtype": d}),
        # Few output pixels on many channels, and strided 1x1 convs: at batch 1 PyTorch
        # sends convolutions with an input over 20,480 elements to oneDNN and smaller ones
        # to its own kernels (calibrate.eager_cpu), so oneDNN is timed at small M only
        # with this many channels. The strided 1x1 family halves the image as it doubles
        # the channels (like a ResNet downsample), at a constant 38 MFLOP.
        Family("conv3x3-deep", "micro:conv2d", "conv", 8, 24,
               lambda v, d: {"shape": _conv(336, 336, v, 3), "batch": 1, "dtype": d}),
        Family("conv1x1-stride2", "micro:conv2d", "conv", 48, 768,
               lambda v, d: {"shape": _conv(v, 2 * v, 6144 // v, 1, 2), "batch": 1,
                             "dtype": d}),
        Family("conv1x1-14", "micro:conv2d", "conv", 16, 1024,
               lambda v, d: {"shape": _conv(v, v, 14, 1), "batch": 1, "dtype": d}),
        Family("conv1x1-spatial", "micro:conv2d", "conv", 4, 96,
               lambda v, d: {"shape": _conv(96, 192, v, 1), "batch": 1, "dtype": d}),
        Family("conv7x7-stem", "micro:conv2d", "conv", 32, 216,
               lambda v, d: {"shape": _conv(3, 64, v, 7, 2), "batch": 1, "dtype": d}),
        Family("conv3x3-rgb", "micro:conv2d", "conv", 12, 160,
               lambda v, d: {"shape": _conv(3, 20, v, 3), "batch": 1, "dtype": d}),
        Family("conv3x3-grouped", "micro:conv2d", "conv", 8, 96,
               lambda v, d: {"shape": _conv(96, 96, v, 3, 1, 8), "batch": 1, "dtype": d}),
        Family("conv-depthwise", "micro:conv2d", "conv", 16, 512,
               lambda v, d: {"shape": _conv(v, v, 28, 3, 1, v), "batch": 1, "dtype": d}),
        Family("attention", "micro:attention", "attention", 16, 1024, attention(False)),
        Family("attention-causal", "micro:attention", "attention", 16, 1024, attention(True)),
        Family("add", "micro:elementwise", "elementwise", 1 << 10, 1 << 24,
               lambda v, d: {"op": "add", "numel": v, "dtype": d}),
        *(Family(op, "micro:elementwise", "elementwise", 1 << 14, 1 << 19, elementwise(op))
          for op in COSTLY_ELEMENTWISE),
        *(Family(f"{op}-{window}", "micro:pool2d", "reduction", 8, 256, pool(op, window))
          for op, window in POOL_FAMILIES),
        Family("sum-last-dim", "micro:reduction", "reduction", 1 << 10, 1 << 24,
               lambda v, d: {"kind": "last-dim", "numel": v, "dtype": d}),
        Family("softmax-128", "micro:softmax", "reduction", 1, 16384,
               lambda v, d: {"rows": v, "cols": 128, "dtype": d}),
        Family("layernorm-768", "micro:layernorm", "norm", 1, 4096,
               lambda v, d: {"rows": v, "cols": 768, "dtype": d}),
        Family("copy", "micro:memcpy", "data_movement", 1, 256, lambda v, d: {"mib": v}),
    ]


def next_size(sizes_and_rates: list[tuple[int, float]]) -> int | None:
    """The size that splits the neighbouring pair whose log rates differ most (None: done)."""
    points = sorted(sizes_and_rates)
    best, best_gap = None, 0.0
    for (s0, r0), (s1, r1) in itertools.pairwise(points):
        mid = round(math.sqrt(s0 * s1))
        if mid in (s0, s1):
            continue
        gap = abs(math.log(r1 / r0)) + 0.05 * math.log(s1 / s0)  # prefer wide gaps on ties
        if gap > best_gap:
            best, best_gap = mid, gap
    return best
