"""Simplification: drop no-op nodes and fold GEMM operand transforms into GEMM flags.

Rules, applied to a fixed point:

- ``alias``: aliases (same-dtype casts, eval dropout, clone...) and views, reshapes and
  scalar ops that change nothing (``view`` to the same shape, ``x * 1``, ``x + 0``) are
  removed; their readers read the source. A graph output keeps its node.
- ``matmul_to_gemm``: the matmul family becomes ``gemm`` (``linear`` has ``trans_b``).
- ``transpose_to_trans_b``: ``gemm(a, transpose(b))`` over the last two dims of ``b``
  becomes ``gemm(a, b)`` with ``trans_b`` flipped.
- ``scalar_to_alpha``: a scalar multiply or divide of a GEMM's ``a``, ``b`` or result
  goes into ``alpha`` (and ``beta`` when the result is scaled and has a ``c``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np

from perfcast.ir import IDENTITY, Family, Graph, Node, in_family
from perfcast.passes.gemm import gemm_flags, gemm_node, to_gemm
from perfcast.passes.rewrite import Work, scalar_binary, swaps_last_two

Rule = Callable[[Work, Node], str | None]


def simplify(graph: Graph, consts: Mapping[str, np.ndarray], *,
             stats: Counter | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """A copy of ``graph`` with the rules above applied until none matches."""
    work = Work(graph, consts)
    counts = stats if stats is not None else Counter()
    changed = True
    while changed:
        changed = False
        for rule in RULES:
            for node in list(work.nodes):
                if not work.alive(node):
                    continue
                name = rule(work, node)
                if name:
                    counts[name] += 1
                    changed = True
    return work.result()


# -- no-op nodes ----------------------------------------------------------------------
def _identity_source(work: Work, node: Node) -> str | None:
    """The input a node returns unchanged, or None."""
    if not node.inputs or len(node.outputs) != 1:
        return None
    src, out = work.tensors[node.inputs[0]], work.tensors[node.outputs[0]]
    if src.shape != out.shape or src.dtype != out.dtype:
        return None
    if in_family(node.kind, IDENTITY) or (node.kind == "cast" and len(node.inputs) == 1):
        return src.name
    if (in_family(node.kind, Family.RESHAPE) or node.kind in ("expand", "squeeze")) \
            and len(node.inputs) == 1:
        return src.name
    if node.kind in ("permute", "transpose") and _identity_permutation(node, src.rank):
        return src.name
    if node.kind == "slice" and src.shape == out.shape and int(node.attrs.get("step", 1)) == 1:
        return src.name
    pair = scalar_binary(work, node)
    if pair is not None and pair[1] == (0.0 if node.kind in ("add", "sub") else 1.0):
        return pair[0]
    return None


def _identity_permutation(node: Node, rank: int) -> bool:
    if node.kind == "transpose":
        r = max(rank, 1)
        return int(node.attrs.get("dim0", 0)) % r == int(node.attrs.get("dim1", 1)) % r
    return [int(d) % max(rank, 1) for d in node.attrs.get("dims", [])] == list(range(rank))


def _drop_identity(work: Work, node: Node) -> str | None:
    out = node.outputs[0] if node.outputs else None
    src = _identity_source(work, node)
    if src is None or out in work.outputs:
        return None
    work.replace(node, [], renames={out: src})
    if in_family(node.kind, IDENTITY) or node.kind == "cast":
        return "alias"
    return f"identity_{node.kind}"


# -- GEMM flags -----------------------------------------------------------------------
def _absorb_transpose(work: Work, node: Node) -> str | None:
    if node.kind != "gemm":
        return None
    b = node.inputs[1]
    t = work.producer(b)
    if t is None or not t.inputs or not swaps_last_two(t, work.tensors[b].rank):
        return None
    src = t.inputs[0]
    a_t, src_t = work.tensors[node.inputs[0]], work.tensors[src]
    if src_t.rank > 2 and src_t.shape[:-2] != a_t.shape[:-2]:
        return None
    flags = gemm_flags(node)
    inputs = [node.inputs[0], src, *node.inputs[2:]]
    work.replace(node, [gemm_node(node, inputs, node.outputs, **{
        **flags, "trans_b": not flags["trans_b"]})], interior=[t])
    return "transpose_to_trans_b"


def _absorb_scalar_input(work: Work, node: Node) -> str | None:
    if node.kind != "gemm":
        return None
    for pos in (0, 1):
        x = node.inputs[pos]
        prod = work.producer(x)
        if prod is None or prod.kind not in ("mul", "div") or not work.single_use(x):
            continue
        pair = scalar_binary(work, prod)
        if pair is None or pair[1] == 0:
            continue
        src, s = pair
        flags = gemm_flags(node)
        scale = s if prod.kind == "mul" else 1 / s
        inputs = list(node.inputs)
        inputs[pos] = src
        work.replace(node, [gemm_node(node, inputs, node.outputs,
                                      **{**flags, "alpha": flags["alpha"] * scale})],
                     interior=[prod])
        return "scalar_to_alpha"
    return None


def _absorb_scalar_output(work: Work, node: Node) -> str | None:
    if node.kind not in ("mul", "div"):
        return None
    pair = scalar_binary(work, node)
    if pair is None or pair[1] == 0:
        return None
    src, s = pair
    g = work.producer(src)
    if g is None or g.kind != "gemm" or not work.single_use(src):
        return None
    flags = gemm_flags(g)
    if flags["act"] != "none":
        return None
    scale = s if node.kind == "mul" else 1 / s
    flags = {**flags, "alpha": flags["alpha"] * scale, "beta": flags["beta"] * scale}
    work.replace(node, [gemm_node(g, list(g.inputs), node.outputs, name=node.name, **flags)],
                 interior=[g])
    return "scalar_to_alpha"


RULES: tuple[Rule, ...] = (_drop_identity, to_gemm, _absorb_transpose, _absorb_scalar_input,
                           _absorb_scalar_output)
