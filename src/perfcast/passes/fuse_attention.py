"""Attention recognition.

- ``attention``: ``P @ V`` with ``P = softmax(mask(scale * Q @ K^T))`` (matmul or
  ``gemm`` form, scale as scalar multiplies/divides or ``alpha``, mask as
  ``masked_fill``, ``where`` or an additive ``add``) becomes one
  ``scaled_dot_product_attention(q, k, v[, mask])``.
- ``sdpa``: an attention node is put in canonical form: explicit ``scale`` and
  ``is_causal``; K/V expanded for GQA (``unsqueeze -> expand -> reshape`` or
  ``repeat_interleave`` over heads) replaced by the un-expanded tensors; a constant
  mask that keeps everything is dropped, and one equal to the causal pattern
  (bottom-right aligned, ``j <= i + T - S``) becomes ``is_causal=True``. A captured
  ``is_causal`` with ``S != T`` (torch aligns it top-left) becomes an explicit mask.
"""

from __future__ import annotations

import math

import numpy as np

from perfcast.ir import Family, Node, Tensor, in_family
from perfcast.ir.ops._util import broadcast
from perfcast.ir.ops.attention import causal_keep
from perfcast.passes.gemm import gemm_flags
from perfcast.passes.rewrite import (
    Work,
    exclusive,
    operand,
    scalar_binary,
    scalar_of,
    swaps_last_two,
)

SDPA = "scaled_dot_product_attention"
MASKED = -1e30  # mask fill / additive values at or below this act as minus infinity


# -- canonical SDPA -------------------------------------------------------------------
def fuse_sdpa(work: Work, node: Node) -> tuple[str, ...] | None:
    if node.kind != SDPA or float(node.attrs.get("dropout_p", 0.0) or 0.0) != 0.0:
        return None
    q, k, v = (node.tensor_arg(n, p) for p, n in enumerate(("query", "key", "value")))
    mask = node.tensor_arg("attn_mask", 3)
    if q is None or k is None or v is None or work.tensors[q].rank != 4:
        return None
    qt = work.tensors[q]
    scale = node.attrs.get("scale")
    scale = 1 / math.sqrt(qt.shape[-1]) if scale is None else float(scale)  # type: ignore
    causal = bool(node.attrs.get("is_causal", False))
    done: list[str] = []
    s, t = qt.shape[-2], work.tensors[k].shape[-2]
    if causal and s != t and node.arg_names is not None:  # torch aligns top-left
        if mask is not None:
            return None
        mask, causal = work.add_const(f"{node.name}.causal", np.tri(s, t, dtype=bool)), False
        done.append("causal_top_left")
    interior: list[Node] = []
    grouped = [_ungroup(work, kv, interior) for kv in (k, v)]
    if all(grouped) and grouped[0][1] == grouped[1][1]:  # type: ignore[index]
        k, v = grouped[0][0], grouped[1][0]  # type: ignore[index]
        done.append("gqa")
    if mask is not None:
        verdict = _mask_verdict(work, mask, qt.shape, t)
        if verdict == "all" or (verdict == "causal" and not causal):
            done.append("causal_mask" if verdict == "causal" else "mask_dropped")
            causal, mask = causal or verdict == "causal", None
    canonical = set(node.attrs) == {"scale", "is_causal"}
    if not done and canonical:
        return None
    inputs = (q, k, v) if mask is None else (q, k, v, mask)
    new = Node(node.name, SDPA, inputs, node.outputs, {"scale": scale, "is_causal": causal},
               node.module)
    work.replace(node, [new], interior=interior)
    return tuple(done) or ("sdpa",)


