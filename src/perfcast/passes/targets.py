"""Fusion targets: which graph passes a runtime applies and how it forms kernels.

Fusion is a property of the runtime, so each target is data, not code: the passes it
runs (names of :data:`perfcast.passes.PASS_NAMES`) and its kernel formation.
- ``eager``: PyTorch eager; no pass; every op is its own kernel (views launch nothing),
  linear layers already include their bias (GEMM beta), SDPA is one flash kernel,
  and dead code runs too (eager cannot know an output is unused).
- ``compile``: torch.compile/Inductor style; dead code is eliminated; elementwise
  ops, reductions, norms and copies fuse into generated kernels by category
  adjacency (:func:`perfcast.passes.partition`); GEMMs stay library calls.
- ``perfcast``: perfcast's runtime; fold, simplify, fuse and dce, then one kernel per
  step of the lowered program (``kernels="steps"``, :mod:`perfcast.runtime.kernels`),
  so the estimate costs exactly the steps the runtime runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfcast.ir import Category


@dataclass(frozen=True)
class FusionTarget:
    name: str
    description: str
    passes: tuple[str, ...]  # graph passes, in pipeline order
    kernels: str = "partition"  # "partition" (category adjacency) | "steps" (runtime steps)
    fusible: frozenset[Category] = frozenset()  # partition: categories that join a neighbour
    max_ops: int = 64  # partition: largest number of ops one generated kernel takes

    @property
    def eliminates_dead_code(self) -> bool:
        return "dce" in self.passes


_POINTWISE_FAMILY = frozenset({Category.ELEMENTWISE, Category.REDUCTION, Category.NORM,
                               Category.DATA_MOVEMENT})

TARGETS: dict[str, FusionTarget] = {
    "eager": FusionTarget("eager", "PyTorch eager: one kernel per op", ()),
    "compile": FusionTarget("compile", "torch.compile (Inductor): pointwise/reduction fusion",
                            ("dce",), fusible=_POINTWISE_FAMILY),
    "perfcast": FusionTarget("perfcast", "perfcast runtime: pattern fusion, one kernel per "
                             "runtime step", ("fold", "simplify", "fuse", "dce"),
                             kernels="steps"),
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
