"""Ops of LLM serving graphs that have no single ATen op: attention over a KV cache,
grouped expert GEMMs with partly active experts, rotary embedding, MoE token routing.

All formulas broadcast over NumPy-array dimensions (batch, context, parallelism).
"""

from __future__ import annotations

import numpy as np

from perfcast.ir.ops._util import same_as_input
from perfcast.ir.ops.attention import SOFTMAX_FLOPS_PER_ELEMENT
from perfcast.ir.registry import Category, Family, define
from perfcast.ir.tensor import Dim

ROPE_FLOPS_PER_ELEMENT = 3  # x*cos + rotate_half(x)*sin: two multiplies and an add


def visible_keys(new: Dim, context: Dim, causal: bool, window: Dim | None) -> Dim:
    """Query-key pairs one sequence computes: ``new`` queries at the end of ``context`` keys.

    Query i (0-based among the new ones) sees keys up to position ``context - new + i``;
    a sliding window keeps only the last ``window`` of them. Summed in closed form so
    arrays of lengths broadcast.
    """
    if not causal:
        seen = context if window is None else np.minimum(context, window)
        return new * seen
    first = context - new + 1  # keys visible to the first new query
    if window is None:
        return new * first + new * (new - 1) // 2
    below = np.clip(window - first + 1, 0, new)  # queries that see fewer than `window` keys
    return below * first + below * (below - 1) // 2 + (new - below) * window


def _attn_infer(ins, attrs):
    q, v = ins[0], ins[2]
    return [((*q.shape[:-1], v.shape[-1]), q.dtype)]


def _attn_pairs(ins, attrs) -> Dim:
    q, k = ins[0], ins[1]
    batch, heads, new = q.shape[0], q.shape[1], q.shape[2]
    context = attrs.get("context", k.shape[2])
    return batch * heads * visible_keys(new, context, bool(attrs.get("causal", True)),
                                        attrs.get("window"))


def _attn_flops(ins, outs, attrs) -> Dim:
    q, v = ins[0], ins[2]
    pairs = _attn_pairs(ins, attrs)
    return pairs * (2 * (q.shape[-1] + v.shape[-1]) + 1 + SOFTMAX_FLOPS_PER_ELEMENT)


def _attn_bytes(ins, outs, attrs) -> Dim:
    q, k, v = ins[0], ins[1], ins[2]
    cache = k.nbytes if attrs.get("value_in_key") else k.nbytes + v.nbytes
    return q.nbytes + cache + outs[0].nbytes


# cached_attention(q [B, Hq, S, Dqk], k [B, Hkv, L, Dqk], v [B, Hkv, L, Dv]); attrs:
#   causal (default True), window (sliding window or None), context (total keys per
#   sequence if it differs from L), value_in_key (MLA: V is a slice of the cached K,
#   read once). L is the number of cached keys actually read.
define("cached_attention", Category.ATTENTION, _attn_infer, _attn_flops, _attn_bytes)


def _grouped_infer(ins, attrs):
    x, w = ins[0], ins[1]
    return [((x.shape[0], w.shape[1]), str(attrs.get("out_dtype") or x.dtype))]


def _grouped_flops(ins, outs, attrs) -> Dim:
    x, w = ins[0], ins[1]
    bias = 1 if len(ins) > 2 else 0
    return (2 * x.shape[1] + bias) * x.shape[0] * w.shape[1]


def _grouped_bytes(ins, outs, attrs) -> Dim:
    """Activations in and out, plus only the weights of the groups that receive rows."""
    x, w = ins[0], ins[1]
    groups = w.shape[0]
    active = np.minimum(attrs.get("active_groups", groups), groups)
    weights = w.nbytes * active / groups
    bias = ins[2].nbytes * active / groups if len(ins) > 2 else 0
    return x.nbytes + weights + bias + outs[0].nbytes


# grouped_gemm(x [R, K], w [G, N, K], bias [G, N]?): each of the R routed rows goes
# through one of the G weight groups (experts); attr active_groups = groups that got rows.
define("grouped_gemm", Category.GEMM, _grouped_infer, _grouped_flops, _grouped_bytes)


def rope_flops(ins, outs, attrs) -> Dim:
    return ROPE_FLOPS_PER_ELEMENT * ins[0].numel


# rotary_embedding(x): RoPE with its cos/sin tables left implicit (not read, not costed);
# the runtime's ``rope(x, cos, sin)`` (fused.py) reads them as inputs.
define("rotary_embedding", Category.ELEMENTWISE, same_as_input, rope_flops)


def _dispatch_infer(ins, attrs):
    x = ins[0]
    return [((x.shape[0] * int(attrs["top_k"]) // attrs.get("shards", 1), x.shape[1]),
             x.dtype)]


def _combine_infer(ins, attrs):
    return [(ins[1].shape, ins[1].dtype)]


def _combine_flops(ins, outs, attrs) -> Dim:
    return 2 * ins[0].numel  # weight each routed row, add it to its token


# moe_dispatch(x [T, H]): copy each token to its top_k experts' rows ([T*top_k/shards, H]
# on this device); moe_combine(rows, x): weighted sum of a token's expert outputs.
define("moe_dispatch", Category.DATA_MOVEMENT, _dispatch_infer, family=Family.MOVEMENT)
define("moe_combine", Category.DATA_MOVEMENT, _combine_infer, _combine_flops,
       family=Family.MOVEMENT)
