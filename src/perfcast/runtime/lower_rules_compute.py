"""Lowering rules for row-wise ops (softmax, norms, reductions, embedding, RoPE), GEMMs
and attention; registered in :data:`perfcast.runtime.lower_rules.RULES`."""

from __future__ import annotations

import math

import numpy as np

from perfcast.ir import Node
from perfcast.runtime import views as V
from perfcast.runtime.lower import Lowerer
from perfcast.runtime.lower_rules import cast_view, emit_binary, rule
from perfcast.runtime.program import contiguous_strides


# -- row-wise ---------------------------------------------------------------------------
def _rows_cols(shape: tuple[int, ...], cols: int) -> tuple[int, int]:
    n = int(np.prod(shape, dtype=np.int64))
    return (n // cols if cols else 0), cols


@rule("softmax", "_softmax")
def _softmax(lw: Lowerer, node: Node) -> None:
    x = node.inputs[0]
    shape = lw.shape(x)
    dim = V.norm(int(node.attrs.get("dim", -1)), len(shape))
    if dim != len(shape) - 1 and any(d != 1 for d in shape[dim + 1:]):
        raise lw.error(f"softmax over dimension {dim} of a rank-{len(shape)} tensor; the "
                       "runtime normalizes over the last dimension only")
    src = lw.dense_view(cast_view(lw, x, lw.dtype(node.outputs[0])), x)
    rows, cols = _rows_cols(shape, shape[dim] if shape else 1)
    lw.emit("softmax", [src], [lw.output_root(node.outputs[0])], {"rows": rows, "cols": cols})


def _affine(lw: Lowerer, name: str | None, cols: int, fill: float) -> str:
    """The weight or bias buffer of a norm; a constant of ``fill`` when there is none."""
    if name is None:
        return lw.buf_of(lw.view(lw.add_const(np.full(cols, fill, np.float32), "affine")),
                         "affine")
    return lw.dense(name)


@rule("layer_norm", "native_layer_norm")
def _layer_norm(lw: Lowerer, node: Node) -> None:
    x, shape, cols, w = _norm_operands(lw, node)
    b = _affine(lw, node.tensor_arg("bias", 2), cols, 0.0)
    rows, cols = _rows_cols(shape, cols)
    eps = float(node.attrs.get("eps", 1e-5))
    lw.emit("layer_norm", [lw.dense(x), w, b], [lw.output_root(node.outputs[0])],
            {"rows": rows, "cols": cols, "eps": eps})


@rule("rms_norm", "_fused_rms_norm")
def _rms_norm(lw: Lowerer, node: Node) -> None:
    x, shape, cols, w = _norm_operands(lw, node)
    eps = node.attrs.get("eps")
    eps = float(np.finfo(np.float32).eps) if eps is None else float(eps)
    rows, cols = _rows_cols(shape, cols)
    lw.emit("rms_norm", [lw.dense(x), w], [lw.output_root(node.outputs[0])],
            {"rows": rows, "cols": cols, "eps": eps})


def _norm_operands(lw: Lowerer, node: Node) -> tuple[str, tuple, int, str]:
    """(input, its shape, normalized columns, weight buffer) of a layer or RMS norm."""
    _only_first_output_used(lw, node)
    x = node.inputs[0]
    shape = lw.shape(x)
    normalized = node.attrs.get("normalized_shape") or shape[-1:]
    cols = int(np.prod(normalized, dtype=np.int64))
    return x, shape, cols, _affine(lw, node.tensor_arg("weight", 1), cols, 1.0)


def _only_first_output_used(lw: Lowerer, node: Node) -> None:
    extra = [o for o in node.outputs[1:] if o in lw.used]
    if extra:
        raise lw.error(f"outputs {extra} are used; the runtime computes only the first "
                       f"output of {node.kind} (the normalized tensor, or the values)")


REDUCE = {"sum": "sum", "mean": "mean", "amax": "max", "max": "max"}


@rule(*REDUCE, "min")
def _reduce(lw: Lowerer, node: Node) -> None:
    out = node.outputs[0]
    if node.tensor_arg("other", 1) is not None:  # max(self, other): elementwise
        a, b = (cast_view(lw, i, lw.dtype(out)) for i in node.inputs)
        emit_binary(lw, "maximum" if node.kind == "max" else "minimum", a, b, out)
        return
    if node.kind not in REDUCE:
        raise lw.error(f"op kind {node.kind!r} is not supported by the runtime")
    _only_first_output_used(lw, node)
    x = node.inputs[0]
    shape = lw.shape(x)
    dims = node.attrs.get("dim")
    dims = list(range(len(shape))) if dims in (None, []) else (
        [dims] if isinstance(dims, int) else list(dims))
    dims = sorted({V.norm(int(d), len(shape)) for d in dims})
    if dims and dims != list(range(dims[0], dims[-1] + 1)):
        raise lw.error(f"reduction over non-adjacent dimensions {dims}")
    v = cast_view(lw, x, lw.dtype(out))
    src = lw.dense_view(v, x)
    lo, hi = (dims[0], dims[-1] + 1) if dims else (0, 0)
    outer = int(np.prod(shape[:lo], dtype=np.int64))
    inner_len = int(np.prod(shape[lo:hi], dtype=np.int64))
    inner = int(np.prod(shape[hi:], dtype=np.int64))
    lw.emit("reduce", [src], [lw.output_root(out)],
            {"op": REDUCE[node.kind], "outer": outer, "inner_len": inner_len, "inner": inner})


@rule("cumsum")
def _cumsum(lw: Lowerer, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape, dtype = lw.shape(x), lw.dtype(out)
    if dtype not in ("float32", "int64"):
        raise lw.error(f"cumsum to {dtype}; the runtime sums float32 or int64")
    dim = V.norm(int(node.attrs["dim"]), len(shape)) if shape else 0
    src = lw.dense_view(cast_view(lw, x, dtype), x)
    lw.emit("cumsum", [src], [lw.output_root(out)],
            {"outer": int(np.prod(shape[:dim], dtype=np.int64)),
             "inner_len": int(np.prod(shape[dim:dim + 1], dtype=np.int64)),
             "inner": int(np.prod(shape[dim + 1:], dtype=np.int64))})


@rule("gather")
def _gather(lw: Lowerer, node: Node) -> None:
    x, index, out = node.tensor_arg("self", 0), node.tensor_arg("index", 1), node.outputs[0]
    xs, ins = lw.shape(x), lw.shape(index)
    dim = V.norm(int(node.attrs.get("dim", 0)), len(xs)) if xs else 0
    if len(ins) != len(xs) or any(a != b for d, (a, b) in enumerate(zip(xs, ins, strict=True))
                                  if d != dim):
        raise lw.error(f"gather of {list(xs)} by an index of shape {list(ins)}: the index "
                       f"must match the input outside dim {dim}")
    src = lw.dense_view(cast_view(lw, x, lw.dtype(out)), x)
    idx = lw.dense_view(cast_view(lw, index, "int64"), index)
    lw.emit("gather", [src, idx], [lw.output_root(out)],
            {"outer": int(np.prod(xs[:dim], dtype=np.int64)),
             "len": int(np.prod(xs[dim:dim + 1], dtype=np.int64)),
             "m": int(np.prod(ins[dim:dim + 1], dtype=np.int64)),
             "inner": int(np.prod(xs[dim + 1:], dtype=np.int64))})


@rule("embedding")
def _embedding(lw: Lowerer, node: Node) -> None:
    table, idx = node.tensor_arg("weight", 0), node.tensor_arg("indices", 1)
    tshape = lw.shape(table)
    if len(tshape) != 2:
        raise lw.error(f"embedding table of rank {len(tshape)}; expected [vocab, dim]")
    ids = lw.dense_view(cast_view(lw, idx, "int64"), idx)
    lw.emit("embedding", [lw.dense(table), ids], [lw.output_root(node.outputs[0])],
            {"n": int(np.prod(lw.shape(idx), dtype=np.int64)), "dim": tshape[1]})


@rule("rope")
def _rope(lw: Lowerer, node: Node) -> None:
    x, cos, sin = node.inputs[:3]
    shape = lw.shape(x)
    d = shape[-1]
    if d % 2:
        raise lw.error(f"rope over an odd last dimension ({d})")
    vx = lw.view(x)
    # rope works row by row: run it over x's rows in memory order (heads split from a
    # projection stay where they are) with cos/sin permuted alike
    order = _memory_order(vx)
    phys = V.permute(vx, order)
    if not phys.contiguous:
        order = list(range(len(shape)))
        phys = V.permute(V.root_view(lw.dense(x), shape, vx.dtype), order)
        spec = lw.specs[phys.root]
        phys = V.View(spec.root, phys.shape, phys.strides, spec.elem_offset, phys.dtype)
    pshape = phys.shape
    views = [V.permute(V.broadcast_to(lw.view(n), shape), order) for n in (cos, sin)]
    # cos/sin broadcast over the leading dimensions repeat every cs_rows rows
    k = min(_broadcast_prefix(v) for v in views)
    tables = [lw.dense_view(V.View(v.root, v.shape[k:], v.strides[k:], v.offset, v.dtype), n)
              for v, n in zip(views, (cos, sin), strict=True)]
    src = lw.buf_of(phys, x)
    out = node.outputs[0]
    root = lw.new_root(out, pshape, lw.dtype(out))
    inverse = [order.index(j) for j in range(len(order))]
    lw.set_view(out, V.permute(V.root_view(root, pshape, lw.dtype(out)), inverse))
    lw.emit("rope", [src, *tables], [root],
            {"rows": int(np.prod(pshape[:-1], dtype=np.int64)), "d": d,
             "cs_rows": int(np.prod(pshape[k:-1], dtype=np.int64))})


def _memory_order(v: V.View) -> list[int]:
    """Leading dimensions by decreasing stride (the last one stays last)."""
    lead = sorted(range(v.rank - 1), key=lambda j: (-v.strides[j], j))
    return [*lead, v.rank - 1]


def _broadcast_prefix(v: V.View) -> int:
    """How many leading dimensions of ``v`` (but never the last) repeat the same values."""
    k = 0
    while k < v.rank - 1 and (v.strides[k] == 0 or v.shape[k] == 1):
        k += 1
    return k


# -- gemm -------------------------------------------------------------------------------
def _batch_stride(shape: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """One stride that walks all batch dimensions in order, or None if there is none."""
    dims = [(d, s) for d, s in zip(shape, strides, strict=True) if d != 1]
    if not dims:
        return 0
    stride = dims[-1][1]
    acc = dims[-1][0]
    for d, s in reversed(dims[:-1]):
        if s != stride * acc:
            return None
        acc *= d
    return stride


def _dense_like(lw: Lowerer, v: V.View, hint: str) -> V.View:
    """``v`` gathered into a contiguous buffer (a copy step unless it already is)."""
    name = lw.dense_view(v, hint)
    spec = lw.specs[name]
    return V.View(spec.root, v.shape, contiguous_strides(v.shape), spec.elem_offset, v.dtype)


def _gemm_operand(lw: Lowerer, v: V.View, hint: str, rows: int, cols: int,
                  batch_shape: tuple[int, ...], allow_t: bool) -> tuple[str, bool, int]:
    """A buffer for a [batch..., rows, cols] operand with dense rows: (name, transposed,
    batch stride). ``allow_t`` accepts the [cols, rows] layout instead (gemm's trans_b)."""
    batch = int(np.prod(batch_shape, dtype=np.int64))
    for attempt in range(2):
        if attempt:
            v = _dense_like(lw, v, hint)
        bs = _batch_stride(batch_shape, v.strides[:-2])
        plain = (v.strides[-1] == 1 or cols == 1) and (v.strides[-2] == cols or rows == 1)
        trans = allow_t and not plain and (v.strides[-2] == 1 or rows == 1) and (
            v.strides[-1] == rows or cols == 1)
        if bs is None or not (plain or trans):
            continue
        layout = (cols, rows) if trans else (rows, cols)
        shape, strides = (layout, (layout[1], 1)) if batch == 1 else (
            (batch, *layout), (bs, layout[1], 1))
        name, placed = lw.place(V.View(v.root, shape, strides, v.offset, v.dtype), hint)
        return name, trans, (placed.strides[0] if batch > 1 else 0)
    raise lw.error(f"gemm operand {hint!r} could not be laid out")  # pragma: no cover


def emit_gemm(lw: Lowerer, node: Node, a: str, b: str, c: str | None, *, trans_b: bool,
              alpha: float = 1.0, beta: float = 1.0, act: str = "none") -> None:
    out = node.outputs[0]
    out_shape = lw.shape(out)
    va, vb = lw.view(a), lw.view(b)
    for v, what in ((va, a), (vb, b)):
        if v.dtype != "float32":
            raise lw.error(f"gemm operand {what!r} is {v.dtype}; the runtime's gemm is float32")
    if va.rank == 1:
        va = V.unsqueeze(va, 0)
    if vb.rank == 1:
        vb = V.unsqueeze(vb, 0 if trans_b else -1)
    if trans_b:
        vb = V.transpose(vb, -1, -2)
    m, k, n = va.shape[-2], va.shape[-1], vb.shape[-1]
    if vb.shape[-2] != k:
        raise lw.error(f"gemm shapes {list(va.shape)} @ {list(vb.shape)} do not match")
    batch_shape = tuple(int(d) for d in np.broadcast_shapes(va.shape[:-2], vb.shape[:-2]))
    batch = int(np.prod(batch_shape, dtype=np.int64))
    va = V.broadcast_to(va, (*batch_shape, m, k))
    vb = V.broadcast_to(vb, (*batch_shape, k, n))
    if batch > 1 and all(s == 0 or d == 1 for d, s in zip(batch_shape, vb.strides[:-2],
                                                          strict=True)):
        tall = V.reshape(va, (batch * m, k))  # shared b: one tall gemm when a allows it
        if tall is not None:
            va, vb = tall, V.View(vb.root, (k, n), vb.strides[-2:], vb.offset, vb.dtype)
            m, batch, batch_shape = batch * m, 1, ()
    a_buf, _, a_bs = _gemm_operand(lw, va, a, m, k, batch_shape, allow_t=False)
    b_buf, transposed, b_bs = _gemm_operand(lw, vb, b, k, n, batch_shape, allow_t=True)
    inputs = [a_buf, b_buf]
    c_mode = "none"
    if c is not None:
        vc = cast_view(lw, c, "float32")
        if int(np.prod(vc.shape, dtype=np.int64)) == n and (not vc.shape or vc.shape[-1] == n):
            c_mode = "row"
            row = V.reshape(vc, (n,))
            inputs.append(lw.dense_view(row if row is not None else vc, c))
        else:
            c_mode = "full"
            inputs.append(lw.dense_view(V.broadcast_to(vc, out_shape), c))
    if batch * m * n != int(np.prod(out_shape, dtype=np.int64)):
        raise lw.error(f"gemm output {batch}x{m}x{n} does not fill {list(out_shape)}")
    lw.emit("gemm", inputs, [lw.output_root(out)],
            {"batch": batch, "m": m, "n": n, "k": k, "trans_b": transposed,
             "alpha": float(alpha), "beta": float(beta), "act": act,
             "a_batch_stride": a_bs, "b_batch_stride": b_bs, "c_mode": c_mode})


@rule("linear")
def _linear(lw: Lowerer, node: Node) -> None:
    emit_gemm(lw, node, node.tensor_arg("input", 0), node.tensor_arg("weight", 1),
              node.tensor_arg("bias", 2), trans_b=True)


@rule("addmm", "baddbmm")
def _addmm(lw: Lowerer, node: Node) -> None:
    first = "mat1" if node.kind == "addmm" else "batch1"
    second = "mat2" if node.kind == "addmm" else "batch2"
    emit_gemm(lw, node, node.tensor_arg(first, 1), node.tensor_arg(second, 2),
              node.tensor_arg("self", 0), trans_b=False,
              alpha=float(node.attrs.get("alpha", 1)), beta=float(node.attrs.get("beta", 1)))


@rule("mm", "bmm", "matmul")
def _matmul(lw: Lowerer, node: Node) -> None:
    b_name = "mat2" if node.kind in ("mm", "bmm") else "other"
    emit_gemm(lw, node, node.tensor_arg("self", 0), node.tensor_arg(b_name, 1), None,
              trans_b=False)


@rule("gemm")
def _gemm(lw: Lowerer, node: Node) -> None:
    a = node.attrs
    act = a.get("act", "none")
    if act not in ("none", "relu", "gelu", "gelu_tanh", "silu"):
        raise lw.error(f"gemm act={act!r}; allowed: none, relu, gelu, gelu_tanh, silu")
    emit_gemm(lw, node, node.inputs[0], node.inputs[1],
              node.inputs[2] if len(node.inputs) > 2 else None,
              trans_b=bool(a.get("trans_b", False)), alpha=float(a.get("alpha", 1.0)),
              beta=float(a.get("beta", 1.0)), act=act)


# -- attention ----------------------------------------------------------------------------
@rule("scaled_dot_product_attention")
def _sdpa(lw: Lowerer, node: Node) -> None:
    q, k, v = (node.tensor_arg(n, p) for n, p in (("query", 0), ("key", 1), ("value", 2)))
    mask = node.tensor_arg("attn_mask", 3)
    if float(node.attrs.get("dropout_p", 0.0) or 0.0) != 0.0:
        raise lw.error("attention with dropout_p > 0 (training) is not supported")
    views = []
    for name in (q, k, v):
        view = lw.view(name)
        if view.rank == 3:
            view = V.unsqueeze(view, 0)
        if view.rank != 4:
            raise lw.error(f"attention operand {name!r} has rank {view.rank}; expected 4 "
                           "([batch, heads, seq, head_dim])")
        if view.dtype != "float32":
            raise lw.error(f"attention operand {name!r} is {view.dtype}; expected float32")
        if view.strides[-1] != 1 and view.shape[-1] != 1:
            view = _dense_like(lw, view, name)
        views.append(view)
    d_qk, d_v = views[0].shape[3], views[2].shape[3]
    if views[1].shape[3] == d_qk != d_v:  # MLA: zeros widen the narrower head dims alike
        views = [_zero_padded(lw, vw, name, max(d_qk, d_v)) for vw, name in zip(
            views, (q, k, v), strict=True)]
    qkv, inputs = [], []
    for name, view in zip((q, k, v), views, strict=True):
        buf, view = lw.place(view, name)
        qkv.append(view)
        inputs.append(buf)
    vq, vk, vv = qkv
    b, hq, s, d = vq.shape
    hkv, t = vk.shape[1], vk.shape[2]
    if vk.shape[0] != b or vv.shape[:3] != vk.shape[:3] or vk.shape[3] != d or vv.shape[3] != d:
        raise lw.error(f"attention shapes q {list(vq.shape)}, k {list(vk.shape)}, "
                       f"v {list(vv.shape)} do not match (value head_dim must equal query's)")
    if hq % hkv:
        raise lw.error(f"query heads ({hq}) are not a multiple of key/value heads ({hkv})")
    scale = node.attrs.get("scale")
    scale = 1.0 / math.sqrt(d_qk) if scale is None else float(scale)
    causal = bool(node.attrs.get("is_causal", False))
    mask_kind, mask_strides = "none", [0, 0, 0, 0]
    if causal and s != t:  # torch aligns is_causal to the top left; the kernel bottom right
        keep = np.tril(np.ones((s, t), dtype=bool))
        mask = lw.add_const(keep, f"{node.name}.causal")
        causal = False
    if mask is not None:
        vm = lw.view(mask)
        mask_kind = "bool" if vm.dtype == "bool" else "add"
        if mask_kind == "add" and vm.dtype != "float32":
            vm = cast_view(lw, mask, "float32")
        if causal:  # both: fold the causal part into a bool mask
            raise lw.error("attention with both is_causal and an explicit mask")
        buf, vm = lw.place(vm, mask)
        mask_strides = list(V.broadcast_to(vm, (b, hq, s, t)).strides)
        inputs.append(buf)
    out = node.outputs[0]
    attrs = {"b": b, "hq": hq, "hkv": hkv, "s": s, "t": t, "d": d, "scale": scale,
             "causal": causal, "mask_kind": mask_kind, "mask_strides": mask_strides,
             "q_strides": _strides(vq), "k_strides": _strides(vk), "v_strides": _strides(vv)}
    if lw.shape(out) == (b, hq, s, d) and _heads_moved_next(lw, out):
        # written as [b, s, hq, d], so the head merge that follows needs no copy
        root = lw.new_root(out, (b, s, hq, d), "float32")
        view = V.transpose(V.root_view(root, (b, s, hq, d), "float32"), 1, 2)
        buf = lw.buf_of(view, out)
        lw.set_view(out, view)
        attrs["out_strides"] = list(view.strides)
        lw.emit("attention", inputs, [buf], attrs)
        return
    lw.emit("attention", inputs, [lw.output_root(out, (b, hq, s, d))], attrs)
    result = V.slice_(lw.view(out), 3, 0, d_v)  # drops the zero padding of v, if any
    if result.shape != lw.shape(out):  # 3-D operands
        result = V.squeeze(result, [0])
    lw.set_view(out, result)


def _zero_padded(lw: Lowerer, view: V.View, name: str, width: int) -> V.View:
    """``view`` [b, h, n, dh], or a new arena buffer [b, h, n, width] with it on the left
    and zeros on the right (copy steps)."""
    if view.shape[3] == width:
        return view
    shape = (*view.shape[:3], width)
    root = lw.new_root(lw.fresh(f"{name}.padded"), shape, "float32")
    full = V.root_view(root, shape, "float32")
    zero = lw.view(lw.add_const(np.zeros(1, np.float32), f"{name}.zero"))
    for part, region in ((view, V.slice_(full, 3, 0, view.shape[3])),
                         (None, V.slice_(full, 3, view.shape[3], width))):
        src, placed = lw.place(V.broadcast_to(zero, region.shape) if part is None else part,
                               name)
        lw.copy_into(src, placed.shape, placed.strides, root, region.offset, region.strides)
    return full


def _heads_moved_next(lw: Lowerer, tensor: str) -> bool:
    """Every reader of ``tensor`` swaps its head and sequence dimensions."""
    users = lw.consumers.get(tensor, [])
    if not users or tensor in lw.graph.outputs:
        return False
    for node in users:
        if node.kind == "transpose":
            dims = {V.norm(int(node.attrs.get("dim0", 0)), 4),
                    V.norm(int(node.attrs.get("dim1", 1)), 4)}
            if dims != {1, 2}:
                return False
        elif node.kind != "permute" or [V.norm(int(d), 4) for d in node.attrs["dims"]] != \
                [0, 2, 1, 3]:
            return False
    return True



def _strides(v: V.View) -> list[int]:
    """Element strides of a 4-d attention operand (the last one 1 by construction)."""
    return [int(x) for x in v.strides[:3]] + [1]
