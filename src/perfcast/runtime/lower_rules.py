"""Per-kind lowering rules: IR node -> runtime steps (docs/runtime.md lists the steps).

Each rule reads the node's inputs as views through the :class:`Lowerer` and emits steps;
view kinds only compute a new view. ``RULES`` maps IR kinds to rules (with those of
:mod:`perfcast.runtime.lower_rules_compute`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from perfcast.ir import IDENTITY, Family, Node, in_family, kinds_of
from perfcast.runtime import views as V
from perfcast.runtime.lower import Lowerer
from perfcast.runtime.program import DTYPES, contiguous_strides

Rule = Callable[[Lowerer, Node], None]
RULES: dict[str, Rule] = {}

def rule(*kinds: str, view: bool = False) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        fn.view = view  # type: ignore[attr-defined]
        for k in kinds:
            RULES[k] = fn
        return fn

    return register


def fold_node(lw: Lowerer, node: Node, fallback: bool = False) -> None:
    """Evaluate a node whose inputs are all constants with the IR interpreter; if it cannot,
    leave the node to its rule (``fallback``) or raise."""
    from perfcast.runtime.interpret import InterpretError, eval_node

    if in_family(node.kind, Family.CREATION):  # input values do not matter
        values = [np.zeros(lw.shape(i), DTYPES.get(lw.dtype(i), np.float32))
                  for i in node.inputs]
    else:
        values = [np.array(lw.const_value(i)) for i in node.inputs]
    try:
        outs = eval_node(node, lw.graph, values)
    except InterpretError as exc:
        if fallback:
            return
        raise lw.error(f"op kind {node.kind!r} is not supported by the runtime, and "
                       f"evaluating it on constants failed: {exc}") from exc
    for name, value in zip(node.outputs, outs, strict=True):
        lw.values[name] = lw.materialize(value)
        lw.set_view(name, V.root_view(name, value.shape, lw.dtype(name)))
    lw.folded.append(node.name)


# -- views ------------------------------------------------------------------------------
def _set(lw: Lowerer, node: Node, view: V.View) -> None:
    lw.set_view(node.outputs[0], view)


def _reshaped(lw: Lowerer, name: str, shape) -> V.View:
    v = lw.view(name)
    out = V.reshape(v, shape)
    if out is None:  # not expressible with strides: gather first
        dense = lw.dense(name)
        out = V.reshape(V.root_view(dense, v.shape, v.dtype), shape)
        spec = lw.specs[dense]
        out = V.View(spec.root, out.shape, out.strides, spec.elem_offset, v.dtype)
    return out


@rule(*kinds_of(Family.RESHAPE), view=True)
def _reshape(lw: Lowerer, node: Node) -> None:
    _set(lw, node, _reshaped(lw, node.inputs[0], lw.shape(node.outputs[0])))


@rule(*kinds_of(IDENTITY), view=True)
def _alias(lw: Lowerer, node: Node) -> None:
    # functional graphs never write in place, so a clone can share its source
    _set(lw, node, lw.view(node.inputs[0]))


@rule("unsqueeze", view=True)
def _unsqueeze(lw: Lowerer, node: Node) -> None:
    _set(lw, node, V.unsqueeze(lw.view(node.inputs[0]), int(node.attrs["dim"])))


@rule("squeeze", view=True)
def _squeeze(lw: Lowerer, node: Node) -> None:
    dims = node.attrs.get("dim")
    dims = None if dims is None else [dims] if isinstance(dims, int) else list(dims)
    _set(lw, node, V.squeeze(lw.view(node.inputs[0]), dims))


@rule("expand", view=True)
def _expand(lw: Lowerer, node: Node) -> None:
    _set(lw, node, V.expand(lw.view(node.inputs[0]), node.attrs["size"]))


@rule("permute", view=True)
def _permute(lw: Lowerer, node: Node) -> None:
    _set(lw, node, V.permute(lw.view(node.inputs[0]), node.attrs["dims"]))


@rule("numpy_T", view=True)
def _numpy_t(lw: Lowerer, node: Node) -> None:
    v = lw.view(node.inputs[0])
    _set(lw, node, V.permute(v, list(range(v.rank))[::-1]))


@rule("transpose", "t", view=True)
def _transpose(lw: Lowerer, node: Node) -> None:
    a, b = int(node.attrs.get("dim0", 0)), int(node.attrs.get("dim1", 1))
    _set(lw, node, V.transpose(lw.view(node.inputs[0]), a, b))


@rule("slice", view=True)
def _slice(lw: Lowerer, node: Node) -> None:
    a = node.attrs
    _set(lw, node, V.slice_(lw.view(node.inputs[0]), int(a.get("dim", 0)), a.get("start"),
                            a.get("end"), int(a.get("step", 1))))


@rule("select", view=True)
def _select(lw: Lowerer, node: Node) -> None:
    _set(lw, node, V.select(lw.view(node.inputs[0]), int(node.attrs["dim"]),
                            int(node.attrs["index"])))


@rule("narrow", view=True)
def _narrow(lw: Lowerer, node: Node) -> None:
    start = int(node.attrs["start"])
    _set(lw, node, V.slice_(lw.view(node.inputs[0]), int(node.attrs["dim"]), start,
                            start + int(node.attrs["length"])))


@rule("split", "split_with_sizes", "chunk", "unbind", view=True)
def _split(lw: Lowerer, node: Node) -> None:
    v = lw.view(node.inputs[0])
    dim = V.norm(int(node.attrs.get("dim", 0)), v.rank)
    sizes = [lw.shape(o)[dim] if node.kind != "unbind" else 1 for o in node.outputs]
    for name, piece in zip(node.outputs, V.split(v, dim, sizes), strict=True):
        lw.set_view(name, V.squeeze(piece, [dim]) if node.kind == "unbind" else piece)


# -- elementwise --------------------------------------------------------------------------
BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow",
          "maximum": "maximum", "minimum": "minimum", "eq": "eq", "ne": "ne", "lt": "lt",
          "le": "le", "gt": "gt", "ge": "ge", "__and__": "and", "logical_and": "and",
          "bitwise_and": "and", "__or__": "or", "logical_or": "or", "bitwise_or": "or"}
SCALAR_OPS = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_SCALAR_ATTRS = ("other", "exponent", "self")


def cast_view(lw: Lowerer, name: str, dtype: str) -> V.View:
    """``name``'s view, converted to ``dtype`` by a cast step when it differs."""
    v = lw.view(name)
    if v.dtype == dtype:
        return v
    if lw.is_const(name):
        return lw.view(lw.add_const(np.asarray(lw.const_value(name)).astype(DTYPES[dtype]),
                                    name))
    src = lw.dense(name)
    out = lw.new_root(lw.fresh(f"{name}.{dtype}"), v.shape, dtype)
    lw.emit("cast", [src], [out], {"to": dtype})
    return V.root_view(out, v.shape, dtype)


