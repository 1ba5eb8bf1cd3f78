"""Graph: tensors and nodes in topological order, with validation and a text dump."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from perfcast.ir.cost import Cost
from perfcast.ir.registry import Category, io_bytes, is_known, lookup
from perfcast.ir.tensor import Tensor

_T = TypeVar("_T")


class GraphError(ValueError):
    """The graph is malformed; the message names the node and tensor at fault."""


def arg_names(attrs: Mapping[str, object]) -> list[str] | None:
    """The ATen schema name of each tensor input, where the frontend recorded them."""
    names = attrs.get("tensor_args")
    return list(names) if isinstance(names, list | tuple) else None


def schema_arg(items: Sequence[_T], attrs: Mapping[str, object], name: str,
               pos: int) -> _T | None:
    """The item (input name, tensor or value) for tensor argument ``name``: by the
    recorded schema names, else the ``pos``-th (kinds made by passes are positional)."""
    names = arg_names(attrs)
    if names is not None:
        return items[names.index(name)] if name in names else None
    return items[pos] if pos < len(items) else None


@dataclass(frozen=True)
class Node:
    """One op application. ``module`` is the dotted path of the module that ran it."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, object] = field(default_factory=dict)
    module: str = ""

    def with_inputs(self, inputs: Iterable[str]) -> Node:
        return replace(self, inputs=tuple(inputs))

    @property
    def arg_names(self) -> list[str] | None:
        return arg_names(self.attrs)

    def tensor_arg(self, name: str, pos: int) -> str | None:
        """The input tensor for schema argument ``name`` (``pos`` if positional), or None."""
        return schema_arg(self.inputs, self.attrs, name, pos)


@dataclass
class Graph:
    """A dataflow graph. Node order is a topological order once :meth:`validate` passed."""

    name: str = "graph"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    # -- construction -------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise GraphError(f"tensor {tensor.name!r} is defined twice")
        self.tensors[tensor.name] = tensor
        return tensor

    def add_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def apply(self, kind: str, inputs: list[str], attrs: Mapping | None = None,
              name: str | None = None, module: str = "") -> list[Tensor]:
        """Append a node of a registered kind, inferring its outputs from the registry."""
        attrs = dict(attrs or {})
        name = name or f"{kind}_{len(self.nodes)}"
        types = lookup(kind).infer([self.tensors[i] for i in inputs], attrs)
        outs = [
            self.add_tensor(Tensor(name if len(types) == 1 else f"{name}.{k}", shape, dtype))
            for k, (shape, dtype) in enumerate(types)
        ]
        self.add_node(Node(name, kind, tuple(inputs), tuple(t.name for t in outs), attrs, module))
        return outs

    # -- queries ------------------------------------------------------------------
    def producers(self) -> dict[str, Node]:
        return {out: n for n in self.nodes for out in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = defaultdict(list)
        for n in self.nodes:
            for i in n.inputs:
                users[i].append(n)
        return users

    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.const]

    def unsupported(self) -> Counter[str]:
        """Op kinds the registry does not know, with their counts."""
        return Counter(n.kind for n in self.nodes if not is_known(n.kind))

    def category(self, node: Node) -> Category | None:
        return lookup(node.kind).category if is_known(node.kind) else None

    def is_view(self, node: Node) -> bool:
        return is_known(node.kind) and lookup(node.kind).view

    def cost(self, node: Node) -> Cost:
        """FLOPs and minimum bytes of one node.

        An unknown op kind gets the bytes of its inputs and outputs (known from the
        shapes) and no FLOPs; callers report such nodes through :meth:`unsupported`.
        """
        ins = [self.tensors[i] for i in node.inputs]
        outs = [self.tensors[o] for o in node.outputs]
        if not is_known(node.kind):
            return Cost(0, io_bytes(ins, outs, node.attrs))
        op = lookup(node.kind)
        if op.view:
            return Cost(0, 0)
        return Cost(op.flops(ins, outs, node.attrs), op.bytes(ins, outs, node.attrs))

    # -- checks -------------------------------------------------------------------
    def validate(self) -> Graph:
        """Check references and order; raise :class:`GraphError` naming the culprit."""
        available = set(self.inputs) | {t.name for t in self.constants()}
        for name in available:
            if name not in self.tensors:
                raise GraphError(f"graph input {name!r} has no tensor description")
        produced_by: dict[str, str] = {}
        for node in self.nodes:
            where = f"node {node.name!r} ({node.kind})"
            for i in node.inputs:
                if i not in self.tensors:
                    raise GraphError(f"{where}: unknown input tensor {i!r}")
                if i not in available:
                    later = any(i in n.outputs for n in self.nodes)
                    reason = "is produced by a later node (cycle or bad order)" if later else (
                        "is not produced by any node and is not a graph input or constant")
                    raise GraphError(f"{where}: input {i!r} {reason}")
            for o in node.outputs:
                if o not in self.tensors:
                    raise GraphError(f"{where}: output {o!r} has no tensor description")
                if o in produced_by or o in self.inputs or self.tensors[o].const:
                    first = produced_by.get(o, "a graph input or constant")
                    raise GraphError(f"tensor {o!r} is produced twice: by {first!r} and "
                                     f"{node.name!r}")
                produced_by[o] = node.name
                available.add(o)
        for o in self.outputs:
            if o not in available:
                raise GraphError(f"graph output {o!r} is not produced by any node")
        return self

    def topological_order(self) -> list[Node]:
        """Nodes in a dependency order (Kahn's algorithm, stable for ties)."""
        producer = self.producers()
        deps = {n.name: {producer[i].name for i in n.inputs if i in producer} for n in self.nodes}
        users: dict[str, list[str]] = defaultdict(list)
        for name, ds in deps.items():
            for d in ds:
                users[d].append(name)
        by_name = {n.name: n for n in self.nodes}
        ready = [n.name for n in self.nodes if not deps[n.name]]
        order: list[Node] = []
        while ready:
            name = ready.pop(0)
            order.append(by_name[name])
            for u in users[name]:
                deps[u].discard(name)
                if not deps[u]:
                    ready.append(u)
        if len(order) != len(self.nodes):
            stuck = sorted(set(by_name) - {n.name for n in order})[:5]
            raise GraphError(f"graph has a cycle through nodes {stuck}")
        return order

    # -- display ------------------------------------------------------------------
    def dump(self, limit: int | None = None) -> str:
        """A readable listing: one line per node with output and input types."""
        t = self.tensors
        lines = [f"graph {self.name}("
                 + ", ".join(f"%{i}: {t[i].describe()}" for i in self.inputs) + ")"]
        n_const = len(self.constants())
        lines.append(f"  # {len(self.nodes)} nodes, {n_const} constants")
        for node in self.nodes[:limit]:
            outs = ", ".join(f"%{o}: {t[o].describe()}" for o in node.outputs)
            args = ", ".join(f"%{i}" for i in node.inputs)
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in node.attrs.items())
            mark = "" if is_known(node.kind) else "  # UNSUPPORTED"
            where = f"  @{node.module}" if node.module else ""
            lines.append(f"  {outs} = {node.kind}({args}{', ' if args and attrs else ''}{attrs})"
                         f"{where}{mark}")
        if limit is not None and len(self.nodes) > limit:
            lines.append(f"  ... {len(self.nodes) - limit} more nodes")
        lines.append("  return " + ", ".join(f"%{o}" for o in self.outputs))
        return "\n".join(lines)


def _short(v: object) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."
