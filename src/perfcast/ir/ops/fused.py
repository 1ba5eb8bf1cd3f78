"""Fused kinds the passes produce (docs/runtime.md): ``gemm``, ``swiglu``, ``rope``.

FLOPs equal the sum of the ops they replace, so fusing never changes a graph's total:
``gemm`` counts 2*M*N*K, one multiply per output for ``alpha != 1`` and for ``beta``
not in {0, 1}, one add per output for ``c``, and its activation from the elementwise
table; ``swiglu`` is SiLU (4) and a multiply (1) per element; ``rope`` two multiplies
and an add per element. Bytes: inputs read once, the output written once.
"""

from __future__ import annotations

from perfcast.ir.ops._util import same_as_input
from perfcast.ir.ops.elementwise import FLOPS_PER_ELEMENT
from perfcast.ir.ops.llm import rope_flops
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim

# gemm attr act -> FLOPs per output element
ACT_FLOPS: dict[str, int] = {"none": 0, "relu": FLOPS_PER_ELEMENT["relu"],
                             "gelu": FLOPS_PER_ELEMENT["gelu"],
                             "gelu_tanh": FLOPS_PER_ELEMENT["gelu"],
                             "silu": FLOPS_PER_ELEMENT["silu"]}


def _gemm_n(ins, attrs) -> Dim:
    b = ins[1]
    return b.shape[-2] if attrs.get("trans_b") else b.shape[-1]


def _gemm_infer(ins, attrs):
    a = ins[0]
    act = attrs.get("act", "none")
    if act not in ACT_FLOPS:
        raise ValueError(f"gemm act must be one of {', '.join(ACT_FLOPS)}, got {act!r}")
    return [((*a.shape[:-1], _gemm_n(ins, attrs)), a.dtype)]


def _gemm_flops(ins, outs, attrs) -> Dim:
    out = outs[0].numel
    flops = 2 * out * ins[0].shape[-1]
    per_out = int(float(attrs.get("alpha", 1.0)) != 1.0)
    if len(ins) > 2:
        per_out += 1 + int(float(attrs.get("beta", 1.0)) not in (0.0, 1.0))
    return flops + (per_out + ACT_FLOPS[str(attrs.get("act", "none"))]) * out


def _swiglu_flops(ins, outs, attrs) -> Dim:
    return (FLOPS_PER_ELEMENT["silu"] + FLOPS_PER_ELEMENT["mul"]) * outs[0].numel


# gemm(a [..., M, K], b [K, N] | [N, K] (trans_b) | batched [..., K, N], c?); attrs
# trans_b, alpha, beta, act: out = act(alpha * a @ op(b) + beta * c)
define("gemm", Category.GEMM, _gemm_infer, _gemm_flops)
# swiglu(gate, up) = silu(gate) * up
define("swiglu", Category.ELEMENTWISE, same_as_input, _swiglu_flops)
# rope(x, cos, sin) = x * cos + rotate_half(x) * sin, cos/sin broadcast to x
define("rope", Category.ELEMENTWISE, same_as_input, rope_flops)
