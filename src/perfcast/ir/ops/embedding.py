"""Embedding lookups: a gather of rows. Bytes are the indices, the rows actually
read and the output written — never the whole table."""

from __future__ import annotations

from perfcast.ir.dtypes import itemsize
from perfcast.ir.registry import Category, define, no_flops
from perfcast.ir.tensor import Dim


def _embedding_infer(ins, attrs):
    weight, idx = ins[0], ins[1]
    return [((*idx.shape, weight.shape[-1]), weight.dtype)]


def _embedding_bytes(ins, outs, attrs) -> Dim:
    idx, out = ins[1], outs[0]
    return idx.nbytes + 2 * out.numel * itemsize(out.dtype)


define("embedding", Category.EMBEDDING, _embedding_infer, no_flops, _embedding_bytes)
