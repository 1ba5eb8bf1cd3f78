"""A model's FLOPs by ``torch.utils.flop_counter``, plus what it leaves out, term by term.

FlopCounterMode counts matmuls, convolutions and (on GPU) SDPA. perfcast counts more
arithmetic than that, and each term of the difference is computed here independently:

- bias adds of Linear/Conv layers: 1 FLOP per output element (counted by hooks);
- SDPA on CPU: FlopCounterMode has no formula for
  ``_scaled_dot_product_flash_attention_for_cpu`` and counts 0; the reference adds
  flop_counter's own ``sdpa_flop_count``, plus scale and softmax arithmetic per score
  and 1 FLOP per score for the mask add where the exported SDPA takes a mask (see
  :func:`sdpa_extra`); where SDPA runs its math path instead (a mask with unequal head
  sizes, say), flop_counter sees its two ``bmm`` and the scores are read from its
  ``_safe_softmax``;
- MoE experts: ``aten._grouped_mm`` is counted 0 by FlopCounterMode; the reference adds
  2*M*K*N per grouped matmul, read from the call's operand shapes.

The reference is trustworthy for models whose matrix work runs through those ops. It is
not for models that run a matrix product as elementwise multiplies and sums (a 1x1
conv written as ``(x * w).sum(-1)``), which flop_counter does not see at all. The model
runs with autograd on, so ``nn.MultiheadAttention`` takes its decomposed path (linear +
SDPA) as torch.export traces it, not the fused inference kernel flop_counter cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BIAS_LAYERS = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Conv1D", "ConvTranspose2d")


@dataclass
class FlopReference:
    """flop_counter's total and the terms it misses, for one forward pass."""

    counted: int = 0  # FlopCounterMode's total
    sdpa: int = 0  # CPU SDPA matmuls, by flop_counter's sdpa_flop_count
    scores: list[int] = field(default_factory=list)  # attention scores per SDPA call
    grouped_mm: int = 0
    bias: int = 0

    def matrix_flops(self, graph) -> int:
        """The reference for perfcast's gemm + conv + attention FLOPs of ``graph``."""
        return self.counted + self.grouped_mm + self.bias + self.sdpa + sdpa_extra(self, graph)


def measure(model: Any, inputs: Any) -> FlopReference:
    """Run ``model`` once under FlopCounterMode and the counters of what it misses."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from perfcast.frontends.torch_export import split_inputs

    ref = FlopReference()
    handles = _bias_hooks(model, ref)
    missed = _missed_mode(ref)
    args, kwargs = split_inputs(inputs)
    try:
        with FlopCounterMode(display=False) as counter, missed, torch.enable_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    ref.counted = int(counter.get_total_flops())
    return ref


def sdpa_extra(ref: FlopReference, graph) -> int:
    """Scale + softmax per score, plus the mask add where the exported SDPA has a mask."""
    from perfcast.ir.ops.attention import SOFTMAX_FLOPS_PER_ELEMENT

    nodes = [n for n in graph.nodes if n.kind == "scaled_dot_product_attention"]
    if len(nodes) != len(ref.scores):
        raise ValueError(f"{len(nodes)} SDPA nodes captured but {len(ref.scores)} SDPA calls "
                         "ran eagerly")
    return sum(scores * (1 + SOFTMAX_FLOPS_PER_ELEMENT
                         + int(n.tensor_arg("attn_mask", 3) is not None))
               for scores, n in zip(ref.scores, nodes, strict=True))


def _bias_hooks(model: Any, ref: FlopReference) -> list:
    def hook(module, _args, output):
        ref.bias += output.numel()

    return [m.register_forward_hook(hook) for m in model.modules()
            if type(m).__name__ in BIAS_LAYERS and getattr(m, "bias", None) is not None]


def _missed_mode(ref: FlopReference):
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import sdpa_flop_count

    class Missed(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            if "_scaled_dot_product_flash_attention_for_cpu" in name:
                q, k, v = args[:3]
                ref.sdpa += sdpa_flop_count(q.shape, k.shape, v.shape)
                ref.scores.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
            elif name == "aten._safe_softmax.default":  # SDPA's math path: bmm counted
                ref.scores.append(args[0].numel())
            elif name == "aten._grouped_mm.default":
                a, b = args[0], args[1]
                ref.grouped_mm += 2 * a.shape[0] * a.shape[1] * b.shape[-1]
            return func(*args, **(kwargs or {}))

    return Missed()
