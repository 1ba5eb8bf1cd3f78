"""Baseline/optimized pairs (suite ``pairs``) showing the compare-two-implementations workflow.

Both sides of a pair share one base class, so they build identical inputs; the optimized
side's check() runs the baseline's run() on its own inputs and compares the outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from perfcast.bench.benchmark import Benchmark, register
from perfcast.bench.suites._common import (
    assert_outputs_close,
    attention_work,
    compile_skip_reason,
    gemm_work,
    missing_modules,
    naive_attention,
    randn,
    rowwise_work,
)
from perfcast.ir.cost import Cost

if TYPE_CHECKING:
    import torch


class _Pair(Benchmark):
    """Base of both sides; an optimized side names its ``baseline`` class."""

    suite = "pairs"
    baseline: ClassVar[type[_Pair] | None] = None

    def check(self) -> None:
        if self.baseline is not None:
            assert_outputs_close(self.run(), self.baseline.run(self))

    def teardown(self) -> None:
        vars(self).clear()

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        return missing_modules("torch") or super().skip_reason(**params)


class _Attention(_Pair):
    name = "attention"
    tags = ("pair", "attention")
    params: ClassVar = {"batch": [1], "heads": [12], "head_dim": [64], "seq": [256, 1024],
                        "causal": [True]}

    def setup(self, batch: int, heads: int, head_dim: int, seq: int, causal: bool) -> None:
        self.causal = causal
        self.q, self.k, self.v = (randn(batch, heads, seq, head_dim, seed=i) for i in range(3))

    def work(self) -> Cost:
        batch, heads, seq, head_dim = self.q.shape
        return attention_work(batch, heads, seq, head_dim, "float32")


@register
class AttentionNaive(_Attention):
    role = "baseline"
    description = "Attention as matmul → scale → causal mask → softmax → matmul"

    def run(self) -> torch.Tensor:
        return naive_attention(self.q, self.k, self.v, self.causal)


@register
class AttentionSdpa(_Attention):
    role = "optimized"
    baseline = AttentionNaive
    description = "Attention as one fused F.scaled_dot_product_attention call"

    def run(self) -> torch.Tensor:
        from torch.nn.functional import scaled_dot_product_attention

        return scaled_dot_product_attention(self.q, self.k, self.v, is_causal=self.causal)


class _Mlp(_Pair):
    name = "mlp"
    tags = ("pair", "compile")
    params: ClassVar = {"batch": [8], "hidden": [1024]}

    def setup(self, batch: int, hidden: int) -> None:
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(),
                                   nn.Linear(4 * hidden, hidden)).eval()
        self.x = randn(batch, hidden)

    def run(self) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.model(self.x)

    def work(self) -> Cost:
        """The two GEMMs; bias adds and GELU are not counted."""
        batch, hidden = self.x.shape
        gemms = (gemm_work(batch, 4 * hidden, hidden, "float32"),
                 gemm_work(batch, hidden, 4 * hidden, "float32"))
        return Cost(flops=sum(g.flops for g in gemms), bytes=sum(g.bytes for g in gemms))


@register
class MlpEager(_Mlp):
    role = "baseline"
    description = "Two-layer GELU MLP (hidden → 4·hidden → hidden) in eager PyTorch"


@register
class MlpCompiled(_Mlp):
    role = "optimized"
    baseline = MlpEager
    description = "The same MLP after torch.compile (default mode; compiled in setup)"

    def setup(self, batch: int, hidden: int) -> None:
        import torch

        super().setup(batch, hidden)
        self.compiled = torch.compile(self.model)
        self.run()  # the first call compiles

    def run(self) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self.compiled(self.x)

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        return super().skip_reason(**params) or compile_skip_reason()


class _LayerNorm(_Pair):
    name = "layernorm"
    tags = ("pair", "norm")
    params: ClassVar = {"rows": [2048], "cols": [768, 4096]}
    eps: ClassVar[float] = 1e-5

    def setup(self, rows: int, cols: int) -> None:
        self.x = randn(rows, cols)
        self.weight, self.bias = randn(cols, seed=1), randn(cols, seed=2)

    def work(self) -> Cost:
        rows, cols = self.x.shape
        return rowwise_work(rows, cols, 7, 2, "float32")


@register
class LayerNormManual(_LayerNorm):
    role = "baseline"
    description = "Layer norm written out: mean, variance, normalize, scale, shift"

    def run(self) -> torch.Tensor:
        mean = self.x.mean(dim=-1, keepdim=True)
        var = (self.x - mean).square().mean(dim=-1, keepdim=True)
        return (self.x - mean) * (var + self.eps).rsqrt() * self.weight + self.bias


@register
class LayerNormFused(_LayerNorm):
    role = "optimized"
    baseline = LayerNormManual
    description = "Layer norm as one F.layer_norm call"

    def run(self) -> torch.Tensor:
        from torch.nn.functional import layer_norm

        return layer_norm(self.x, self.x.shape[-1:], self.weight, self.bias, eps=self.eps)