def _ungroup(work: Work, t: str, interior: list[Node]) -> tuple[str, int] | None:
    """``(kv, rep)`` when ``t`` is ``kv [B, H, T, D]`` with each head repeated ``rep`` times."""
    shape = work.tensors[t].shape
    node = work.producer(t)
    if node is None or len(shape) != 4:
        return None
    if node.kind == "repeat_interleave":
        dim, reps = node.attrs.get("dim"), node.attrs.get("repeats")
        if dim is None or int(dim) % 4 != 1 or not isinstance(reps, int):  # type: ignore
            return None
        interior.append(node)
        return node.inputs[0], reps
    if not in_family(node.kind, Family.RESHAPE):
        return None
    e = work.producer(node.inputs[0])
    u = work.producer(e.inputs[0]) if e is not None and e.kind == "expand" else None
    if u is None or u.kind != "unsqueeze" or int(u.attrs.get("dim", 0)) % 5 != 2:  # type: ignore
        return None
    src = work.tensors[u.inputs[0]].shape  # [B, H, T, D]
    wide = work.tensors[e.outputs[0]].shape  # type: ignore[union-attr]  # [B, H, R, T, D]
    if len(src) != 4 or len(wide) != 5 or wide[:2] != src[:2] or wide[3:] != src[2:]:
        return None
    if shape != (src[0], src[1] * wide[2], src[2], src[3]):
        return None
    interior.extend([node, e, u])  # type: ignore[list-item]
    return u.inputs[0], int(wide[2])


def _mask_verdict(work: Work, mask: str, qshape: tuple, t: int) -> str | None:
    """"all" (keeps every score), "causal", or None for a mask to keep as it is."""
    value = work.value(mask)
    if value is None or value.ndim > 4:
        return None
    s = int(qshape[-2])
    full = (*qshape[:-1], t)
    if broadcast(full, value.shape) != full:
        return None
    lead = value.shape[:-2] if value.ndim >= 2 else ()
    v = np.broadcast_to(value, (*lead, s, t))
    if value.dtype == bool:
        keep = v
    elif value.dtype.kind == "f":
        if not np.all((v == 0) | (v <= MASKED)):
            return None
        keep = v == 0
    else:
        return None
    if keep.all():
        return "all"
    return "causal" if np.array_equal(keep, np.broadcast_to(causal_keep(s, t), keep.shape)) \
        else None


# -- decomposed attention -------------------------------------------------------------
def fuse_attention(work: Work, node: Node) -> str | None:
    pv = _plain_product(work, node)
    if pv is None or pv[2] or pv[3] != 1.0:
        return None
    p, v = pv[0], pv[1]
    owned: list[Node] = []
    sm = work.producer(work.resolve(p, owned))
    if sm is None or not _last_dim_softmax(work, sm):
        return None
    owned.append(sm)
    scores, scale, mask = _unwrap_scores(work, sm.inputs[0], owned)
    if scores is None:
        return None
    qk = work.producer(scores)
    parts = _plain_product(work, qk) if qk is not None else None
    if parts is None:
        return None
    owned.append(qk)  # type: ignore[arg-type]
    q, b, trans_b, alpha = parts
    optional: list[Node] = []
    k = b if trans_b else _untransposed(work, b, optional)
    if k is None or not _shapes_fit(work, q, k, v):
        return None
    if not exclusive(work, node, owned):
        return None
    new_nodes, mask_t = _keep_mask(work, node, mask)
    if mask is not None and mask_t is None:
        return None
    inputs = (q, k, v) if mask_t is None else (q, k, v, mask_t)
    attrs = {"scale": scale * alpha, "is_causal": False}
    work.replace(node, [*new_nodes, Node(node.name, SDPA, inputs, node.outputs, attrs,
                                         node.module)], interior=owned + optional)
    return "attention"


def _plain_product(work: Work, node: Node) -> tuple[str, str, bool, float] | None:
    """``(a, b, trans_b, alpha)`` of a matmul/bmm or a ``gemm`` without ``c`` and act."""
    if node.kind in ("matmul", "bmm") and len(node.inputs) == 2:
        return node.inputs[0], node.inputs[1], False, 1.0
    if node.kind == "gemm" and len(node.inputs) == 2:
        flags = gemm_flags(node)
        if flags["act"] == "none":
            return node.inputs[0], node.inputs[1], flags["trans_b"], flags["alpha"]
    return None


