"""Reference NumPy formulas of the IR's compound kinds (GELU, norms, RoPE, ``gemm``,
attention): the interpreter runs them and the backends are tested against them."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from perfcast.ir.ops.attention import causal_keep


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf as _erf

    return _erf(x)


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU, exact (erf) or with the tanh approximation, in ``x``'s dtype."""
    dt = x.dtype.type if x.dtype.kind == "f" else np.float32
    if approximate == "tanh":
        inner = dt(math.sqrt(2 / math.pi)) * (x + dt(0.044715) * x * x * x)
        return dt(0.5) * x * (1 + np.tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return dt(0.5) * x * (1 + erf(x * dt(1 / math.sqrt(2))))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "gelu": gelu,
    "gelu_tanh": lambda x: gelu(x, "tanh"),
    "silu": silu,
}


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def layer_norm(x, w, b, eps: float, n_dims: int = 1) -> np.ndarray:
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    y = xc / np.sqrt(var + x.dtype.type(eps))
    y = y * w if w is not None else y
    return y + b if b is not None else y


def rms_norm(x, w, eps: float, n_dims: int = 1) -> np.ndarray:
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    y = x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + x.dtype.type(eps))
    return y * w if w is not None else y


def rope(x, cos, sin) -> np.ndarray:
    """``x * cos + rotate_half(x) * sin`` with rotate_half = ``[-x2, x1]`` on the last dim."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def gemm(a, b, c=None, *, trans_b=False, alpha=1.0, beta=1.0, act="none") -> np.ndarray:
    """``act(alpha * a @ op(b) + beta * c)`` as the fused ``gemm`` kind defines it."""
    bt = np.swapaxes(b, -1, -2) if trans_b else b
    out = np.matmul(a, bt)
    dt = out.dtype.type
    if alpha != 1:
        out = out * dt(alpha)
    if c is not None and beta != 0:
        out = out + (c if beta == 1 else dt(beta) * c)
    return ACTIVATIONS[act](out)


def sdpa(q, k, v, mask=None, *, scale: float | None = None, causal: bool = False):
    """Attention over the last two dims; K/V heads repeat for GQA (``Hq % Hkv == 0``)."""
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise ValueError(f"query heads {q.shape[-3]} not a multiple of key heads "
                             f"{k.shape[-3]}")
        rep = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    dt = q.dtype.type
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * dt(scale)
    if causal:
        scores = np.where(causal_keep(q.shape[-2], k.shape[-2]), scores, dt(-np.inf))
    if mask is not None:
        scores = np.where(mask, scores, dt(-np.inf)) if mask.dtype == bool else scores + mask
    return np.matmul(softmax(scores), v)
