"""Fusion by pattern, with explicit priorities.

Rules run from the highest priority down, each until it matches nothing, and the whole
list again while anything changed. Attention comes first so that its matmuls are never
taken as plain GEMMs; normalizations, GELU, RoPE and SwiGLU next; then the matmul
family becomes ``gemm`` and takes its epilogues: a constant bias (``c``, ``beta``), an
activation (ReLU, GELU, SiLU), and a residual add (a full ``c``, valid only while the
GEMM has no ``c`` and no activation, since ``out = act(alpha*a@b + beta*c)``). Bias and
activation also fuse across a reshape of the GEMM output that keeps its last dim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from perfcast.ir import Family, Graph, Node, in_family
from perfcast.ir.ops._util import broadcast
from perfcast.passes.fuse_attention import fuse_attention, fuse_sdpa
from perfcast.passes.fuse_patterns import (
    fuse_gelu,
    fuse_layer_norm,
    fuse_rms_norm,
    fuse_rope,
    fuse_swiglu,
)
from perfcast.passes.gemm import gemm_flags, gemm_node, plain_gemm, to_gemm
from perfcast.passes.rewrite import Work

RuleResult = str | tuple[str, ...] | None
Rule = Callable[[Work, Node], RuleResult]
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Fusion:
    name: str
    priority: int
    rule: Rule


# -- GEMM epilogues -------------------------------------------------------------------
def _gemm_source(work: Work, t: str) -> tuple[Node, list[Node]] | None:
    """The ``gemm`` whose output ``t`` is, directly or through single-use reshapes that
    keep the last dim; with those reshapes."""
    views: list[Node] = []
    while True:
        if not work.single_use(t):
            return None
        node = work.producer(t)
        if node is None:
            return None
        if node.kind == "gemm":
            return node, views[::-1]
        src = node.inputs[0] if node.inputs else None
        if not in_family(node.kind, Family.RESHAPE) or src is None or \
                work.tensors[src].shape[-1:] != work.tensors[t].shape[-1:]:
            return None
        views.append(node)
        t = src


def _apply_epilogue(work: Work, root: Node, g: Node, views: list[Node], inputs: list[str],
                    flags: dict) -> None:
    """Make ``g`` compute ``root``'s result: in ``root``'s place when there is no reshape
    between them, else in ``g``'s place with ``root``'s readers moved to the reshape."""
    if not views:
        work.replace(root, [gemm_node(g, inputs, root.outputs, name=root.name, **flags)],
                     interior=[g])
        return
    work.replace(g, [gemm_node(g, inputs, g.outputs, **flags)])
    work.replace(root, [], renames={root.outputs[0]: views[-1].outputs[0]})


def _gemm_add(residual: bool) -> Rule:
    def rule(work: Work, node: Node) -> RuleResult:
        if node.kind != "add" or node.attrs.get("alpha", 1) != 1 or len(node.inputs) != 2:
            return None
        out = work.tensors[node.outputs[0]]
        for x, c in (node.inputs, node.inputs[::-1]):
            ct = work.tensors[c]
            if ct.const == residual or work.tensors[x].shape != out.shape or \
                    ct.dtype != out.dtype:
                continue
            found = _gemm_source(work, x)
            if found is None or not plain_gemm(found[0]):
                continue
            g, views = found
            if views and residual:
                continue
            g_shape = work.tensors[g.outputs[0]].shape
            if broadcast(g_shape, ct.shape) != g_shape:
                continue
            flags = {**gemm_flags(g), "beta": 1.0}
            _apply_epilogue(work, node, g, views, [*g.inputs, c], flags)
            return "gemm_residual" if residual else "gemm_bias"
        return None

    return rule


_ACTIVATIONS = {"relu": "relu", "silu": "silu"}


def _activation(node: Node) -> str | None:
    if node.kind == "gelu":
        approximate = node.attrs.get("approximate", "none")
        return {"none": "gelu", "tanh": "gelu_tanh"}.get(str(approximate))
    return _ACTIVATIONS.get(node.kind)


def _gemm_act(work: Work, node: Node) -> RuleResult:
    act = _activation(node)
    if act is None or len(node.inputs) != 1:
        return None
    found = _gemm_source(work, node.inputs[0])
    if found is None or found[0].kind != "gemm" or gemm_flags(found[0])["act"] != "none":
        return None
    g, views = found
    _apply_epilogue(work, node, g, views, list(g.inputs), {**gemm_flags(g), "act": act})
    return f"gemm_{act}"


FUSIONS: tuple[Fusion, ...] = (
    Fusion("attention", 100, fuse_attention),
    Fusion("sdpa", 90, fuse_sdpa),
    Fusion("rms_norm", 80, fuse_rms_norm),
    Fusion("layer_norm", 80, fuse_layer_norm),
    Fusion("gelu", 70, fuse_gelu),
    Fusion("rope", 60, fuse_rope),
    Fusion("swiglu", 50, fuse_swiglu),
    Fusion("matmul_to_gemm", 40, to_gemm),
    Fusion("gemm_bias", 30, _gemm_add(residual=False)),
    Fusion("gemm_act", 20, _gemm_act),
    Fusion("gemm_residual", 10, _gemm_add(residual=True)),
)


def fuse(graph: Graph, consts: Mapping[str, np.ndarray], *, stats: Counter | None = None,
         ) -> tuple[Graph, dict[str, np.ndarray]]:
    """A copy of ``graph`` with every fusion rule applied by priority to a fixed point."""
    work = Work(graph, consts)
    counts = stats if stats is not None else Counter()
    ordered = sorted(FUSIONS, key=lambda f: -f.priority)
    for _ in range(MAX_ROUNDS):
        changed = False
        for fusion in ordered:
            while _sweep(work, fusion.rule, counts):
                changed = True
        if not changed:
            break
    return work.result()


def _sweep(work: Work, rule: Rule, counts: Counter) -> bool:
    applied = False
    for node in list(work.nodes):
        if not work.alive(node):
            continue
        result = rule(work, node)
        if result:
            for name in (result,) if isinstance(result, str) else result:
                counts[name] += 1
            applied = True
    return applied