def _scalar_const(lw: Lowerer, value: Any, dtype: str) -> V.View:
    return lw.view(lw.add_const(np.array(value, dtype=DTYPES[dtype]), "scalar"))


def emit_binary(lw: Lowerer, op: str, a: V.View, b: V.View, out_tensor: str) -> None:
    """``binary`` step over broadcast views ``a`` and ``b`` into a new root for the tensor."""
    shape = lw.shape(out_tensor)
    (ia, a), (ib, b) = lw.place(a, "a"), lw.place(b, "b")
    sa = V.broadcast_to(a, shape).strides
    sb = V.broadcast_to(b, shape).strides
    shp, sa, sb, _ = V.coalesce(shape, sa, sb, contiguous_strides(shape))
    out = lw.output_root(out_tensor)
    lw.emit("binary", [ia, ib], [out], {"op": op, "rank": len(shp), "shape": list(shp),
                                        "a_strides": list(sa), "b_strides": list(sb)})


def _scalar_operand(node: Node) -> tuple[Any, bool]:
    """The number operand of a binary op, and whether it comes first (``2 ** x``)."""
    for key in _SCALAR_ATTRS:
        value = node.attrs.get(key)
        if isinstance(value, int | float | bool) and key not in (node.arg_names or ()):
            return value, key == "self"
    raise ValueError("no scalar operand found")


# scalar step for `x op v` and, when the number comes first, for `v op x`
_SCALAR_STEP = {op: (op, op) for op in ("add", "mul", "maximum", "minimum")}
_SCALAR_STEP.update({"sub": ("sub", "rsub"), "div": ("div", "rdiv"), "pow": ("pow", None)})


