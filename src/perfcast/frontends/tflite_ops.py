"""TFLite operators -> IR nodes, for :mod:`perfcast.frontends.tflite_import`.

Layout: every IR tensor keeps its TFLite shape (activations NHWC, CONV_2D filters OHWI,
DEPTHWISE_CONV_2D filters 1HWC with C = in channels x depth multiplier). The registry's
convolution and pooling kinds are NCHW, so these ops are written as PyTorch would run
them in channels-last: ``permute`` views (no kernel, no bytes) turn the input into NCHW
and the filter into OIHW (depthwise: [C, 1, kh, kw] with groups = in channels), the op
runs in NCHW, and a view permutes its result back to the NHWC output tensor. FLOPs are
then the registry's, 2*N*Ho*Wo*Cout*(Cin/groups)*kh*kw plus one add per output for a bias.
SAME padding becomes ceil(total/2) on each side (the output shape comes from the file).

A fused activation (``fused_activation_function``) becomes its own elementwise node
after the op (relu, relu6, hardtanh for RELU_N1_TO_1, tanh); fusion targets merge it
into the op's kernel. Operands that TFLite passes as constant tensors but the registry
takes as attributes (shapes, permutations, axes, paddings) become attributes. An op
with no matching kind, or whose attribute operand is not constant, keeps the kind
``tflite.OPNAME``: the estimator lists it as unsupported and costs its bytes only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfcast.ir import Graph, Node, Tensor
from perfcast.ir.dtypes import FLOATING


@dataclass(frozen=True)
class TensorRec:
    """One tensor of the subgraph as stored in the file."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    const: bool  # has buffer data (a weight or constant operand)
    data: np.ndarray | None = None  # the buffer's bytes (None when absent or stored outside)
    variable: bool = False
    quant: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpRec:
    """One operator: its builtin name, tensor indices (-1 = omitted) and options."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


# fused_activation_function (ActivationFunctionType) -> elementwise kind
ACTIVATIONS = {1: "relu", 2: "hardtanh", 3: "relu6", 4: "tanh"}
ELEMENTWISE = {
    "ADD": "add", "SUB": "sub", "MUL": "mul", "DIV": "div", "RELU": "relu", "RELU6": "relu6",
    "RELU_N1_TO_1": "hardtanh", "LOGISTIC": "sigmoid", "TANH": "tanh", "HARD_SWISH": "hardswish",
    "GELU": "gelu", "EXP": "exp", "LOG": "log", "SQRT": "sqrt", "RSQRT": "rsqrt", "ABS": "abs",
    "NEG": "neg", "SIN": "sin", "COS": "cos", "FLOOR": "floor", "CEIL": "ceil", "ROUND": "round",
    "SQUARE": "square", "POW": "pow", "MAXIMUM": "maximum", "MINIMUM": "minimum",
    "LEAKY_RELU": "leaky_relu", "ELU": "elu", "SIGN": "sign", "EQUAL": "eq", "NOT_EQUAL": "ne",
    "LESS": "lt", "LESS_EQUAL": "le", "GREATER": "gt", "GREATER_EQUAL": "ge",
    "LOGICAL_AND": "logical_and", "LOGICAL_OR": "logical_or", "LOGICAL_NOT": "logical_not",
    "SELECT": "where", "SELECT_V2": "where", "FLOOR_DIV": "floor_divide",
    "FLOOR_MOD": "remainder",
}
REDUCTIONS = {"MEAN": "mean", "SUM": "sum", "REDUCE_MAX": "amax", "REDUCE_MIN": "amin",
              "REDUCE_PROD": "prod", "REDUCE_ANY": "any", "REDUCE_ALL": "all"}
CASTS = frozenset({"QUANTIZE", "DEQUANTIZE", "CAST"})
# ops TFLite evaluates once at load time when their input is constant (weight decoding)
FOLDABLE = frozenset({"DEQUANTIZE", "DENSIFY"})
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
# operands a rule reads (default 1); an op with fewer is left as tflite.OPNAME
ARITY = {**dict.fromkeys(REDUCTIONS, 2), **dict.fromkeys(
    ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "SQUARED_DIFFERENCE",
     "ARG_MAX", "ARG_MIN", "TRANSPOSE", "TILE", "PAD", "PADV2", "MIRROR_PAD", "SPLIT",
     "GATHER"], 2), "SPLIT_V": 3}


class Builder:
    """Appends the IR nodes of one TFLite operator at a time to ``graph``."""

    def __init__(self, graph: Graph, recs: Sequence[TensorRec], names: Sequence[str]) -> None:
        self.graph = graph
        self.recs = recs
        self.names = names
        self._views: dict[tuple[str, str, str], str] = {}
        self._prefix = ""
        self._module = ""
        self._act: tuple[str, str] | None = None

    # -- operands ---------------------------------------------------------------------
    def tensor(self, i: int) -> Tensor:
        return self.graph.tensors[self.names[i]]

    def ints(self, i: int) -> list[int] | None:
        """The values of constant integer operand ``i`` (None if not a constant)."""
        rec = self.recs[i]
        if rec.data is None or rec.dtype not in ("int32", "int64"):
            return None
        return [int(v) for v in np.frombuffer(rec.data.tobytes(), dtype=rec.dtype)]

    # -- emission ---------------------------------------------------------------------
    def node(self, kind: str, inputs: Sequence[str], outputs: Sequence[str],
             attrs: dict[str, Any] | None = None, role: str = "") -> None:
        name = f"{self._prefix}.{role}" if role else self._prefix
        self.graph.add_node(Node(name, kind, tuple(inputs), tuple(outputs), attrs or {},
                                 self._module))

    def temp(self, base: str, suffix: str, shape: Sequence[int], dtype: str) -> str:
        name, k = f"{base}.{suffix}", 1
        while name in self.graph.tensors:
            name, k = f"{base}.{suffix}{k}", k + 1
        self.graph.add_tensor(Tensor(name, tuple(shape), dtype))
        return name

    def view(self, src: str, kind: str, attrs: dict[str, Any], shape: Sequence[int],
             suffix: str) -> str:
        """A view of ``src`` (made once, reused by every consumer)."""
        key = (src, kind, repr(sorted(attrs.items())))
        if key not in self._views:
            out = self.temp(src, suffix, shape, self.graph.tensors[src].dtype)
            self.node(kind, [src], [out], attrs, role=suffix)
            self._views[key] = out
        return self._views[key]

    def permute(self, src: str, dims: Sequence[int], suffix: str) -> str:
        shape = self.graph.tensors[src].shape
        return self.view(src, "permute", {"dims": list(dims)}, [shape[d] for d in dims], suffix)

    def result(self, op: OpRec) -> str:
        """The tensor the op's main node writes: its output, or a pre-activation temp."""
        out = self.tensor(op.outputs[0])
        act = ACTIVATIONS.get(int(op.options.get("fused_activation_function", 0)))
        if act is None:
            return out.name
        pre = self.temp(out.name, "pre_act", out.shape, out.dtype)
        self._act = (act, pre)
        return pre

    def lower(self, k: int, op: OpRec, module: str) -> None:
        """Append the nodes of operator number ``k``."""
        self._prefix, self._module, self._act = f"n{k}:{op.name}", module, None
        rule, need = RULES.get(op.name), ARITY.get(op.name, 1)
        usable = op.outputs and len(op.inputs) >= need and min(op.inputs[:need]) >= 0
        if rule is None or not usable or not rule(self, op):
            self._unknown(op)
            return
        if self._act is not None:
            kind, pre = self._act
            attrs = {"min_val": -1.0, "max_val": 1.0} if kind == "hardtanh" else {}
            self.node(kind, [pre], [self.tensor(op.outputs[0]).name], attrs, role=kind)

    def _unknown(self, op: OpRec) -> None:
        attrs = {k: v for k, v in op.options.items() if isinstance(v, int | float | str | list)}
        self.node(f"tflite.{op.name}", [self.names[i] for i in op.inputs if i >= 0],
                  [self.names[o] for o in op.outputs], attrs)


