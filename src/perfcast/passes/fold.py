"""Constant folding: nodes whose inputs are all constants become constants.

Creation ops (family ``creation``: ``new_ones``, ``zeros_like``...) fold even when their
input is not constant: only its (static) shape matters. The values come from an ``evaluate``
callback (the runtime's interpreter), so ``passes`` does not import ``runtime``; without
one (the estimator's graphs have no weights) the same nodes become constants whose
values are unknown, so the graph's structure is the runtime's all the same.
A folded value larger than ``max_bytes`` is kept only if it is no larger than the
constants it was computed from, so folding never blows up memory (an ``expand`` of a
scalar to a huge tensor stays a node).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from perfcast.ir import Family, Graph, Node, Tensor, in_family
from perfcast.passes.rewrite import Work

Evaluate = Callable[[Node, Graph, Sequence[np.ndarray]], list[np.ndarray]]

# Kinds whose result is not a function of their inputs (random, uninitialized).
NEVER_FOLD = frozenset({"new_empty", "empty_like", "empty", "dropout", "native_dropout",
                        "bernoulli", "rand", "randn", "rand_like", "randn_like", "randint",
                        "normal", "uniform", "multinomial"})
MAX_BYTES = 16 << 20


def constant_fold(graph: Graph, consts: Mapping[str, np.ndarray], *, evaluate: Evaluate | None,
                  max_bytes: int = MAX_BYTES, stats: Counter | None = None,
                  ) -> tuple[Graph, dict[str, np.ndarray]]:
    """A copy of ``graph`` with every foldable node replaced by constant outputs
    (without values when ``evaluate`` is None)."""
    work = Work(graph, consts)
    kept: list[Node] = []
    folded = 0
    for node in graph.nodes:
        values = _inputs(work, node) if evaluate is not None else _symbolic(work, node)
        if values is None or not _small_enough(work, node, max_bytes):
            kept.append(node)
            continue
        outs = evaluate(node, graph, values) if evaluate is not None else ()
        for name in node.outputs:
            t = work.tensors[name]
            work.tensors[name] = Tensor(name, t.shape, t.dtype, const=True)
        for name, value in zip(node.outputs, outs, strict=False):
            work.consts[name] = np.asarray(value, order="C")  # keeps 0-d shape
        folded += 1
    work.nodes = kept
    if stats is not None and folded:
        stats["folded"] += folded
    return work.result()


def _inputs(work: Work, node: Node) -> list[np.ndarray] | None:
    """Input values when ``node`` can fold, else None."""
    if node.kind in NEVER_FOLD or not node.outputs:
        return None
    if in_family(node.kind, Family.CREATION):
        return [np.zeros(work.shape(i), _np_dtype(work.tensors[i].dtype))
                if work.value(i) is None else work.value(i) for i in node.inputs]
    values = [work.value(i) for i in node.inputs]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def _symbolic(work: Work, node: Node) -> list | None:
    """An empty list when ``node`` would fold (its inputs' values do not matter), else None."""
    if node.kind in NEVER_FOLD or not node.outputs:
        return None
    if in_family(node.kind, Family.CREATION) or all(work.tensors[i].const for i in node.inputs):
        return []
    return None


def _small_enough(work: Work, node: Node, max_bytes: int) -> bool:
    out = sum(float(work.tensors[o].nbytes) for o in node.outputs)
    if in_family(node.kind, Family.CREATION):
        return out <= max_bytes
    return out <= max(max_bytes, sum(float(work.tensors[i].nbytes) for i in node.inputs))


def _np_dtype(dtype: str):
    """A NumPy dtype for a placeholder of a shape-only input (its values are never read)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.float32
