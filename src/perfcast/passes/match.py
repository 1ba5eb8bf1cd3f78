"""Expression-tree patterns over the graph, for fusion rules.

A pattern is one of:

- ``"x"``: a tensor variable; a second use must be the same tensor (aliases skipped);
- ``"$eps"``: a scalar variable (a Python-scalar argument or a one-element constant);
- ``0.5``: a scalar constant, matched with a relative tolerance;
- ``Op(kinds, *args, check=fn)``: a node of one of ``kinds`` whose operands match
  ``args`` in schema order (either order for ``add``/``mul``), with ``check(work, node)``
  an optional extra condition.

:func:`match` returns the bindings and the matched nodes, or None.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from perfcast.ir import Node
from perfcast.passes.rewrite import Operand, Work, operand, scalar_of

Check = Callable[[Work, Node], bool]

COMMUTATIVE = frozenset({"add", "mul"})
_OPERAND_NAMES = {"pow": ("self", "exponent"), "masked_fill": ("self", "mask", "value")}
_BINARY = frozenset({"add", "sub", "mul", "div", "maximum", "minimum"})


@dataclass(frozen=True)
class Op:
    kinds: frozenset[str]
    args: tuple
    check: Check | None = None


def op(kinds: str | set[str], *args, check: Check | None = None) -> Op:
    return Op(frozenset({kinds} if isinstance(kinds, str) else kinds), args, check)


@dataclass
class Match:
    env: dict[str, object]
    nodes: list[Node]  # every matched node, aliases passed through included

    def tensor(self, var: str) -> str:
        return str(self.env[var])

    def scalar(self, var: str) -> float:
        return float(self.env[var])  # type: ignore[arg-type]


def match(work: Work, root: Node, pattern: Op) -> Match | None:
    """Match ``pattern`` with ``root`` as its top node."""
    return _node(work, root, pattern, Match({}, [root]))


def _operands(work: Work, node: Node) -> list[Operand | None]:
    if node.kind == "cat":
        return [("t", i) for i in node.inputs]
    names = _OPERAND_NAMES.get(node.kind) or (("self", "other") if node.kind in _BINARY
                                              else ("self",))
    return [operand(node, name, k) for k, name in enumerate(names)]


def _node(work: Work, node: Node, pat: Op, m: Match) -> Match | None:
    if node.kind not in pat.kinds or node.attrs.get("alpha", 1) != 1:
        return None
    if pat.check is not None and not pat.check(work, node):
        return None
    ops = _operands(work, node)
    if len(ops) != len(pat.args):
        return None
    orders = [ops, ops[::-1]] if node.kind in COMMUTATIVE and len(ops) == 2 else [ops]
    for order in orders:
        found = _all(work, order, pat.args, m)
        if found is not None:
            return found
    return None


def _all(work: Work, ops: list, pats: tuple, m: Match) -> Match | None:
    for o, p in zip(ops, pats, strict=True):
        found = _operand(work, o, p, m)
        if found is None:
            return None
        m = found
    return m


def _operand(work: Work, o: Operand | None, pat, m: Match) -> Match | None:
    if o is None:
        return None
    if isinstance(pat, int | float):
        value = scalar_of(work, o)
        return m if value is not None and math.isclose(value, pat, rel_tol=1e-5) else None
    if isinstance(pat, str) and pat.startswith("$"):
        value = scalar_of(work, o)
        if value is None or (pat in m.env and not math.isclose(value, m.scalar(pat))):
            return None
        return Match({**m.env, pat: value}, m.nodes)
    if o[0] != "t":
        return None
    through: list[Node] = []
    tensor = work.resolve(str(o[1]), through)
    if isinstance(pat, str):  # a pattern input: aliases before it stay outside the match
        if pat in m.env:
            return m if m.env[pat] == tensor else None
        return Match({**m.env, pat: tensor}, m.nodes)
    producer = work.producer(tensor)
    if producer is None:
        return None
    return _node(work, producer, pat, Match(m.env, m.nodes + through + [producer]))