@rule(*BINARY, "rsub")
def _binary(lw: Lowerer, node: Node) -> None:
    out = node.outputs[0]
    op = "sub" if node.kind == "rsub" else BINARY[node.kind]
    if node.attrs.get("rounding_mode") is not None:
        raise lw.error(f"division with rounding_mode={node.attrs['rounding_mode']!r} is not "
                       "supported")
    alpha = node.attrs.get("alpha", 1)
    if op in {"and", "or"}:
        compute = "bool"
    elif op in COMPARE:
        dts = [lw.dtype(i) for i in node.inputs]
        compute = "float32" if "float32" in dts or len(dts) == 1 else dts[0]
    else:
        compute = lw.dtype(out)
    if len(node.inputs) == 2:
        a, b = (cast_view(lw, i, compute) for i in node.inputs)
        if node.kind == "rsub":  # rsub(x, y) = y - alpha * x
            a, b = b, a
        if alpha != 1:
            b = _scaled(lw, b, alpha, node)
        emit_binary(lw, op, a, b, out)
        return
    x = cast_view(lw, node.inputs[0], compute)
    value, first = _scalar_operand(node)
    if node.kind == "rsub":  # other - alpha * x
        first = True
        if alpha != 1:
            x = _scaled(lw, x, alpha, node)
    elif alpha != 1:
        value = value * alpha
    step = _SCALAR_STEP.get(op, (None, None))[int(first)]
    if step is not None:
        _scalar_on_view(lw, step, x, value, out, compute)
    else:  # no scalar step: a binary with a one-element constant
        k = _scalar_const(lw, value, compute)
        emit_binary(lw, op, *((k, x) if first else (x, k)), out)


def _scaled(lw: Lowerer, v: V.View, alpha: float, node: Node) -> V.View:
    src = lw.dense_view(v, node.name)
    out = lw.new_root(lw.fresh(f"{node.name}.alpha"), v.shape, v.dtype)
    lw.emit("scalar", [src], [out], {"op": "mul", "value": float(alpha)})
    return V.root_view(out, v.shape, v.dtype)


def _scalar_on_view(lw: Lowerer, op: str, v: V.View, value: Any, out_tensor: str,
                    dtype: str) -> None:
    if v.shape != lw.shape(out_tensor) or not v.contiguous:  # strided: a binary with stride 0
        inverse = {"rsub": "sub", "rdiv": "div"}
        if op in inverse:
            emit_binary(lw, inverse[op], _scalar_const(lw, value, dtype), v, out_tensor)
        else:
            emit_binary(lw, op, v, _scalar_const(lw, value, dtype), out_tensor)
        return
    src = lw.buf_of(v, out_tensor)
    out = lw.output_root(out_tensor)
    lw.emit("scalar", [src], [out], {"op": op, "value": float(value)})


UNARY = {"relu": "relu", "silu": "silu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp",
         "log": "log", "neg": "neg", "sqrt": "sqrt", "rsqrt": "rsqrt", "abs": "abs",
         "cos": "cos", "sin": "sin", "square": "square", "reciprocal": "reciprocal",
         "erf": "erf", "logical_not": "not", "bitwise_not": "not"}


def emit_unary(lw: Lowerer, op: str, x: str, out_tensor: str) -> None:
    src = lw.dense(x)
    lw.emit("unary", [src], [lw.output_root(out_tensor)], {"op": op})


@rule(*UNARY)
def _unary(lw: Lowerer, node: Node) -> None:
    emit_unary(lw, UNARY[node.kind], node.inputs[0], node.outputs[0])


@rule("gelu")
def _gelu(lw: Lowerer, node: Node) -> None:
    approx = node.attrs.get("approximate", "none")
    if approx not in ("none", "tanh"):
        raise lw.error(f"gelu approximate={approx!r}; allowed: 'none', 'tanh'")
    emit_unary(lw, "gelu" if approx == "none" else "gelu_tanh", node.inputs[0], node.outputs[0])


@rule("clamp", "clamp_min", "clamp_max", "hardtanh")
def _clamp(lw: Lowerer, node: Node) -> None:
    a = node.attrs
    lo = a.get("min", a.get("min_val")) if node.kind != "clamp_max" else None
    hi = a.get("max", a.get("max_val")) if node.kind != "clamp_min" else None
    if node.kind == "hardtanh":
        lo, hi = a.get("min_val", -1.0), a.get("max_val", 1.0)
    out, dtype = node.outputs[0], lw.dtype(node.outputs[0])
    v = cast_view(lw, node.inputs[0], dtype)
    if lo is not None and hi is not None:
        src = lw.dense_view(v, node.name)
        mid = lw.new_root(lw.fresh(f"{node.name}.lo"), v.shape, dtype)
        lw.emit("scalar", [src], [mid], {"op": "maximum", "value": float(lo)})
        v, lo = V.root_view(mid, v.shape, dtype), None
    if lo is None and hi is None:
        raise lw.error("clamp without min or max")
    op, value = ("maximum", lo) if lo is not None else ("minimum", hi)
    _scalar_on_view(lw, op, v, value, out, dtype)


@rule("cast", "_to_copy", "to")
def _cast(lw: Lowerer, node: Node) -> None:
    out = node.outputs[0]
    v = cast_view(lw, node.inputs[0], lw.dtype(out))
    lw.set_view(out, v)