# -- rules: return False to leave the op as tflite.OPNAME -----------------------------
def _same_pad(padding: int, size: int, out: int, k: int, stride: int, dil: int) -> int:
    """Symmetric padding per side for TFLite's Padding (0 = SAME, 1 = VALID)."""
    if padding != 0:
        return 0
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return (total + 1) // 2


def _window(op: OpRec, x: Tensor, out: Tensor, ks: Sequence[int]) -> dict[str, list[int]]:
    o = op.options
    stride = [int(o.get("stride_h", 1)), int(o.get("stride_w", 1))]
    dil = [int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))]
    pads = [_same_pad(int(o.get("padding", 0)), int(x.shape[1 + a]), int(out.shape[1 + a]),
                      int(ks[a]), stride[a], dil[a]) for a in (0, 1)]
    return {"stride": stride, "padding": pads, "dilation": dil}


def _nchw_op(b: Builder, op: OpRec, kind: str, inputs: list[str], attrs: dict) -> None:
    """Run ``kind`` in NCHW on NHWC operands and permute its result back."""
    out = b.tensor(op.outputs[0])
    target = b.result(op)
    n, h, w, c = out.shape
    nchw = b.temp(target, "nchw", (n, c, h, w), out.dtype)
    b.node(kind, inputs, [nchw], attrs)
    b.node("permute", [nchw], [target], {"dims": list(TO_NHWC)}, role="nhwc")


