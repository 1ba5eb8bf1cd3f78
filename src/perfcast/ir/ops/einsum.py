"""``einsum``: shapes and FLOPs from the equation.

Operands are contracted left to right, one pair at a time (what ``torch.einsum`` does
without opt_einsum); each pairwise step costs 2 FLOPs per point of the index space it
spans (multiply-add), as ``torch.utils.flop_counter`` counts the ``bmm`` it lowers to.
A single operand is a permutation (0 FLOPs) or a sum (1 FLOP per input element).
"""

from __future__ import annotations

import string

from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim


def _parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand subscripts and output subscripts with ``...`` expanded to letters."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"einsum equation {equation!r} has {len(terms)} operands, "
                         f"got {len(ranks)} tensors")
    spare = [c for c in string.ascii_letters if c not in equation]
    ell = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks, strict=True)
               if "..." in t), default=0)
    fill = "".join(spare[:ell])
    expanded = [t.replace("...", fill[len(fill) - (r - len(t.replace("...", ""))):])
                if "..." in t else t for t, r in zip(terms, ranks, strict=True)]
    if arrow:
        out = rhs.replace("...", fill)
    else:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        out = fill + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in fill))
    return expanded, out


def _sizes(terms: list[str], ins) -> dict[str, Dim]:
    sizes: dict[str, Dim] = {}
    for term, t in zip(terms, ins, strict=True):
        for c, d in zip(term, t.shape, strict=True):
            if c not in sizes or (isinstance(sizes[c], int) and sizes[c] == 1):
                sizes[c] = d
    return sizes


def _infer(ins, attrs):
    terms, out = _parse(str(attrs["equation"]), [t.rank for t in ins])
    sizes = _sizes(terms, ins)
    return [(tuple(sizes[c] for c in out), ins[0].dtype)]


def _flops(ins, outs, attrs) -> Dim:
    terms, out = _parse(str(attrs["equation"]), [t.rank for t in ins])
    sizes = _sizes(terms, ins)
    if len(terms) == 1:
        return 0 if sorted(terms[0]) == sorted(out) else ins[0].numel
    total: Dim = 0
    left = terms[0]
    for k, right in enumerate(terms[1:], start=1):
        span = set(left) | set(right)
        points: Dim = 1
        for c in span:
            points = points * sizes[c]
        total = total + 2 * points
        later = set(out).union(*terms[k + 1:])
        left = "".join(c for c in dict.fromkeys(left + right) if c in later)
    return total


define("einsum", Category.GEMM, _infer, _flops)