@rule("where")
def _where(lw: Lowerer, node: Node) -> None:
    out = node.outputs[0]
    dtype = lw.dtype(out)
    operands = []
    for pos, key in enumerate(("condition", "self", "other")):
        name = node.tensor_arg(key, pos)
        if name is not None:
            operands.append(cast_view(lw, name, "bool" if pos == 0 else dtype))
        else:
            operands.append(_scalar_const(lw, node.attrs[key], "bool" if pos == 0 else dtype))
    emit_where(lw, *operands, out)


@rule("masked_fill")
def _masked_fill(lw: Lowerer, node: Node) -> None:
    out = node.outputs[0]
    dtype = lw.dtype(out)
    x = cast_view(lw, node.inputs[0], dtype)
    mask = cast_view(lw, node.tensor_arg("mask", 1), "bool")
    value_name = node.tensor_arg("value", 2)
    value = (cast_view(lw, value_name, dtype) if value_name is not None
             else _scalar_const(lw, node.attrs["value"], dtype))
    emit_where(lw, mask, value, x, out)


def emit_where(lw: Lowerer, cond: V.View, a: V.View, b: V.View, out_tensor: str) -> None:
    shape = lw.shape(out_tensor)
    placed = [lw.place(v, hint) for v, hint in ((cond, "cond"), (a, "a"), (b, "b"))]
    ins = [name for name, _ in placed]
    sc, sa, sb = (V.broadcast_to(v, shape).strides for _, v in placed)
    shp, sc, sa, sb, _ = V.coalesce(shape, sc, sa, sb, contiguous_strides(shape))
    lw.emit("where", ins, [lw.output_root(out_tensor)],
            {"rank": len(shp), "shape": list(shp), "cond_strides": list(sc),
             "a_strides": list(sa), "b_strides": list(sb)})


@rule("swiglu")
def _swiglu(lw: Lowerer, node: Node) -> None:
    gate, up = (lw.dense(i) for i in node.inputs[:2])
    out = lw.output_root(node.outputs[0])
    lw.emit("swiglu", [gate, up], [out], {"n": int(np.prod(lw.shape(node.outputs[0])))})


# -- data movement ------------------------------------------------------------------------
@rule("cat", "concat", "stack")
def _cat(lw: Lowerer, node: Node) -> None:
    out_tensor = node.outputs[0]
    shape = lw.shape(out_tensor)
    rank = len(shape)
    dim = V.norm(int(node.attrs.get("dim", 0)), rank)
    out = lw.output_root(out_tensor)
    full = V.root_view(out, shape, lw.dtype(out_tensor))
    start = 0
    for name in node.inputs:
        if 0 in lw.shape(name):  # nothing to copy (torch.cat also skips empty 1-D tensors)
            continue
        v = cast_view(lw, name, lw.dtype(out_tensor))
        if node.kind == "stack":
            v = V.unsqueeze(v, dim)
        region = V.slice_(full, dim, start, start + v.shape[dim])
        start += v.shape[dim]
        src, v = lw.place(v, name)
        if region.contiguous:
            lw.copy_into(src, v.shape, v.strides, out, region.offset)
        else:
            lw.copy_into(src, v.shape, v.strides, out, region.offset, region.strides)



@rule("index")
def _index(lw: Lowerer, node: Node) -> None:
    """``x[i0, i1, ...]`` with constant index tensors (e.g. aranges that build attention
    masks) whose picked elements lie on a strided grid: a view of ``x``."""
    v = lw.view(node.inputs[0])
    if not all(lw.is_const(i) for i in node.inputs[1:]):
        raise lw.error("indexing with non-constant index tensors is not supported")
    given = iter(node.inputs[1:])
    key = tuple(lw.const_value(next(given)) if entry == "tensor" else slice(None)
                for entry in node.attrs["indices"])
    picked = _offset_grid(v.shape, v.strides, v.offset)[key]
    base = int(picked.flat[0]) if picked.size else 0
    strides = tuple(int(picked[tuple(int(j == d) for j in range(picked.ndim))]) - base
                    if n > 1 and picked.size else 0 for d, n in enumerate(picked.shape))
    if min(strides, default=0) < 0 or not np.array_equal(
            _offset_grid(picked.shape, strides, base), picked):
        raise lw.error("indexing whose picked elements do not form a strided view is not "
                       "supported")
    _set(lw, node, V.View(v.root, tuple(picked.shape), strides, base, v.dtype))


def _offset_grid(shape, strides, base: int) -> np.ndarray:
    """The element offset of every position of a strided view."""
    grid = np.full(tuple(shape), base, dtype=np.int64)
    for d, (n, s) in enumerate(zip(shape, strides, strict=True)):
        grid += (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(shape) - d - 1))
    return grid


# Row-wise, GEMM and attention rules live in their own module; importing it registers them.
from perfcast.runtime import lower_rules_compute  # noqa: E402, F401
