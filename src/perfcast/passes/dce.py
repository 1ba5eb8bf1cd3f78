"""Dead-code elimination: drop nodes whose outputs nothing uses, and unused constants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from perfcast.ir import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    """A copy of ``graph`` without nodes that do not contribute to its outputs.

    One backward sweep reaches the fixed point: a node is live if any of its
    outputs is a graph output or an input of a live node. Tensors nothing refers to
    any more (constants included) are dropped.
    """
    live_tensors = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live_tensors for o in node.outputs):
            kept.append(node)
            live_tensors.update(node.inputs)
    kept.reverse()
    used = live_tensors | {o for n in kept for o in n.outputs} | set(graph.inputs)
    tensors = {k: t for k, t in graph.tensors.items() if k in used}
    return replace(graph, tensors=tensors, nodes=kept, inputs=list(graph.inputs),
                   outputs=list(graph.outputs)).validate()


def dead_code(graph: Graph, consts: Mapping[str, np.ndarray], *,
              stats: Counter | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """:func:`eliminate_dead_code` with the graph's constant values kept in step."""
    out = eliminate_dead_code(graph)
    kept = {t.name for t in out.constants()}
    values = {k: v for k, v in consts.items() if k in kept}
    if stats is not None:
        stats["nodes"] += len(graph.nodes) - len(out.nodes)
        stats["constants"] += len(graph.constants()) - len(out.constants())
    return out, values
