"""Fusion targets: which ops a given runtime runs as one kernel.

Fusion is a property of the runtime, so each target is data, not code:
- ``eager``: PyTorch eager; every op is its own kernel (views launch nothing),
  linear layers already include their bias (GEMM beta), SDPA is one flash kernel,
  and dead code runs too (eager cannot know an output is unused).
- ``compile``: torch.compile/Inductor style; dead code is eliminated; elementwise
  ops, reductions, norms and copies fuse into generated kernels; GEMMs stay
  library calls.
- ``perfcast``: perfcast's runtime; like ``compile`` plus GEMM/conv epilogues
  (bias + activation + residual) fused into the matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfcast.ir import Category


@dataclass(frozen=True)
class FusionTarget:
    name: str
    description: str
    fusible: frozenset[Category]  # categories that may join a neighbouring kernel
    epilogue_anchors: frozenset[Category] = frozenset()  # kernels that absorb what follows
    max_ops: int = 64  # largest number of ops one generated kernel takes
    eliminates_dead_code: bool = True


_POINTWISE_FAMILY = frozenset({Category.ELEMENTWISE, Category.REDUCTION, Category.NORM,
                               Category.DATA_MOVEMENT})

TARGETS: dict[str, FusionTarget] = {
    "eager": FusionTarget("eager", "PyTorch eager: one kernel per op", frozenset(),
                          eliminates_dead_code=False),
    "compile": FusionTarget("compile", "torch.compile (Inductor): pointwise/reduction fusion",
                            _POINTWISE_FAMILY),
    "perfcast": FusionTarget("perfcast", "perfcast runtime: pointwise fusion + GEMM epilogues",
                             _POINTWISE_FAMILY,
                             epilogue_anchors=frozenset({Category.GEMM, Category.CONV})),
}


class UnknownTargetError(ValueError):
    """No fusion target of that name."""


def get_target(name: str | FusionTarget) -> FusionTarget:
    if isinstance(name, FusionTarget):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(
            f"unknown fusion target {name!r}; allowed: {', '.join(TARGETS)}") from None