def _conv(b: Builder, op: OpRec) -> bool:
    x, w = b.tensor(op.inputs[0]), b.tensor(op.inputs[1])
    if not x.rank == w.rank == b.tensor(op.outputs[0]).rank == 4:
        return False
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    groups = x.shape[3] if depthwise else x.shape[3] // w.shape[3]
    ks = w.shape[1:3]
    weight = b.permute(w.name, (3, 0, 1, 2) if depthwise else TO_NCHW, "oihw")
    inputs = [b.permute(x.name, TO_NCHW, "nchw"), weight]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    if has_bias:
        inputs.append(b.names[op.inputs[2]])
    attrs = {**_window(op, x, b.tensor(op.outputs[0]), ks), "groups": int(groups),
             "transposed": False, "tensor_args": ["input", "weight", "bias"][:len(inputs)]}
    _nchw_op(b, op, "convolution", inputs, attrs)
    return True


def _pool(b: Builder, op: OpRec) -> bool:
    x = b.tensor(op.inputs[0])
    if not x.rank == b.tensor(op.outputs[0]).rank == 4:
        return False
    ks = [int(op.options.get("filter_height", 1)), int(op.options.get("filter_width", 1))]
    window = _window(op, x, b.tensor(op.outputs[0]), ks)
    kind = "avg_pool2d" if op.name == "AVERAGE_POOL_2D" else "max_pool2d"
    _nchw_op(b, op, kind, [b.permute(x.name, TO_NCHW, "nchw")],
             {"kernel_size": ks, "stride": window["stride"], "padding": window["padding"]})
    return True


def _fully_connected(b: Builder, op: OpRec) -> bool:
    x, w, out = b.tensor(op.inputs[0]), b.tensor(op.inputs[1]), b.tensor(op.outputs[0])
    if w.rank != 2 or out.rank == 0:
        return False
    want = (*out.shape[:-1], w.shape[1])
    if x.numel != int(np.prod(want)):
        return False
    src = x.name if x.shape == want else b.view(x.name, "reshape", {"shape": list(want)},
                                                want, "rows")
    inputs = [src, w.name]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(b.names[op.inputs[2]])
    b.node("linear", inputs, [b.result(op)],
           {"tensor_args": ["input", "weight", "bias"][:len(inputs)]})
    return True


def _batch_matmul(b: Builder, op: OpRec) -> bool:
    operands = []
    for i, adj in zip(op.inputs[:2], ("adj_x", "adj_y"), strict=True):
        t = b.tensor(i)
        if op.options.get(adj) and t.rank >= 2:
            shape = (*t.shape[:-2], t.shape[-1], t.shape[-2])
            operands.append(b.view(t.name, "transpose", {"dim0": -2, "dim1": -1}, shape, adj))
        else:
            operands.append(t.name)
    b.node("matmul", operands, [b.result(op)])
    return True


def _elementwise(b: Builder, op: OpRec) -> bool:
    inputs = [b.names[i] for i in op.inputs if i >= 0]
    attrs: dict[str, Any] = {}
    if op.name == "RELU_N1_TO_1":
        attrs = {"min_val": -1.0, "max_val": 1.0}
    elif op.name == "LEAKY_RELU":
        attrs = {"negative_slope": float(op.options.get("alpha", 0.01))}
    b.node(ELEMENTWISE[op.name], inputs, [b.result(op)], attrs)
    return True


def _cast(b: Builder, op: OpRec) -> bool:
    out = b.tensor(op.outputs[0])
    b.node("cast", [b.names[op.inputs[0]]], [out.name], {"dtype": out.dtype})
    return True


def _squared_difference(b: Builder, op: OpRec) -> bool:
    out = b.tensor(op.outputs[0])
    diff = b.temp(out.name, "diff", out.shape, out.dtype)
    b.node("sub", [b.names[i] for i in op.inputs[:2]], [diff])
    b.node("square", [diff], [out.name], role="square")
    return True


def _reduce(b: Builder, op: OpRec) -> bool:
    axes = b.ints(op.inputs[1])
    if axes is None:
        return False
    b.node(REDUCTIONS[op.name], [b.names[op.inputs[0]]], [b.names[op.outputs[0]]],
           {"dim": axes, "keepdim": bool(op.options.get("keep_dims", False))})
    return True


def _arg(b: Builder, op: OpRec) -> bool:
    axis = b.ints(op.inputs[1])
    if not axis:
        return False
    kind = "argmax" if op.name == "ARG_MAX" else "argmin"
    b.node(kind, [b.names[op.inputs[0]]], [b.names[op.outputs[0]]], {"dim": axis[0]})
    return True