def _last_dim_softmax(work: Work, node: Node) -> bool:
    if node.kind not in ("softmax", "_softmax") or node.attrs.get("half_to_float"):
        return False
    t = work.tensors[node.inputs[0]]
    dtype = node.attrs.get("dtype")
    return int(node.attrs.get("dim", -1)) % t.rank == t.rank - 1 and dtype in (None, t.dtype)


def _unwrap_scores(work: Work, s: str, owned: list[Node]):
    """Walk back from the softmax input through scalings and one mask to ``Q @ K^T``."""
    scale, mask = 1.0, None
    for _ in range(8):
        s = work.resolve(s, owned)
        n = work.producer(s)
        if n is None:
            return None, scale, mask
        pair = scalar_binary(work, n) if n.kind in ("mul", "div") else None
        if pair is not None and pair[1] != 0:
            scale *= pair[1] if n.kind == "mul" else 1 / pair[1]
            owned.append(n)
            s = pair[0]
            continue
        found = _mask_step(work, n) if mask is None else None
        if found is None:
            return s, scale, mask
        mask, s = found[0], found[1]
        owned.append(n)
    return None, scale, mask


def _mask_step(work: Work, n: Node) -> tuple[tuple[str, str], str] | None:
    """``((mask kind, mask tensor), scores)`` when ``n`` applies a mask to the scores."""
    if n.kind == "masked_fill":
        fill = scalar_of(work, operand(n, "value", 2))
        m, x = n.tensor_arg("mask", 1), n.tensor_arg("self", 0)
        if fill is not None and fill <= MASKED and m is not None and x is not None:
            return ("drop", m), x
    if n.kind == "where":
        fill = scalar_of(work, operand(n, "other", 2))
        c, x = n.tensor_arg("condition", 0), n.tensor_arg("self", 1)
        same = x is not None and work.tensors[x].shape == work.tensors[n.outputs[0]].shape
        if fill is not None and fill <= MASKED and c is not None and same:
            return ("keep", c), x
    if n.kind == "add" and n.attrs.get("alpha", 1) == 1 and len(n.inputs) == 2:
        out = work.tensors[n.outputs[0]]
        for x, m in (n.inputs, n.inputs[::-1]):
            if work.tensors[x].shape == out.shape and _reaches_product(work, x) and \
                    work.tensors[m].dtype == out.dtype:
                return ("add", m), x
    return None


def _reaches_product(work: Work, t: str) -> bool:
    for _ in range(8):
        n = work.producer(work.resolve(t))
        if n is None:
            return False
        if _plain_product(work, n) is not None:
            return True
        pair = scalar_binary(work, n) if n.kind in ("mul", "div") else None
        if pair is None:
            return False
        t = pair[0]
    return False


def _untransposed(work: Work, kt: str, optional: list[Node]) -> str | None:
    tr = work.producer(work.resolve(kt, optional))
    if tr is None or not tr.inputs or not swaps_last_two(tr, work.tensors[kt].rank):
        return None
    optional.append(tr)
    return tr.inputs[0]


def _shapes_fit(work: Work, q: str, k: str, v: str) -> bool:
    qs, ks, vs = (work.tensors[t].shape for t in (q, k, v))
    if not len(qs) == len(ks) == len(vs) == 4:
        return False
    dtypes = {work.tensors[t].dtype for t in (q, k, v)}
    return (qs[0] == ks[0] == vs[0] and ks[1] == vs[1] and qs[1] % ks[1] == 0
            and ks[2] == vs[2] and qs[3] == ks[3] and len(dtypes) == 1)


def _keep_mask(work: Work, root: Node, mask: tuple[str, str] | None):
    """New nodes and the mask tensor in SDPA form (bool keep-mask or additive float)."""
    if mask is None:
        return [], None
    kind, m = mask
    t = work.tensors[m]
    if kind == "add":
        return [], m
    if t.dtype != "bool":
        return [], None
    if kind == "keep":
        return [], m
    value = work.value(m)
    if value is not None:
        return [], work.add_const(f"{root.name}.keep", ~value)
    name = work.fresh(f"{root.name}.keep")
    work.add_tensor(Tensor(name, t.shape, "bool"))
    return [Node(name, "logical_not", (m,), (name,), {}, root.module)], name
