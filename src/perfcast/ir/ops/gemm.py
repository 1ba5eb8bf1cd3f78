"""Matrix multiplications. A multiply-add is 2 FLOPs; a bias add is 1 FLOP per output.

``torch.utils.flop_counter`` counts only the 2*M*N*K part; the bias add is real
arithmetic that it leaves out, so totals here exceed it by exactly the bias elements.
"""

from __future__ import annotations

from perfcast.ir.graph import schema_arg
from perfcast.ir.ops._util import broadcast
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim, Shape


def _linear_infer(ins, attrs):
    x, w = ins[0], ins[1]
    # out_dtype: low-precision GEMMs (fp8, fp4) write a wider result, as _scaled_mm does.
    return [((*x.shape[:-1], w.shape[0]), str(attrs.get("out_dtype") or x.dtype))]


def _linear_flops(ins, outs, attrs) -> Dim:
    x = ins[0]
    bias = schema_arg(ins, attrs, "bias", 2)
    flops = 2 * outs[0].numel * x.shape[-1]
    return flops + (outs[0].numel if bias is not None else 0)


define("linear", Category.GEMM, _linear_infer, _linear_flops)


def _mm_infer(ins, attrs):
    a, b = ins[-2], ins[-1]
    return [((a.shape[0], b.shape[1]), a.dtype)]


def _addmm_flops(ins, outs, attrs) -> Dim:
    a = ins[-2]
    return 2 * outs[0].numel * a.shape[-1] + (outs[0].numel if len(ins) == 3 else 0)


define(["mm", "addmm"], Category.GEMM, _mm_infer, _addmm_flops)


def _bmm_infer(ins, attrs):
    a, b = ins[-2], ins[-1]
    return [((a.shape[0], a.shape[1], b.shape[2]), a.dtype)]


define(["bmm", "baddbmm"], Category.GEMM, _bmm_infer, _addmm_flops)


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(b) == 1:
        return a[:-1]
    if len(a) == 1:
        return (*b[:-2], b[-1])
    return (*broadcast(a[:-2], b[:-2]), a[-2], b[-1])


def _matmul_infer(ins, attrs):
    return [(_matmul_shape(ins[0].shape, ins[1].shape), ins[0].dtype)]


def _matmul_flops(ins, outs, attrs) -> Dim:
    return 2 * outs[0].numel * ins[0].shape[-1]


define("matmul", Category.GEMM, _matmul_infer, _matmul_flops)


def _grouped_infer(ins, attrs):
    x, w = ins[0], ins[1]
    return [((x.shape[0], w.shape[-1]), x.dtype)]


def _grouped_flops(ins, outs, attrs) -> Dim:
    """Rows routed to all experts together x K x N, each row through one expert."""
    x, w = ins[0], ins[1]
    return 2 * x.shape[0] * x.shape[1] * w.shape[-1]


# Grouped GEMM of MoE experts: input [rows, K], weight [experts, K, N], offsets [experts].
define(["grouped_mm_fallback", "_grouped_mm"], Category.GEMM, _grouped_infer, _grouped_flops)
