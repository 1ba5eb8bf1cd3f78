"""Elementwise ops: FLOPs per output element from one documented table.

Every basic arithmetic, comparison or transcendental function counts 1 FLOP per
element; composite activations count their constituent operations (SiLU = x *
sigmoid(x) = exp, add, reciprocal, mul = 4). Casts count 0 FLOPs but move bytes.
Bytes are inputs as stored (a broadcast operand is read at its own size) plus the
output.
"""

from __future__ import annotations

from perfcast.ir.dtypes import FLOATING, itemsize
from perfcast.ir.ops._util import broadcast
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim

# op kind -> FLOPs per output element
FLOPS_PER_ELEMENT: dict[str, int] = {
    **dict.fromkeys(
        ["add", "sub", "rsub", "mul", "div", "neg", "abs", "reciprocal", "sqrt", "rsqrt",
         "exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "erf", "pow", "sign", "floor",
         "ceil", "round", "trunc", "relu", "maximum", "minimum", "where", "masked_fill",
         "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
         "bitwise_not", "bitwise_and", "bitwise_or", "__and__", "__or__", "square",
         "remainder", "fmod", "isnan", "isinf", "triu", "tril", "clamp_min", "clamp_max",
         "floor_divide"], 1),
    **dict.fromkeys(["clamp", "hardtanh", "relu6", "leaky_relu", "addcmul", "addcdiv"], 2),
    **dict.fromkeys(["sigmoid", "elu", "softplus", "lerp"], 3),
    "silu": 4,
    "hardsigmoid": 4,
    "hardswish": 5,
    "gelu": 8,
    "mish": 7,
    **dict.fromkeys(["cast", "fill"], 0),
}


def _promote(ins) -> str:
    """Result dtype: the widest floating input, else the first input's dtype."""
    floats = [t.dtype for t in ins if t.dtype in FLOATING]
    return max(floats, key=itemsize) if floats else ins[0].dtype


def _infer(ins, attrs):
    data = ins[1:] if attrs.get("_condition_first") else ins
    return [(broadcast(*(t.shape for t in ins)), str(attrs.get("dtype") or _promote(data)))]


def _where_infer(ins, attrs):
    return _infer(ins, {**attrs, "_condition_first": True})


def _bool_infer(ins, attrs):
    return [(broadcast(*(t.shape for t in ins)), "bool")]


def _per_element(n: int):
    def flops(ins, outs, attrs) -> Dim:
        return n * outs[0].numel

    return flops


_PREDICATES = {"eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or",
               "isnan", "isinf"}

for _kind, _n in FLOPS_PER_ELEMENT.items():
    _fn = _bool_infer if _kind in _PREDICATES else _where_infer if _kind == "where" else _infer
    define(_kind, Category.ELEMENTWISE, _fn, _per_element(_n))