def _softmax(b: Builder, op: OpRec) -> bool:
    kind = "softmax" if op.name == "SOFTMAX" else "log_softmax"
    b.node(kind, [b.names[op.inputs[0]]], [b.names[op.outputs[0]]], {"dim": -1})
    return True


def _one_input(kind: str, attrs: Callable[[Builder, OpRec], dict[str, Any] | None],
               ) -> Callable[[Builder, OpRec], bool]:
    """A rule for ops of one data input whose other operands become attributes."""
    def rule(b: Builder, op: OpRec) -> bool:
        values = attrs(b, op)
        if values is None:
            return False
        b.node(kind, [b.names[op.inputs[0]]], [b.names[o] for o in op.outputs], values)
        return True

    return rule


def _pad_attrs(b: Builder, op: OpRec) -> dict[str, Any] | None:
    flat = b.ints(op.inputs[1])
    if flat is None:
        return None
    pairs = [flat[2 * d:2 * d + 2] for d in range(len(flat) // 2)]
    attrs: dict[str, Any] = {"pad": [p for pair in reversed(pairs) for p in pair]}
    if op.name == "MIRROR_PAD":
        attrs["mode"] = "symmetric" if op.options.get("mode") else "reflect"
    return attrs


def _split(b: Builder, op: OpRec) -> bool:
    data, axis_at = (op.inputs[1], 0) if op.name == "SPLIT" else (op.inputs[0], 2)
    axis = b.ints(op.inputs[axis_at])
    if not axis:
        return False
    dim = axis[0] % b.tensor(data).rank
    sizes = [b.tensor(o).shape[dim] for o in op.outputs]
    b.node("split", [b.names[data]], [b.names[o] for o in op.outputs],
           {"dim": dim, "split_sizes": sizes})
    return True


def _concat_or_stack(b: Builder, op: OpRec) -> bool:
    kind = "cat" if op.name == "CONCATENATION" else "stack"
    target = b.result(op) if kind == "cat" else b.names[op.outputs[0]]
    b.node(kind, [b.names[i] for i in op.inputs if i >= 0], [target],
           {"dim": int(op.options.get("axis", 0))})
    return True


def _gather(b: Builder, op: OpRec) -> bool:
    table, axis = b.tensor(op.inputs[0]), int(op.options.get("axis", 0))
    kind = "embedding" if (table.const and table.dtype in FLOATING and table.rank == 2
                           and axis == 0) else "index_select"
    attrs = {} if kind == "embedding" else {"dim": axis}
    b.node(kind, [b.names[i] for i in op.inputs[:2]], [b.names[op.outputs[0]]], attrs)
    return True


def _out_shape(b: Builder, op: OpRec) -> list[int]:
    return [int(d) for d in b.tensor(op.outputs[0]).shape]


Rule = Callable[[Builder, OpRec], bool]
RULES: dict[str, Rule] = {
    **dict.fromkeys(ELEMENTWISE, _elementwise),
    **dict.fromkeys(REDUCTIONS, _reduce),
    **dict.fromkeys(CASTS, _cast),
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _fully_connected,
    "BATCH_MATMUL": _batch_matmul, "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool,
    "SQUARED_DIFFERENCE": _squared_difference, "ARG_MAX": _arg, "ARG_MIN": _arg,
    "SOFTMAX": _softmax, "LOG_SOFTMAX": _softmax, "CONCATENATION": _concat_or_stack,
    "PACK": _concat_or_stack, "SPLIT": _split, "SPLIT_V": _split, "GATHER": _gather,
    "RESHAPE": _one_input("reshape", lambda b, op: {"shape": _out_shape(b, op)}),
    "EXPAND_DIMS": _one_input("reshape", lambda b, op: {"shape": _out_shape(b, op)}),
    "BROADCAST_TO": _one_input("expand", lambda b, op: {"size": _out_shape(b, op)}),
    "SQUEEZE": _one_input("squeeze", lambda b, op: {
        "dim": [int(d) for d in op.options.get("squeeze_dims") or []] or None}),
    "TRANSPOSE": _one_input("permute", lambda b, op: (
        None if (perm := b.ints(op.inputs[1])) is None else {"dims": perm})),
    "TILE": _one_input("repeat", lambda b, op: (
        None if (reps := b.ints(op.inputs[1])) is None else {"repeats": reps})),
    "UNPACK": _one_input("unbind", lambda b, op: {"dim": int(op.options.get("axis", 0))}),
    "PAD": _one_input("constant_pad_nd", _pad_attrs),
    "PADV2": _one_input("constant_pad_nd", _pad_attrs),
    "MIRROR_PAD": _one_input("pad", _pad_attrs),
}
