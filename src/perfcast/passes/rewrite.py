"""A working copy of a graph that passes rewrite, and the queries rules share.

Rules replace a *root* node (the last node of a matched pattern) with new nodes at its
position, so every input of the replacement is already available there and the graph
stays in topological order. Matched interior nodes are dropped once nothing else reads
them; a pass never mutates the graph it was given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from perfcast.ir import IDENTITY, Graph, Node, Tensor, in_family

Operand = tuple[str, object]  # ("t", tensor name) or ("s", Python scalar)


class Work:
    """A mutable copy of a graph and its constants for the duration of one pass."""

    def __init__(self, graph: Graph, consts: Mapping[str, np.ndarray]) -> None:
        self.name = graph.name
        self.tensors: dict[str, Tensor] = dict(graph.tensors)
        self.nodes: list[Node] = list(graph.nodes)
        self.inputs = list(graph.inputs)
        self.outputs = list(graph.outputs)
        self.consts: dict[str, np.ndarray] = dict(consts)
        self._producers: dict[str, Node] = {}
        self._consumers: dict[str, list[Node]] = defaultdict(list)
        for n in self.nodes:
            self._link(n)
        self._names = {n.name for n in self.nodes} | set(self.tensors)

    # -- results ----------------------------------------------------------------------
    def graph(self) -> Graph:
        return Graph(self.name, dict(self.tensors), list(self.nodes), list(self.inputs),
                     list(self.outputs)).validate()

    def result(self) -> tuple[Graph, dict[str, np.ndarray]]:
        return self.graph(), dict(self.consts)

    # -- queries ----------------------------------------------------------------------
    def _link(self, node: Node) -> None:
        for o in node.outputs:
            self._producers[o] = node
        for i in node.inputs:
            self._consumers[i].append(node)

    def _unlink(self, node: Node) -> None:
        for o in node.outputs:
            if self._producers.get(o) is node:
                del self._producers[o]
        for i in set(node.inputs):
            self._consumers[i] = [c for c in self._consumers[i] if c is not node]

    def producer(self, tensor: str) -> Node | None:
        return self._producers.get(tensor)

    def consumers(self, tensor: str) -> list[Node]:
        return self._consumers.get(tensor, [])

    def alive(self, node: Node) -> bool:
        """True while ``node`` is still in the graph."""
        return bool(node.outputs) and self.producer(node.outputs[0]) is node

    def single_use(self, tensor: str) -> bool:
        """Read by exactly one node and not a graph output."""
        return len(self.consumers(tensor)) == 1 and tensor not in self.outputs

    def shape(self, tensor: str) -> tuple:
        return self.tensors[tensor].shape

    def value(self, tensor: str) -> np.ndarray | None:
        """The value of a constant tensor, else None."""
        return self.consts.get(tensor) if self.tensors[tensor].const else None

    def resolve(self, tensor: str, through: Iterable[Node] | None = None) -> str:
        """``tensor`` with identity nodes (:data:`perfcast.ir.IDENTITY`) skipped
        (appending them to ``through``)."""
        while True:
            node = self.producer(tensor)
            if node is None or not in_family(node.kind, IDENTITY) or not node.inputs:
                return tensor
            if isinstance(through, list):
                through.append(node)
            tensor = node.inputs[0]

    def fresh(self, base: str) -> str:
        """A node/tensor name not used yet, derived from ``base``."""
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    # -- edits ------------------------------------------------------------------------
    def add_const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        arr = np.ascontiguousarray(value)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in arr.shape), str(arr.dtype),
                                    const=True)
        self.consts[name] = arr
        return name

    def add_tensor(self, tensor: Tensor) -> str:
        self._names.add(tensor.name)
        self.tensors[tensor.name] = tensor
        return tensor.name

    def replace(self, root: Node, new: Sequence[Node], interior: Iterable[Node] = (),
                renames: Mapping[str, str] | None = None) -> None:
        """Put ``new`` where ``root`` is, apply ``renames``, drop interior nodes left dead."""
        pos = next(k for k, n in enumerate(self.nodes) if n is root)
        self._unlink(root)
        self.nodes[pos:pos + 1] = list(new)
        for n in new:
            self._names.add(n.name)
            self._link(n)
        if renames:
            self._rename(renames)
        self._drop_dead([root, *interior])

    def _rename(self, renames: Mapping[str, str]) -> None:
        readers = {id(c): c for old in renames for c in self.consumers(old)}
        for k, n in enumerate(self.nodes):
            if id(n) in readers:
                renamed = n.with_inputs(renames.get(i, i) for i in n.inputs)
                self._unlink(n)
                self._link(renamed)
                self.nodes[k] = renamed
        self.outputs = [renames.get(o, o) for o in self.outputs]

    def _drop_dead(self, candidates: list[Node]) -> None:
        """Remove candidate nodes (still in the graph) whose outputs nothing reads."""
        pending = {id(c): c for c in candidates if self.alive(c)}
        dead: set[int] = set()
        changed = True
        while changed:
            changed = False
            for key, cand in list(pending.items()):
                if any(self.consumers(o) or o in self.outputs for o in cand.outputs):
                    continue
                self._unlink(cand)
                for o in cand.outputs:
                    self.tensors.pop(o, None)
                dead.add(key)
                del pending[key]
                changed = True
        if dead:
            self.nodes = [n for n in self.nodes if id(n) not in dead]


# -- operands -------------------------------------------------------------------------
def operand(node: Node, name: str, pos: int) -> Operand | None:
    """A tensor input as ``("t", name)``, or a scalar argument as ``("s", value)``."""
    t = node.tensor_arg(name, pos)
    if t is not None:
        return ("t", t)
    value = node.attrs.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return ("s", value)


def scalar_of(work: Work, op: Operand | None) -> float | None:
    """A scalar operand's value: a Python scalar or a one-element constant tensor."""
    if op is None:
        return None
    kind, v = op
    if kind == "s":
        return float(v)  # type: ignore[arg-type]
    value = work.value(str(v))
    if value is not None and value.size == 1 and value.dtype.kind == "f":
        return float(value.reshape(-1)[0])
    return None


