"""Scaled dot-product attention as one fused op (flash / memory-efficient style).

FLOPs: the two matmuls, 2*B*H*Sq*Sk*(Dqk + Dv), as ``torch.utils.flop_counter``
counts them, plus the arithmetic it leaves out: scaling (1), mask add (1, if a mask
is given) and softmax (max, subtract, exp, sum, divide: 5) per score element.
Causal masking is counted as the full score matrix, like the flop counter; a kernel
that skips the masked half shows up as a higher efficiency, not fewer FLOPs.
Bytes: Q, K, V, mask read once and the output written once — the score matrix
never leaves the kernel.
"""

from __future__ import annotations

import numpy as np

from perfcast.ir.graph import schema_arg
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim, numel

SOFTMAX_FLOPS_PER_ELEMENT = 5


def causal_keep(s: int, t: int) -> np.ndarray:
    """The causal mask of ``is_causal`` on fused nodes, bool [s, t]: query i sees key j
    when ``j <= i + t - s`` (bottom-right aligned; torch aligns top-left)."""
    return np.arange(t)[None, :] <= np.arange(s)[:, None] + (t - s)


def _sdpa_infer(ins, attrs):
    q, v = ins[0], ins[2]
    return [((*q.shape[:-1], v.shape[-1]), q.dtype)]


def score_elements(ins) -> Dim:
    """Number of attention scores: batch dims of Q (heads included) x Sq x Sk."""
    q, k = ins[0], ins[1]
    return numel(q.shape[:-1]) * k.shape[-2]


def _sdpa_flops(ins, outs, attrs) -> Dim:
    q, v = ins[0], ins[2]
    scores = score_elements(ins)
    matmuls = 2 * scores * (q.shape[-1] + v.shape[-1])
    has_mask = schema_arg(ins, attrs, "attn_mask", 3) is not None
    return matmuls + scores * (1 + int(has_mask) + SOFTMAX_FLOPS_PER_ELEMENT)


define("scaled_dot_product_attention", Category.ATTENTION, _sdpa_infer, _sdpa_flops)
