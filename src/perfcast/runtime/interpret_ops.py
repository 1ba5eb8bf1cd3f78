"""NumPy semantics of the IR's arithmetic kinds: elementwise, reductions, GEMMs, norms,
attention and the fused kinds. Each kernel takes :class:`Args` and returns an array or a
list of arrays; the interpreter casts results to the dtypes the graph declares.

The reference formulas (``gelu``, ``layer_norm``, ``sdpa``, ``gemm``...) are public so
the backends can test against the same definitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from perfcast.ir import Node
from perfcast.ir.ops._util import dims_attr, norm_dim

_MISSING = object()


class Args:
    """A node's operands by schema name: a tensor input if there is one, else an attribute.

    Frontend nodes name their tensor inputs in ``attrs["tensor_args"]``; nodes made by
    passes (fused kinds) list their inputs positionally.
    """

    def __init__(self, node: Node, values: Sequence[np.ndarray]) -> None:
        self.node = node
        self.values = list(values)
        self.attrs = node.attrs
        names = node.attrs.get("tensor_args")
        self.names = list(names) if isinstance(names, list | tuple) else None

    @property
    def x(self) -> np.ndarray:
        return self.values[0]

    def tensor(self, name: str, pos: int) -> np.ndarray | None:
        """The tensor input ``name`` (``pos`` when inputs are positional), or None."""
        if self.names is not None:
            return self.values[self.names.index(name)] if name in self.names else None
        return self.values[pos] if pos < len(self.values) else None

    def operand(self, name: str, pos: int, default: object = _MISSING):
        """A tensor input or, when the argument was a Python scalar, its attribute value."""
        t = self.tensor(name, pos)
        if t is not None:
            return t
        if name in self.attrs and self.attrs[name] is not None:
            return self.attrs[name]
        if default is _MISSING:
            raise ValueError(f"missing argument {name!r}")
        return default

    def attr(self, name: str, default: object = None):
        value = self.attrs.get(name, default)
        return default if value is None else value


Impl = Callable[[Args], "np.ndarray | list[np.ndarray]"]


# -- reference formulas --------------------------------------------------------------
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


def causal_keep(s: int, t: int) -> np.ndarray:
    """Bool [s, t]: query i sees key j when ``j <= i + t - s`` (bottom-right aligned)."""
    return np.arange(t)[None, :] <= np.arange(s)[:, None] + (t - s)


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


# -- elementwise ---------------------------------------------------------------------
def _binary(fn: Callable, a_name: str = "self", b_name: str = "other") -> Impl:
    def impl(args: Args):
        return fn(args.operand(a_name, 0), args.operand(b_name, 1))

    return impl


def _add(args: Args):
    alpha = args.attr("alpha", 1)
    other = args.operand("other", 1)
    return args.operand("self", 0) + (other if alpha == 1 else alpha * np.asarray(other))


def _sub(args: Args):
    alpha = args.attr("alpha", 1)
    other = args.operand("other", 1)
    return args.operand("self", 0) - (other if alpha == 1 else alpha * np.asarray(other))


def _rsub(args: Args):
    alpha = args.attr("alpha", 1)
    x = args.operand("self", 0)
    return args.operand("other", 1) - (x if alpha == 1 else alpha * np.asarray(x))


def _div(args: Args):
    a, b = args.operand("self", 0), args.operand("other", 1)
    mode = args.attr("rounding_mode")
    if mode is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.true_divide(a, b)
    if mode == "floor":
        return np.floor_divide(a, b)
    if mode == "trunc":
        return np.trunc(np.true_divide(a, b))
    raise ValueError(f"div rounding_mode must be None, 'floor' or 'trunc', got {mode!r}")


def _pow(args: Args):
    return np.power(args.operand("self", 0), args.operand("exponent", 1))


def _unary(fn: Callable) -> Impl:
    return lambda args: fn(args.x)


def _rsqrt(x):
    with np.errstate(divide="ignore"):
        return 1 / np.sqrt(x)


def _clamp(args: Args):
    lo, hi = args.operand("min", 1, None), args.operand("max", 2, None)
    x = args.x
    if lo is not None:
        x = np.maximum(x, lo)
    return np.minimum(x, hi) if hi is not None else x


def _hardtanh(args: Args):
    return np.clip(args.x, args.attr("min_val", -1.0), args.attr("max_val", 1.0))


def _leaky_relu(args: Args):
    x = args.x
    return np.where(x > 0, x, x * args.attr("negative_slope", 0.01))


def _elu(args: Args):
    x, alpha = args.x, args.attr("alpha", 1.0)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _softplus(args: Args):
    x, beta, threshold = args.x, args.attr("beta", 1.0), args.attr("threshold", 20.0)
    return np.where(x * beta > threshold, x, np.log1p(np.exp(np.minimum(x * beta, threshold)))
                    / beta)


def _hardsigmoid(x):
    return np.clip(x / 6 + 0.5, 0, 1)


def _bitwise_not(x):
    return np.logical_not(x) if x.dtype == bool else np.invert(x)


def _where(args: Args):
    return np.where(args.operand("condition", 0), args.operand("self", 1),
                    args.operand("other", 2))


def _masked_fill(args: Args):
    x = args.x
    value = np.asarray(args.operand("value", 2)).astype(x.dtype)
    return np.where(args.operand("mask", 1), value, x)


def _tri(fn: Callable) -> Impl:
    return lambda args: fn(args.x, k=int(args.attr("diagonal", 0)))


def _gelu(args: Args):
    return gelu(args.x, str(args.attr("approximate", "none")))


def _round(args: Args):
    return np.round(args.x, int(args.attr("decimals", 0)))


def _cast(args: Args):
    return args.x  # the interpreter converts to the declared dtype


ELEMENTWISE: dict[str, Impl] = {
    "add": _add, "sub": _sub, "rsub": _rsub, "mul": _binary(np.multiply), "div": _div,
    "pow": _pow, "maximum": _binary(np.maximum), "minimum": _binary(np.minimum),
    "eq": _binary(np.equal), "ne": _binary(np.not_equal), "lt": _binary(np.less),
    "le": _binary(np.less_equal), "gt": _binary(np.greater), "ge": _binary(np.greater_equal),
    "logical_and": _binary(np.logical_and), "logical_or": _binary(np.logical_or),
    "bitwise_and": _binary(np.bitwise_and), "bitwise_or": _binary(np.bitwise_or),
    "__and__": _binary(np.bitwise_and), "__or__": _binary(np.bitwise_or),
    "remainder": _binary(np.remainder), "fmod": _binary(np.fmod),
    "floor_divide": _binary(np.floor_divide),
    "neg": _unary(np.negative), "abs": _unary(np.abs), "reciprocal": _unary(lambda x: 1 / x),
    "sqrt": _unary(np.sqrt), "rsqrt": _unary(_rsqrt), "exp": _unary(np.exp),
    "log": _unary(np.log), "log1p": _unary(np.log1p), "expm1": _unary(np.expm1),
    "sin": _unary(np.sin), "cos": _unary(np.cos), "tanh": _unary(np.tanh),
    "erf": _unary(erf), "sign": _unary(np.sign), "floor": _unary(np.floor),
    "ceil": _unary(np.ceil), "round": _round, "trunc": _unary(np.trunc),
    "relu": _unary(lambda x: np.maximum(x, 0)), "sigmoid": _unary(sigmoid),
    "silu": _unary(silu), "gelu": _gelu, "square": _unary(np.square),
    "logical_not": _unary(np.logical_not), "bitwise_not": _unary(_bitwise_not),
    "isnan": _unary(np.isnan), "isinf": _unary(np.isinf),
    "clamp": _clamp, "clamp_min": lambda a: np.maximum(a.x, a.operand("min", 1)),
    "clamp_max": lambda a: np.minimum(a.x, a.operand("max", 1)), "hardtanh": _hardtanh,
    "relu6": _unary(lambda x: np.clip(x, 0, 6)), "leaky_relu": _leaky_relu, "elu": _elu,
    "softplus": _softplus, "hardsigmoid": _unary(_hardsigmoid),
    "hardswish": _unary(lambda x: x * _hardsigmoid(x)),
    "mish": _unary(lambda x: x * np.tanh(np.logaddexp(0, x))),
    "where": _where, "masked_fill": _masked_fill, "triu": _tri(np.triu), "tril": _tri(np.tril),
    "cast": _cast, "alias": _cast, "detach": _cast, "clone": _cast, "contiguous": _cast,
    "lift_fresh_copy": _cast,
}


# -- reductions ----------------------------------------------------------------------
def _axes(args: Args, key: str = "dim") -> tuple[int, ...]:
    return tuple(dims_attr(args.attrs, key, args.x.ndim))


def _keep(args: Args) -> bool:
    return bool(args.attr("keepdim", False))


def _reduce(fn: Callable) -> Impl:
    def impl(args: Args):
        x = args.x
        if x.dtype == bool and fn in (np.sum, np.prod):
            x = x.astype(np.int64)
        return fn(x, axis=_axes(args), keepdims=_keep(args))

    return impl


def _max_min(fn: Callable, arg_fn: Callable) -> Impl:
    def impl(args: Args):
        if args.attr("dim") is None:
            return fn(args.x)
        dim = norm_dim(int(args.attrs["dim"]), args.x.ndim)
        return [fn(args.x, axis=dim, keepdims=_keep(args)),
                _arg_reduce(arg_fn, args.x, dim, _keep(args))]

    return impl


def _arg_reduce(fn: Callable, x: np.ndarray, dim: int | None, keep: bool) -> np.ndarray:
    if dim is None:
        out = fn(x.reshape(-1))
        return np.reshape(out, (1,) * x.ndim) if keep else np.asarray(out)
    return np.expand_dims(fn(x, axis=dim), dim) if keep else fn(x, axis=dim)


def _arg(fn: Callable) -> Impl:
    def impl(args: Args):
        dim = args.attr("dim")
        return _arg_reduce(fn, args.x, None if dim is None else norm_dim(int(dim), args.x.ndim),
                           _keep(args))

    return impl


def _correction(args: Args) -> float:
    if args.attr("correction") is not None:
        return float(args.attrs["correction"])
    return 1.0 if args.attr("unbiased", True) else 0.0


def _var(args: Args):
    return np.var(args.x, axis=_axes(args), ddof=_correction(args), keepdims=_keep(args))


def _std(args: Args):
    return np.std(args.x, axis=_axes(args), ddof=_correction(args), keepdims=_keep(args))


def _logsumexp(args: Args):
    x, axes = args.x, _axes(args)
    m = np.max(x, axis=axes, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return out if _keep(args) else np.squeeze(out, axis=axes)


def _vector_norm(args: Args):
    x, order = np.abs(args.x), float(args.attr("ord", 2))
    axes, keep = _axes(args), _keep(args)
    if math.isinf(order):
        return (np.max if order > 0 else np.min)(x, axis=axes, keepdims=keep)
    return np.sum(x ** order, axis=axes, keepdims=keep) ** (1 / order)


def _softmax(log: bool) -> Impl:
    def impl(args: Args):
        axis = norm_dim(int(args.attr("dim", -1)), args.x.ndim)
        x = args.x
        if log:
            shifted = x - np.max(x, axis=axis, keepdims=True)
            return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        return softmax(x, axis)

    return impl


def _cumsum(args: Args):
    x = args.x.astype(np.int64) if args.x.dtype == bool else args.x
    return np.cumsum(x, axis=norm_dim(int(args.attrs["dim"]), x.ndim))


def _diff(args: Args):
    kwargs = {}
    for name, pos in (("prepend", 1), ("append", 2)):
        t = args.tensor(name, pos)
        if t is not None:
            kwargs[name] = t
    return np.diff(args.x, n=int(args.attr("n", 1)), axis=int(args.attr("dim", -1)), **kwargs)


REDUCTIONS: dict[str, Impl] = {
    "sum": _reduce(np.sum), "mean": _reduce(np.mean), "prod": _reduce(np.prod),
    "amax": _reduce(np.max), "amin": _reduce(np.min), "any": _reduce(np.any),
    "all": _reduce(np.all), "max": _max_min(np.max, np.argmax),
    "min": _max_min(np.min, np.argmin), "argmax": _arg(np.argmax), "argmin": _arg(np.argmin),
    "var": _var, "std": _std, "logsumexp": _logsumexp, "linalg_vector_norm": _vector_norm,
    "softmax": _softmax(False), "_softmax": _softmax(False), "log_softmax": _softmax(True),
    "_log_softmax": _softmax(True), "cumsum": _cumsum, "diff": _diff,
}


# -- matrix products -----------------------------------------------------------------
def _linear(args: Args):
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    out = np.matmul(args.x, np.swapaxes(w, -1, -2))
    return out + b if b is not None else out


def _addmm(args: Args):
    c, a, b = args.tensor("self", 0), args.values[-2], args.values[-1]
    return gemm(a, b, c, alpha=float(args.attr("alpha", 1)), beta=float(args.attr("beta", 1)))


def _gemm(args: Args):
    a, b = args.values[0], args.values[1]
    c = args.values[2] if len(args.values) > 2 else None
    return gemm(a, b, c, trans_b=bool(args.attr("trans_b", False)),
                alpha=float(args.attr("alpha", 1.0)), beta=float(args.attr("beta", 1.0)),
                act=str(args.attr("act", "none")))


def _matmul(args: Args):
    return np.matmul(args.values[0], args.values[1])


GEMMS: dict[str, Impl] = {
    "linear": _linear, "mm": _matmul, "bmm": _matmul, "matmul": _matmul, "addmm": _addmm,
    "baddbmm": _addmm, "gemm": _gemm,
}


# -- normalization, attention, embedding, fused kinds --------------------------------
def _eps(args: Args, x: np.ndarray) -> float:
    eps = args.attr("eps")
    return float(np.finfo(x.dtype).eps) if eps is None else float(eps)


def _n_norm_dims(args: Args) -> int:
    shape = args.attr("normalized_shape")
    return len(shape) if isinstance(shape, list | tuple) else 1


def _layer_norm(args: Args):
    x = args.x
    return layer_norm(x, args.tensor("weight", 1), args.tensor("bias", 2), _eps(args, x),
                      _n_norm_dims(args))


def _native_layer_norm(args: Args):
    x, n = args.x, _n_norm_dims(args)
    axes = tuple(range(x.ndim - n, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(np.var(x, axis=axes, keepdims=True) + x.dtype.type(_eps(args, x)))
    return [_layer_norm(args), mean, rstd]


def _rms_norm(args: Args):
    x = args.x
    return rms_norm(x, args.tensor("weight", 1), _eps(args, x), _n_norm_dims(args))


def _group_norm(args: Args):
    x, groups = args.x, int(args.attrs["num_groups"])
    grouped = x.reshape(x.shape[0], groups, -1)
    y = layer_norm(grouped, None, None, _eps(args, x)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    y = y * w.reshape(shape) if w is not None else y
    return y + b.reshape(shape) if b is not None else y


def _batch_norm_out(args: Args) -> np.ndarray:
    x = args.x
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = args.tensor("running_mean", 3).reshape(shape)
    var = args.tensor("running_var", 4).reshape(shape)
    y = (x - mean) / np.sqrt(var + x.dtype.type(_eps(args, x)))
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    y = y * w.reshape(shape) if w is not None else y
    return y + b.reshape(shape) if b is not None else y


def _batch_norm_triple(args: Args):
    empty = np.zeros((0,), args.x.dtype)
    return [_batch_norm_out(args), empty, empty]


def _sdpa(args: Args):
    """Fused (positional) nodes align causal masks bottom-right as docs/runtime.md says;
    captured ATen nodes keep torch's top-left alignment (the same when S == T)."""
    if float(args.attr("dropout_p", 0.0)) > 0:
        raise ValueError("attention dropout is random; export the model in eval mode")
    scale = args.attr("scale")
    q, k, v = args.tensor("query", 0), args.tensor("key", 1), args.tensor("value", 2)
    mask, causal = args.tensor("attn_mask", 3), bool(args.attr("is_causal", False))
    s, t = q.shape[-2], k.shape[-2]
    if causal and args.names is not None and s != t:
        mask, causal = np.tri(s, t, dtype=bool), False
    return sdpa(q, k, v, mask, scale=None if scale is None else float(scale), causal=causal)


def _embedding(args: Args):
    return np.take(args.tensor("weight", 0), args.tensor("indices", 1), axis=0)


def _swiglu(args: Args):
    return silu(args.values[0]) * args.values[1]


def _rope(args: Args):
    return rope(*args.values[:3])


NN: dict[str, Impl] = {
    "layer_norm": _layer_norm, "native_layer_norm": _native_layer_norm,
    "rms_norm": _rms_norm, "group_norm": _group_norm,
    "batch_norm": _batch_norm_out, "_native_batch_norm_legit_no_training": _batch_norm_triple,
    "scaled_dot_product_attention": _sdpa, "embedding": _embedding, "swiglu": _swiglu,
    "rope": _rope,
}

MATH: dict[str, Impl] = {**ELEMENTWISE, **REDUCTIONS, **GEMMS, **NN}
