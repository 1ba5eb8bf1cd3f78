"""Lowering: an IR graph (after passes) to runtime steps over buffers.

Views (reshape, transpose, slice, expand...) move no data: each IR tensor is tracked as
a :class:`~perfcast.runtime.views.View` of a root buffer, and a step that reads it gets a
buffer aliasing that root with the view's offset and strides. A step kind that needs a
dense input gets a ``copy`` step first. The result, :class:`Lowered`, has every buffer
except the arena offsets, which the memory planner assigns.

The rules for each op kind live in :mod:`perfcast.runtime.lower_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfcast.ir import Family, Graph, Node, in_family
from perfcast.runtime import views as V
from perfcast.runtime.program import DTYPES, Step, contiguous_strides

# Integer tensors inside a graph whose dtype the runtime lacks are computed in int64: the
# same values as long as they fit in the narrower type (masks, positions, counts).
WIDEN = {"int32": "int64"}


class RuntimeLoweringError(ValueError):
    """The graph has something the runtime cannot execute; the message names the node."""


@dataclass(frozen=True)
class BufSpec:
    """A buffer before planning. Views name their root in ``base`` (None for a root)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    storage: str  # "arena" | "const" | "input"
    index: int
    strides: tuple[int, ...]
    base: str | None = None
    elem_offset: int = 0

    @property
    def root(self) -> str:
        return self.base or self.name

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * DTYPES[self.dtype].itemsize


@dataclass
class Lowered:
    """Steps over buffer specs: a Program without arena offsets."""

    specs: dict[str, BufSpec]
    steps: list[Step]
    inputs: list[str]
    outputs: list[str]
    consts: list[np.ndarray]
    folded: list[str] = field(default_factory=list)  # nodes evaluated at lowering time
    origins: list[str | None] = field(default_factory=list)  # per step: the node lowering it


def lower(graph: Graph, consts: Mapping[str, np.ndarray]) -> Lowered:
    """Lower ``graph`` (constants' values in ``consts``) to runtime steps.

    Raises :class:`RuntimeLoweringError` naming the node and kind for anything the
    runtime does not support.
    """
    return Lowerer(graph, consts).run()


