"""Memory footprint: weights, and peak activations from a liveness walk over kernels."""

from __future__ import annotations

from perfcast.ir import Graph
from perfcast.ir.tensor import Dim
from perfcast.passes import Kernel, view_roots


def weight_bytes(graph: Graph) -> Dim:
    """Bytes of every weight, buffer and constant in the graph."""
    total: Dim = 0
    for t in graph.constants():
        total = total + t.nbytes
    return total


def peak_activation_bytes(graph: Graph, kernels: list[Kernel]) -> Dim:
    """Largest total of live intermediate tensors while the kernels run in order.

    Inputs are live until their last reader; a kernel's outputs that other kernels
    read (or that the graph returns) are allocated when it runs and freed after
    their last reader. Views share their base tensor's storage.
    """
    roots = view_roots(graph)
    const = {t.name for t in graph.constants()}
    made_by = {o: k for k, kernel in enumerate(kernels) for n in kernel.nodes for o in n.outputs}
    last_use: dict[str, int] = {}  # tensors that leave their kernel -> last reading kernel
    for k, kernel in enumerate(kernels):
        for node in kernel.nodes:
            for i in node.inputs:
                root = roots[i]
                if made_by.get(root) != k and root not in const:
                    last_use[root] = max(k, last_use.get(root, k))
    end = len(kernels)
    for o in graph.outputs:
        last_use[roots[o]] = end
    live: dict[str, Dim] = {i: graph.tensors[i].nbytes for i in graph.inputs}
    peak: Dim = sum(live.values(), start=0)
    for k, kernel in enumerate(kernels):
        for node in kernel.nodes:
            for o in node.outputs:
                if o in last_use:
                    live[o] = graph.tensors[o].nbytes
        peak = _max(peak, sum(live.values(), start=0))
        for name in [n for n in live if last_use.get(n, -1) <= k]:
            del live[name]
    return peak


def _max(a: Dim, b: Dim) -> Dim:
    import numpy as np

    return np.maximum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else max(a, b)