def scalar_binary(work: Work, node: Node) -> tuple[str, float] | None:
    """``(tensor, scalar)`` for ``mul``/``div``/``add``/``sub`` of a tensor by a scalar.

    The scalar may come first for ``mul`` and ``add`` (commutative). The result keeps
    the tensor's shape and dtype, so the op is a pure scalar map.
    """
    if node.kind not in ("mul", "div", "add", "sub") or node.attrs.get("alpha", 1) != 1:
        return None
    if node.kind == "div" and node.attrs.get("rounding_mode") is not None:
        return None
    a, b = operand(node, "self", 0), operand(node, "other", 1)
    pairs = [(a, b), (b, a)] if node.kind in ("mul", "add") else [(a, b)]
    for t, s in pairs:
        if t is None or t[0] != "t":
            continue
        value = scalar_of(work, s)
        if value is None or s == t:
            continue
        x, out = work.tensors[str(t[1])], work.tensors[node.outputs[0]]
        if x.shape == out.shape and x.dtype == out.dtype:
            return str(t[1]), value
    return None


def exclusive(work: Work, root: Node, interior: Iterable[Node]) -> bool:
    """True when the interior nodes' outputs are read only inside the match."""
    matched = {id(root)} | {id(n) for n in interior}
    for n in interior:
        if n is root:
            continue
        for o in n.outputs:
            if o in work.outputs or any(id(c) not in matched for c in work.consumers(o)):
                return False
    return True


def swaps_last_two(node: Node, rank: int) -> bool:
    """True for a transpose/t/permute that swaps exactly the last two dimensions."""
    if rank < 2:
        return False
    if node.kind == "t":
        return rank == 2
    if node.kind == "transpose":
        dims = {int(node.attrs.get("dim0", 0)) % rank, int(node.attrs.get("dim1", 1)) % rank}
        return dims == {rank - 2, rank - 1}
    if node.kind == "permute":
        dims = [int(d) % rank for d in node.attrs.get("dims", [])]  # type: ignore[union-attr]
        return dims == [*range(rank - 2), rank - 1, rank - 2]
    return False
