"""NumPy semantics of the IR's elementwise and reduction kinds, and :class:`Args`, how
every interpreter kernel reads its node's operands. Each kernel takes :class:`Args` and
returns an array or a list of arrays; the interpreter casts results to the dtypes the
graph declares. Matrix, norm, attention and fused kinds: :mod:`perfcast.runtime.interpret_nn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from perfcast.ir import IDENTITY, Node, kinds_of, schema_arg
from perfcast.ir.ops._util import dims_attr, norm_dim
from perfcast.runtime.reference import erf, gelu, sigmoid, silu, softmax

_MISSING = object()


class Args:
    """A node's operands by schema name: a tensor input if there is one, else an attribute
    (:meth:`perfcast.ir.Node.tensor_arg` finds the input)."""

    def __init__(self, node: Node, values: Sequence[np.ndarray]) -> None:
        self.node = node
        self.values = list(values)
        self.attrs = node.attrs

    @property
    def x(self) -> np.ndarray:
        return self.values[0]

    def tensor(self, name: str, pos: int) -> np.ndarray | None:
        """The tensor input ``name`` (``pos`` when inputs are positional), or None."""
        return schema_arg(self.values, self.attrs, name, pos)

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
    "cast": _cast, **dict.fromkeys(kinds_of(IDENTITY), _cast),
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


def _max_min(fn: Callable, arg_fn: Callable, pair_fn: Callable) -> Impl:
    """``max``/``min``: of all elements, along ``dim`` (values and indices), or the
    elementwise form ``max(self, other)``."""
    def impl(args: Args):
        other = args.tensor("other", 1)
        if other is not None:
            return pair_fn(args.x, other)
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
    "all": _reduce(np.all), "max": _max_min(np.max, np.argmax, np.maximum),
    "min": _max_min(np.min, np.argmin, np.minimum), "argmax": _arg(np.argmax),
    "argmin": _arg(np.argmin),
    "var": _var, "std": _std, "logsumexp": _logsumexp, "linalg_vector_norm": _vector_norm,
    "softmax": _softmax(False), "_softmax": _softmax(False), "log_softmax": _softmax(True),
    "_log_softmax": _softmax(True), "cumsum": _cumsum, "diff": _diff,
}
