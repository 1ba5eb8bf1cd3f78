"""Achieved GEMM and convolution time as a function of problem shape.

A BLAS or oneDNN call on a CPU is not one rate per FLOP count: small M, N or K leave
the register tiles partly empty, and with few rows (small M) the cost of packing the
weight matrix, which grows with its bytes and with where it lives (cache or DRAM),
is no longer hidden by the arithmetic. :class:`ShapeModel` writes that as

    busy = padding * flops / (rate * s(M, h_m) * s(N, h_n) * s(K, h_k))
           + w * (1 + u * unaligned) * (N / K) ** a * bytes / bandwidth(bytes)

with ``s(x, h) = 1 / (1 + (h / x) ** p)`` (the share of a tile of ``h`` that ``x``
fills, smoothly, ``p`` fitted), ``padding`` the work added by rounding channel counts up
to the library's channel block (oneDNN convolutions compute whole blocks of 16 output
channels with AVX-512: here a 3x3 conv with 20 output channels runs at 63 GFLOP/s, with
16 or 32 at 75 and 104; the block, 1 for none, is chosen by the fit from BLOCKS),
``unaligned`` 1 when N or K is not a multiple of ALIGN
elements (packing rows that do not fill whole vectors costs more: a 64x50257x768
product runs 30% slower than 64x50256x768 here), ``a`` how the packing cost depends on
the weight's shape (GEMMs only; at equal bytes an N-long weight packs slower than a
K-long one: on two threads 8x13192x1280 streams its 67 MB at 7.2 GB/s, 8x4096x4096 at
10.4 and 8x1000x16384 at 11.2) and ``bandwidth`` the machine's measured streaming rate
at that size. Its parameters are fitted to microbenchmark timings in log space
(relative error), with a robust loss so that a few noisy points do not drag the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from perfcast.calibrate.curve import NEAR, Curve
from perfcast.calibrate.eager_cpu import runs_native
from perfcast.estimate.efficiency import Confidence
from perfcast.ir.tensor import Dim
from perfcast.passes.kernel_shape import ConvGeometry, MatrixShape, conv_matrix_shape

MIN_POINTS = 8  # fewer measured shapes than this fit no shape model
ALIGN = 8  # elements: N and K multiples of this count as aligned
BLOCKS = (1, 8, 16)  # channel blocks a convolution shape model is fitted with
_HALF_BOUNDS = (1e-3, 1e5)  # tile half-fill sizes h_m, h_n, h_k
_WEIGHT_BOUNDS = (1e-4, 20.0)  # memory weight w, unaligned weight u
_SHARPNESS_BOUNDS = (0.5, 4.0)  # exponent p of the tile fill
_ASPECT_BOUND = 0.5  # |exponent| of the weight's shape N / K in the packing cost
RATE_HEADROOM = 4.0  # full-tile rate at most this many times the best achieved
_LEVELS = (Confidence.CALIBRATED, Confidence.INTERPOLATED, Confidence.THEORETICAL)


@dataclass(frozen=True)
class ShapeSample:
    """One measured GEMM-like call: its dimensions, work and median seconds."""

    batch: float
    m: float
    n: float
    k: float
    flops: float
    bytes: float
    seconds: float
    window: float = 1.0  # convolution window elements (K / window = input channels)


@dataclass(frozen=True)
class ShapeModel:
    """Fitted ``busy(M, N, K, bytes)`` of one (category, dtype, threads); see module doc."""

    rate: float  # FLOP/s with every tile full
    half_m: float
    half_n: float
    half_k: float
    memory_weight: float
    unaligned_weight: float  # extra packing cost, relative, when N or K is unaligned
    sharpness: float  # exponent p of the tile fill s(x, h) = 1 / (1 + (h / x) ** p)
    lo: tuple[float, float, float]  # smallest M, N, K measured
    hi: tuple[float, float, float]  # largest M, N, K measured
    n_points: int
    rel_rmse: float  # RMS relative error of the fit on its own points
    block: int = 1  # channel block the work is rounded up to (1: none)
    aspect: float = 0.0  # exponent a: packing cost scales with (N / K) ** a

    def __post_init__(self) -> None:
        values = {"rate": self.rate, "half_m": self.half_m, "half_n": self.half_n,
                  "half_k": self.half_k, "memory_weight": self.memory_weight,
                  "unaligned_weight": self.unaligned_weight, "sharpness": self.sharpness}
        bad = {k: v for k, v in values.items() if not (np.isfinite(v) and v > 0)}
        if bad:
            raise ValueError(f"shape model parameters must be finite and > 0, got {bad}")
        if len(self.lo) != 3 or len(self.hi) != 3:
            raise ValueError("shape model lo and hi must each hold M, N and K")
        if any(not 0 < a <= b for a, b in zip(self.lo, self.hi, strict=True)):
            raise ValueError(f"shape model range must satisfy 0 < lo <= hi, got "
                             f"lo={list(self.lo)} hi={list(self.hi)}")
        if self.block not in BLOCKS:
            raise ValueError(f"shape model block must be one of {list(BLOCKS)}, "
                             f"got {self.block}")
        if not (np.isfinite(self.aspect) and abs(self.aspect) <= _ASPECT_BOUND):
            raise ValueError(f"shape model aspect must be within ±{_ASPECT_BOUND}, "
                             f"got {self.aspect}")
        if self.n_points < 1:
            raise ValueError(f"shape model n_points must be >= 1, got {self.n_points}")
        if not (np.isfinite(self.rel_rmse) and self.rel_rmse >= 0):
            raise ValueError(f"shape model rel_rmse must be finite and >= 0, "
                             f"got {self.rel_rmse}")

    def compute_rate(self, m: Dim, n: Dim, k: Dim) -> Dim:
        """FLOP/s of the arithmetic of an ``m x n x k`` product (packing excluded)."""
        p = self.sharpness
        return self.rate * _fill(m, self.half_m, p) * _fill(n, self.half_n, p) \
            * _fill(k, self.half_k, p)

    def busy_s(self, m: Dim, n: Dim, k: Dim, flops: Dim, nbytes: Dim, bandwidth: Curve, *,
               footprint: Dim = 0.0, window: Dim = 1.0) -> tuple[Dim, Dim]:
        """(arithmetic seconds, memory seconds); their sum is the busy time.

        The bandwidth is read at ``footprint`` bytes where that exceeds ``nbytes``: the
        working set that decides which memory level the operands stream from. ``window``
        is a convolution's window elements (``k / window`` input channels).
        """
        work = flops * channel_padding(n, k, window, self.block)
        compute = work / self.compute_rate(m, n, k)
        packing = self.memory_weight * (1 + self.unaligned_weight * unaligned(n, k)) \
            * (np.asarray(n, float) / k) ** self.aspect
        memory = packing * nbytes / bandwidth(np.maximum(np.maximum(nbytes, footprint), 1.0))
        return compute, memory

    def confidence(self, m: Dim, n: Dim, k: Dim) -> Confidence | np.ndarray:
        """CALIBRATED with every dimension inside the measured range, INTERPOLATED within
        a factor NEAR of it, else THEORETICAL."""
        level = np.zeros(np.broadcast(np.asarray(m), np.asarray(n), np.asarray(k)).shape, int)
        for x, lo, hi in zip((m, n, k), self.lo, self.hi, strict=True):
            x = np.asarray(x, float)
            inside = (x >= lo) & (x <= hi)
            near = (x >= lo / NEAR) & (x <= hi * NEAR)
            level = np.maximum(level, np.where(inside, 0, np.where(near, 1, 2)))
        if level.ndim == 0:
            return _LEVELS[int(level)]
        return np.array(_LEVELS, dtype=object)[level]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "lo": list(self.lo), "hi": list(self.hi)}

    @classmethod
    def from_dict(cls, d: Any) -> ShapeModel:
        """Inverse of :meth:`to_dict`; raises ValueError on missing or invalid fields."""
        if not isinstance(d, dict):
            raise ValueError(f"shape model must be a mapping, got {type(d).__name__}")
        fields = ("rate", "half_m", "half_n", "half_k", "memory_weight", "unaligned_weight",
                  "sharpness", "lo", "hi", "n_points", "rel_rmse")  # block, aspect optional
        missing = [f for f in fields if f not in d]
        if missing:
            raise ValueError(f"shape model is missing fields: {', '.join(missing)}")
        try:
            floats = {f: float(d[f]) for f in fields[:7]}
            lo = tuple(float(x) for x in d["lo"])
            hi = tuple(float(x) for x in d["hi"])
            return cls(**floats, lo=lo, hi=hi, n_points=int(d["n_points"]),  # type: ignore[arg-type]
                       rel_rmse=float(d["rel_rmse"]), block=int(d.get("block", 1)),
                       aspect=float(d.get("aspect", 0.0)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"shape model has an invalid field: {exc}") from None


def fit_shape_model(samples: Sequence[ShapeSample], *, overhead_s: float,
                    bandwidth: Curve, blocks: Sequence[int] = (1,),
                    fit_aspect: bool = False) -> ShapeModel:
    """Fit a :class:`ShapeModel` to measured calls, less a fixed per-call ``overhead_s``.

    Minimizes the soft-L1 loss of log(predicted / measured) seconds, once per channel
    block in ``blocks``, and keeps the block that fits best; ``fit_aspect`` fits the
    packing cost's dependence on the weight's shape (else ``aspect`` stays 0). Raises
    ValueError with fewer than MIN_POINTS samples or on non-positive values.
    """
    if len(samples) < MIN_POINTS:
        raise ValueError(f"a shape model needs at least {MIN_POINTS} measured shapes, "
                         f"got {len(samples)}")
    a = np.array([[s.batch, s.m, s.n, s.k, s.flops, s.bytes, s.seconds, s.window]
                  for s in samples], float)
    if not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ValueError("shape samples must have finite, positive dimensions, work and "
                         "seconds")
    fits = [_fit_block(a, overhead_s, bandwidth, block, fit_aspect) for block in blocks]
    return min(fits, key=lambda fit: fit[1])[0]


def _fit_block(a: np.ndarray, overhead_s: float, bandwidth: Curve, block: int,
               fit_aspect: bool) -> tuple[ShapeModel, float]:
    """The shape model fitted with one channel block, and its loss."""
    _, m, n, k, flops, nbytes, seconds, window = a.T
    memory_time = nbytes / bandwidth(nbytes)
    odd = unaligned(n, k)
    work = flops * channel_padding(n, k, window, block)

    def predict(p: np.ndarray) -> np.ndarray:
        rate, hm, hn, hk, w, u, sharp = np.exp(p[:7])
        aspect = p[7] if fit_aspect else 0.0
        fill = _fill(m, hm, sharp) * _fill(n, hn, sharp) * _fill(k, hk, sharp)
        return overhead_s + work / (rate * fill) \
            + w * (1 + u * odd) * (n / k) ** aspect * memory_time

    best_rate = float(np.max(work / seconds))
    half_lo, half_hi = _HALF_BOUNDS
    start = np.log([best_rate, 4.0, 8.0, 8.0, 0.5, 0.1, 1.0])
    lower = np.log([best_rate / 4, half_lo, half_lo, half_lo, _WEIGHT_BOUNDS[0],
                    _WEIGHT_BOUNDS[0], _SHARPNESS_BOUNDS[0]])
    # A tile no measured shape fills half of cannot be told from a lower rate: the
    # half-fill sizes stay within twice the largest M, N, K measured, the rate within
    # RATE_HEADROOM of the best achieved (a free 2-thread 1x1-conv fit reached 2.3 TFLOP/s
    # with tiles half full at N=14,660 on shapes up to N=1,024).
    upper = np.log([best_rate * RATE_HEADROOM, min(half_hi, 2 * m.max()),
                    min(half_hi, 2 * n.max()), min(half_hi, 2 * k.max()), _WEIGHT_BOUNDS[1],
                    _WEIGHT_BOUNDS[1], _SHARPNESS_BOUNDS[1]])
    if fit_aspect:
        start, lower, upper = (np.append(x, v) for x, v in
                               ((start, 0.0), (lower, -_ASPECT_BOUND), (upper, _ASPECT_BOUND)))
    start = np.clip(start, lower, upper)  # tiny shapes can put the bounds below the start
    fit = least_squares(lambda p: np.log(predict(p) / seconds), start, bounds=(lower, upper),
                        loss="soft_l1", f_scale=0.1)
    rate, hm, hn, hk, w, u, sharp = np.exp(fit.x[:7]).tolist()
    rel = predict(fit.x) / seconds - 1
    model = ShapeModel(rate, hm, hn, hk, w, u, sharp,
                       lo=(float(m.min()), float(n.min()), float(k.min())),
                       hi=(float(m.max()), float(n.max()), float(k.max())),
                       n_points=len(a), rel_rmse=float(np.sqrt(np.mean(rel**2))), block=block,
                       aspect=float(fit.x[7]) if fit_aspect else 0.0)
    return model, float(fit.cost)


def channel_padding(n: Dim, k: Dim, window: Dim, block: int) -> Dim:
    """Work with channel counts rounded up to ``block``, over the work without.

    Only windowed convolutions are blocked (1x1 convolutions and GEMMs run as plain
    GEMMs). Output channels (N) are always rounded; input channels (``k / window``) only
    above one block: narrower inputs (an RGB image) take a path of their own.
    """
    if block <= 1:
        return 1.0
    c_in = np.asarray(k, float) / window
    out = np.ceil(np.asarray(n, float) / block) * block / n
    inp = np.where(c_in > block, np.ceil(c_in / block) * block / c_in, 1.0)
    padding = np.where(np.asarray(window) > 1, out * inp, 1.0)
    return float(padding) if np.ndim(padding) == 0 else padding


def unaligned(n: Dim, k: Dim) -> Dim:
    """1 where N or K is not a multiple of ALIGN elements, else 0."""
    return ((np.mod(n, ALIGN) != 0) | (np.mod(k, ALIGN) != 0)).astype(float)


def _fill(x: Dim, half: float, sharpness: float) -> Dim:
    return 1.0 / (1.0 + (half / x) ** sharpness)


def point_shape(category: str, params: dict[str, Any]) -> MatrixShape | None:
    """GEMM dimensions of a calibration microbenchmark case from its parameters
    (micro suite ``gemm``, ``gemm-skinny``, ``gemm-batched`` and ``conv2d``)."""
    if category == "gemm":
        if "nk" in params:
            n, k = (int(d) for d in str(params["nk"]).split("x"))
            return MatrixShape(1, int(params["m"]), n, k)
        if "n" in params:
            side = int(params["n"])
            return MatrixShape(int(params.get("batch", 1)), side, side, side)
        return None
    if category == "conv" and "shape" in params:
        from perfcast.bench.suites.micro import conv_shape

        c_in, c_out, size, kernel, stride, groups = conv_shape(str(params["shape"]))
        side = (size + 2 * (kernel // 2) - kernel) // stride + 1
        images = int(params.get("batch", 1))
        call = ConvGeometry(images=images, input_elements=images * c_in * size * size,
                        window=(kernel, kernel), strided=stride > 1, dilated=False,
                        groups=groups)
        return conv_matrix_shape(images * side * side, c_out, c_in // groups, groups,
                                 kernel * kernel, call)
    return None


POINTWISE = "conv1x1"  # shape models of 1x1 convolutions, apart from windowed ones
NATIVE = "-native"  # suffix of the models of convolutions ATen runs itself (im2col + GEMM)


def model_name(category: str, shape: MatrixShape, *, threads: int,
               dtype: str) -> str | np.ndarray:
    """The shape model a kernel of ``category`` and ``shape`` uses at ``threads``.

    1x1 convolutions get their own (POINTWISE: oneDNN runs them as another kernel; here
    they reach 60-75% of the rate a 3x3 convolution of the same channels does at
    ResNet-50's sizes), and so do convolutions PyTorch eager runs natively instead of
    with oneDNN (NATIVE suffix; :func:`~perfcast.calibrate.eager_cpu.runs_native`).
    An array of names when the batch is a sweep.
    """
    if category != "conv" or shape.depthwise:
        return category
    name = POINTWISE if np.all(np.asarray(shape.window) == 1) else category
    native = runs_native(shape.call, threads, dtype) if shape.call is not None else False
    if np.ndim(native) == 0:
        return name + NATIVE if native else name
    return np.where(native, name + NATIVE, name)


def streams(category: str, shape: MatrixShape) -> bool | np.ndarray:
    """Whether a matrix kernel of this shape runs as a stream (a GEMV, a depthwise
    convolution): it is costed by the memory curve, not by the shape model. An array
    (one flag per point) when ``shape.m`` is a sweep."""
    gemv = np.asarray(shape.m) <= 1 if category == "gemm" else np.asarray(False)
    flags = np.logical_or(gemv, shape.depthwise)
    return bool(flags) if flags.ndim == 0 else flags
