"""Partition a graph into kernels as a fusion target would run it.

A kernel's FLOPs are the sum of its ops' FLOPs. Its bytes are only what crosses the
kernel boundary: each op's minimum bytes (from the registry), less the tensors that
stay inside the kernel and the repeated reads of a tensor already loaded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from perfcast.ir import Category, Graph, Node
from perfcast.ir.dtypes import FLOATING
from perfcast.ir.tensor import Dim
from perfcast.passes.kernel_shape import MatrixShape, element_counts, matrix_shape
from perfcast.passes.targets import FusionTarget, get_target


@dataclass(frozen=True)
class Kernel:
    """One launched kernel: fused ops, their work, where in the model it runs."""

    name: str
    nodes: tuple[Node, ...]
    category: Category | None  # None when an op of it is unknown to the registry
    flops: Dim
    bytes: Dim
    dtype: str  # the dtype its arithmetic runs in
    module: str
    shape: MatrixShape | None = None  # GEMM dimensions of a GEMM or convolution kernel
    elements: tuple[tuple[str, Dim], ...] = ()  # (op kind, elements) of its elementwise ops
    step: str | None = None  # the runtime step kind it is (targets with kernels="steps")

    @property
    def op(self) -> str:
        """The op kinds it runs, joined with ``+`` (``linear+gelu``)."""
        return "+".join(n.kind for n in self.nodes)

    @property
    def supported(self) -> bool:
        return self.category is not None


def view_roots(graph: Graph) -> dict[str, str]:
    """Map every tensor to the tensor whose storage it views (itself if none)."""
    roots = {name: name for name in graph.tensors}
    for node in graph.nodes:
        if graph.is_view(node) and node.inputs:
            for o in node.outputs:
                roots[o] = roots[node.inputs[0]]
    return roots


def partition(graph: Graph, target: str | FusionTarget = "eager") -> list[Kernel]:
    """Group the graph's non-view ops into kernels following ``target``'s fusion rules.

    A target whose kernels are runtime steps is formed by
    :func:`perfcast.runtime.kernels.step_kernels` instead.
    """
    tgt = get_target(target)
    if tgt.kernels != "partition":
        raise ValueError(f"target {tgt.name!r} forms its kernels from runtime steps; use "
                         "perfcast.runtime.kernels.step_kernels")
    roots = view_roots(graph)
    groups: list[list[Node]] = []
    group_of: dict[str, int] = {}  # root tensor -> index of the group that produced it
    for node in graph.nodes:
        if graph.is_view(node):
            continue
        g = _host_group(graph, node, groups, group_of, roots, tgt)
        if g is None:
            groups.append([node])
            g = len(groups) - 1
        else:
            groups[g].append(node)
        for o in node.outputs:
            group_of[o] = g
    readers = _readers_by_group(graph, groups, roots)
    outputs = {roots[o] for o in graph.outputs}
    return [make_kernel(graph, k, nodes, roots, readers, outputs)
            for k, nodes in enumerate(groups)]


def _host_group(graph: Graph, node: Node, groups, group_of, roots, tgt: FusionTarget):
    """The group ``node`` can join, or None if it starts a kernel of its own."""
    category = graph.category(node)
    if category is None or category not in tgt.fusible:
        return None
    producers = {group_of[roots[i]] for i in node.inputs if roots[i] in group_of}
    for g in sorted(producers, reverse=True):
        if len(groups[g]) >= tgt.max_ops or any(p > g for p in producers):
            continue
        if graph.category(groups[g][0]) in tgt.fusible:
            return g
    return None


def _readers_by_group(graph: Graph, groups, roots) -> dict[str, set[int]]:
    readers: dict[str, set[int]] = defaultdict(set)
    for k, nodes in enumerate(groups):
        for n in nodes:
            for i in n.inputs:
                readers[roots[i]].add(k)
    return readers


def make_kernel(graph: Graph, index: int, nodes: list[Node], roots, readers,
                graph_outputs) -> Kernel:
    """The kernel ``k{index}`` running ``nodes``; ``readers`` maps a root tensor to the
    kernels that read it (its bytes stay on chip when only this one does)."""
    tensors = graph.tensors
    produced = {o for n in nodes for o in n.outputs}
    flops: Dim = 0
    nbytes: Dim = 0
    saved: Dim = 0
    loaded: set[str] = set()
    for n in nodes:
        cost = graph.cost(n)
        flops = flops + cost.flops
        nbytes = nbytes + cost.bytes
        for i in n.inputs:
            root = roots[i]
            if root in produced or root in loaded:
                saved = saved + tensors[i].nbytes  # stays on chip, or already loaded
            loaded.add(root)
        for o in n.outputs:
            escapes = o in graph_outputs or any(r != index for r in readers.get(o, ()))
            if not escapes and len(nodes) > 1:
                saved = saved + tensors[o].nbytes
    unknown = any(graph.category(n) is None for n in nodes)
    anchor = _anchor(graph, nodes)
    label = "+".join(n.kind for n in nodes[:4]) + ("+..." if len(nodes) > 4 else "")
    return Kernel(
        name=f"k{index}:{label}",
        nodes=tuple(nodes),
        category=None if unknown else graph.category(anchor),
        flops=flops,
        bytes=_clip_at_zero(nbytes - saved),
        dtype=_compute_dtype(graph, anchor),
        module=anchor.module,
        shape=matrix_shape(graph, anchor) if not unknown else None,
        elements=element_counts(graph, tuple(nodes)),
    )


def _clip_at_zero(value: Dim) -> Dim:
    return np.maximum(value, 0) if isinstance(value, np.ndarray) else max(value, 0)


_ANCHOR_ORDER = (Category.GEMM, Category.CONV, Category.ATTENTION, Category.EMBEDDING,
                 Category.NORM, Category.REDUCTION)


def _anchor(graph: Graph, nodes: list[Node]) -> Node:
    """The op that characterizes a kernel: its matmul, conv or attention if it has one."""
    for cat in _ANCHOR_ORDER:
        for n in nodes:
            if graph.category(n) is cat:
                return n
    return nodes[0]


def _compute_dtype(graph: Graph, node: Node) -> str:
    for name in (*node.inputs, *node.outputs):
        if graph.tensors[name].dtype in FLOATING:
            return graph.tensors[name].dtype
    return graph.tensors[node.outputs[0]].dtype if node.outputs else "float32"