class Lowerer:
    """State of one lowering; the rules call its helpers."""

    def __init__(self, graph: Graph, consts: Mapping[str, np.ndarray]) -> None:
        self.graph = graph
        self.values = dict(consts)  # constant IR tensors (and folded results) by name
        self.views: dict[str, V.View] = {}
        self.specs: dict[str, BufSpec] = {}
        self.steps: list[Step] = []
        self.consts: list[np.ndarray] = []
        self.folded: list[str] = []
        self.origins: list[str | None] = []
        self._const_index: dict[str, int] = {}
        self._dense: dict[str, str] = {}
        self._input_copies: dict[str, str] = {}
        self._counter = 0
        self.node: Node | None = None
        self.used = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
        self.consumers = graph.consumers()

    # -- driver -----------------------------------------------------------------------
    def run(self) -> Lowered:
        from perfcast.runtime.lower_rules import RULES

        for k, name in enumerate(self.graph.inputs):
            t = self.graph.tensors[name]
            self._check_dtype(t.dtype, name)
            shape = tuple(int(d) for d in t.shape)
            self.specs[name] = BufSpec(name, shape, t.dtype, "input", k,
                                       contiguous_strides(shape))
            self.views[name] = V.root_view(name, shape, t.dtype)
        for t in self.graph.constants():
            if t.name not in self.values:
                raise RuntimeLoweringError(f"constant {t.name!r} has no value; capture the "
                                           "model with keep_weights=True")
            self.values[t.name] = self.materialize(self.values[t.name])
            self.views[t.name] = V.root_view(t.name, self.values[t.name].shape,
                                             _dtype_name(self.values[t.name]))
        for node in self.graph.nodes:
            self.node = node
            if not any(o in self.used for o in node.outputs):
                continue  # dead: nothing reads it
            rule = RULES.get(node.kind)
            emitted = len(self.steps)
            try:
                if not getattr(rule, "view", False) and self._foldable(node):
                    self.fold(node, fallback=rule is not None)
                if not all(o in self.views for o in node.outputs if o in self.used):
                    if rule is None:
                        raise self.error(f"op kind {node.kind!r} is not supported by the "
                                         "runtime")
                    rule(self, node)
            except RuntimeLoweringError as exc:
                self.unsupported(node, exc, emitted)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                err = self.error(f"{type(exc).__name__}: {exc}")
                err.__cause__ = exc
                self.unsupported(node, err, emitted)
            self._check_outputs(node)
        self.node = None
        outputs = [self.output(o) for o in self.graph.outputs]
        return Lowered(self.specs, self.steps, list(self.graph.inputs), outputs, self.consts,
                       self.folded, self.origins)

    def fold(self, node: Node, fallback: bool) -> None:
        """Evaluate a node whose inputs are all constants (see ``lower_rules.fold_node``)."""
        from perfcast.runtime.lower_rules import fold_node

        fold_node(self, node, fallback=fallback)

    def unsupported(self, node: Node, exc: RuntimeLoweringError, emitted: int) -> None:
        """A node the runtime cannot lower (its steps from ``emitted`` on): raise ``exc``."""
        raise exc

    def error(self, message: str) -> RuntimeLoweringError:
        where = f"node {self.node.name!r} ({self.node.kind}): " if self.node else ""
        return RuntimeLoweringError(where + message)

    def _foldable(self, node: Node) -> bool:
        """Every input is a constant (or its value does not matter): evaluate it now, once."""
        return in_family(node.kind, Family.CREATION) or all(self.is_const(i) for i in node.inputs)

    def _check_outputs(self, node: Node) -> None:
        for o in node.outputs:
            if o not in self.used:
                continue
            want = tuple(int(d) for d in self.graph.tensors[o].shape)
            got = self.views.get(o)
            if got is None or got.shape != want:
                raise self.error(f"lowering gave output {o!r} shape "
                                 f"{None if got is None else list(got.shape)}, expected "
                                 f"{list(want)}")

    def _check_dtype(self, dtype: str, name: str) -> None:
        if dtype not in DTYPES:
            raise self.error(f"tensor {name!r} has dtype {dtype}; the runtime supports "
                             f"{', '.join(DTYPES)}")

    # -- tensors and views --------------------------------------------------------------
    def view(self, name: str) -> V.View:
        return self.views[name]

    def is_const(self, name: str) -> bool:
        return self.views[name].root in self.values

    def const_value(self, name: str) -> np.ndarray:
        """The value of a constant-rooted tensor (a new array)."""
        v = self.views[name]
        if self.values[v.root].size == 0:
            return np.zeros(v.shape, self.values[v.root].dtype)
        return self.value_of(v)

    def set_view(self, name: str, view: V.View) -> None:
        self.views[name] = view

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.graph.tensors[name].shape)

    def dtype(self, name: str) -> str:
        """``name``'s dtype in the runtime (int32 is computed as int64, see :data:`WIDEN`)."""
        dtype = self.graph.tensors[name].dtype
        return WIDEN.get(dtype, dtype)

    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}~{self._counter}"

    # -- buffers ----------------------------------------------------------------------
    def new_root(self, name: str, shape: Sequence[int], dtype: str) -> str:
        """An arena buffer written by a step; if ``name`` is an IR tensor, it is its value."""
        self._check_dtype(dtype, name)
        shape = tuple(int(d) for d in shape)
        if name in self.specs:
            name = self.fresh(name)
        self.specs[name] = BufSpec(name, shape, dtype, "arena", -1, contiguous_strides(shape))
        return name

    def output_root(self, tensor: str, shape: Sequence[int] | None = None) -> str:
        """The arena buffer that holds IR tensor ``tensor`` (a step's output)."""
        shape = tuple(self.shape(tensor) if shape is None else shape)
        name = self.new_root(tensor, shape, self.dtype(tensor))
        self.views[tensor] = V.root_view(name, shape, self.dtype(tensor))
        return name

    def add_const(self, value: np.ndarray, hint: str) -> str:
        """A new constant buffer holding ``value``; returns its IR-level name."""
        value = self.materialize(value)
        name = self.fresh(hint)
        self.values[name] = value
        self.views[name] = V.root_view(name, value.shape, _dtype_name(value))
        return name

    def materialize(self, value: np.ndarray) -> np.ndarray:
        """A constant's value as the program keeps it (C-contiguous)."""
        value = np.asarray(value, order="C")  # ascontiguousarray makes 0-d arrays 1-d
        wide = WIDEN.get(_dtype_name(value))
        return value if wide is None else value.astype(DTYPES[wide])

    def buf(self, tensor: str) -> str:
        """A buffer for ``tensor`` exactly as viewed (any strides) for a step to read."""
        return self.buf_of(self.views[tensor], tensor)

    def place(self, v: V.View, hint: str) -> tuple[str, V.View]:
        """A buffer for view ``v`` and the view it really has (a constant at an offset is
        copied into a new, contiguous constant: read strides from the returned view)."""
        v = self._rebase(v, hint)
        return self.buf_of(v, hint), v

    def buf_of(self, v: V.View, hint: str) -> str:
        v = self._rebase(v, hint)
        if v.root in self.values:
            self._register_const(v.root)
        rs = self.specs[v.root]
        if v.shape == rs.shape and v.strides == rs.strides and v.offset == 0:
            return v.root
        name = self.fresh(hint)
        self.specs[name] = BufSpec(name, v.shape, v.dtype, rs.storage, rs.index, v.strides,
                                   v.root, v.offset)
        return name

    def _rebase(self, v: V.View, hint: str) -> V.View:
        """Views of inputs and constants start at element 0 (see docs/runtime.md)."""
        if v.offset == 0:
            return v
        if v.root in self.values:  # a new constant with the view's elements
            return self.views[self.add_const(self.value_of(v), hint)]
        if self.specs[v.root].storage == "input":  # read it from a copy in the arena
            if v.root not in self._input_copies:
                rs = self.specs[v.root]
                out = self.new_root(self.fresh(v.root), rs.shape, rs.dtype)
                self.copy_into(v.root, rs.shape, rs.strides, out, 0)
                self._input_copies[v.root] = out
            return V.View(self._input_copies[v.root], v.shape, v.strides, v.offset, v.dtype)
        return v

    def _register_const(self, root: str) -> None:
        if root in self._const_index:
            return
        value = self.materialize(self.values[root])
        self._check_dtype(_dtype_name(value), root)
        self._const_index[root] = len(self.consts)
        self.consts.append(value)
        self.specs[root] = BufSpec(root, tuple(value.shape), _dtype_name(value), "const",
                                   self._const_index[root], contiguous_strides(value.shape))

    def dense(self, tensor: str) -> str:
        """A contiguous buffer with ``tensor``'s value (a copy step if its view is strided)."""
        if tensor not in self._dense:
            self._dense[tensor] = self.dense_view(self.views[tensor], tensor)
        return self._dense[tensor]

    def dense_view(self, v: V.View, hint: str) -> str:
        """A contiguous buffer with view ``v``'s elements: itself, a new constant (for a view
        of a constant, made now) or an arena buffer filled by a ``copy`` step."""
        if v.contiguous:
            return self.buf_of(v, hint)
        if v.root in self.values:
            return self.buf_of(self.views[self.add_const(self.value_of(v), hint)], hint)
        return self.copy(v, hint)

    def value_of(self, v: V.View) -> np.ndarray:
        """The elements of a view of a constant, as a new contiguous array."""
        root = self.values[v.root]
        return np.array(np.lib.stride_tricks.as_strided(
            root.reshape(-1)[v.offset:], v.shape, tuple(s * root.itemsize for s in v.strides)))

    def copy(self, v: V.View, hint: str) -> str:
        """Gather view ``v`` into a new contiguous arena buffer (a ``copy`` step)."""
        src = self.buf_of(v, hint)
        out = self.new_root(self.fresh(hint), v.shape, v.dtype)
        self.copy_into(src, self.specs[src].shape, self.specs[src].strides, out, 0)
        return out

    def copy_into(self, src: str, shape: Sequence[int], strides: Sequence[int], out: str,
                  out_offset: int, out_strides: Sequence[int] | None = None) -> None:
        """A ``copy`` step of ``src`` (viewed with shape/strides) into ``out``."""
        if out_strides is None:
            shp, sst = V.coalesce(shape, strides, contiguous_strides(tuple(shape)))[:2]
            attrs: dict[str, Any] = {"rank": len(shp), "shape": list(shp),
                                     "strides": list(sst), "out_offset_elems": int(out_offset)}
        else:
            shp, sst, ost = V.coalesce(shape, strides, out_strides)
            attrs = {"rank": len(shp), "shape": list(shp), "strides": list(sst),
                     "out_offset_elems": int(out_offset), "out_strides": list(ost)}
        self.emit("copy", [src], [out], attrs)

    def emit(self, kind: str, inputs: Sequence[str], outputs: Sequence[str],
             attrs: Mapping[str, Any]) -> None:
        self.steps.append(Step(kind, tuple(inputs), tuple(outputs), dict(attrs)))
        self.origins.append(self.node.name if self.node is not None else None)

    def output(self, tensor: str) -> str:
        """A program output: a contiguous arena buffer with ``tensor``'s value."""
        v = self.views[tensor]
        if v.root in self.values or self.specs[v.root].storage == "input" or not v.contiguous:
            return self.copy(v, tensor)
        return self.buf_of(v, tensor)


def _dtype_name(value: np.ndarray) -> str:
    for name, dt in DTYPES.items():
        if value.dtype == dt:
            return name
    return str(value.dtype)
