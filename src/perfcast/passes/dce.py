"""Dead-code elimination: drop nodes whose outputs nothing uses."""

from __future__ import annotations

from dataclasses import replace

from perfcast.ir import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    """A copy of ``graph`` without nodes that do not contribute to its outputs.

    One backward sweep reaches the fixed point: a node is live if any of its
    outputs is a graph output or an input of a live node.
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
