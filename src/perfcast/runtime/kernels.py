"""The runtime's steps as the estimator's kernels: one kernel per step, in program order.

:func:`step_kernels` lowers a post-pass graph the way :func:`perfcast.runtime.lower`
does, without constant values (the estimator's graphs have no weights): constants are
zero-memory placeholders, nodes lowering would evaluate on constants become placeholder
constants too, and dtypes the runtime lacks (bf16, fp16, fp8) lower as float32, which
changes no step. A node the runtime cannot lower (a convolution) becomes one opaque step,
so the estimate still covers it.

A node's last step is costed by the op registry (its kernel is that node). The steps
before it (gathers of strided views, casts), the pieces of a data-movement node (cat)
and copies of outputs are costed from their buffers: what they read and write, and one
FLOP per element for arithmetic.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

from perfcast.ir import Category, Graph, Node, Tensor
from perfcast.ir.dtypes import FLOATING, itemsize
from perfcast.passes.partition import Kernel, make_kernel, view_roots
from perfcast.runtime import views as V
from perfcast.runtime.lower import Lowered, Lowerer, RuntimeLoweringError
from perfcast.runtime.program import DTYPES, Step

OPAQUE = "op"  # the step kind of a node the runtime cannot lower
_ARITHMETIC = {"scalar", "unary", "binary", "where", "swiglu"}


def step_kernels(graph: Graph) -> list[Kernel]:
    """The kernels the runtime runs for ``graph`` (after the target's passes), in order."""
    lowered = lower_shapes(graph)
    by_node: dict[str, list[int]] = defaultdict(list)
    for k, origin in enumerate(lowered.origins):
        if origin is not None:
            by_node[origin].append(k)
    nodes = {n.name: n for n in graph.nodes}
    roots = view_roots(graph)
    readers: dict[str, set[int]] = defaultdict(set)
    for name, steps in by_node.items():
        for i in nodes[name].inputs:
            readers[roots[i]].add(steps[-1])
    outputs = {roots[o] for o in graph.outputs}
    kernels = []
    for k, (step, origin) in enumerate(zip(lowered.steps, lowered.origins, strict=True)):
        node = nodes.get(origin) if origin is not None else None
        if node is not None and by_node[origin][-1] == k and (
                len(by_node[origin]) == 1 or graph.category(node) is not Category.DATA_MOVEMENT):
            kernel = make_kernel(graph, k, [node], roots, readers, outputs)
            kernels.append(replace(kernel, name=f"k{k}:{step.kind}:{node.kind}",
                                   step=step.kind))
        else:
            kernels.append(_step_kernel(graph, lowered, k, step, node))
    return kernels


def lower_shapes(graph: Graph) -> Lowered:
    """:func:`perfcast.runtime.lower` of ``graph`` without constant values (see above)."""
    return _ShapeLowerer(_as_float32(graph)).run()


def _as_float32(graph: Graph) -> Graph:
    tensors = {k: Tensor(t.name, t.shape, "float32", t.const, t.meta)
               if t.dtype in FLOATING and t.dtype != "float32" else t
               for k, t in graph.tensors.items()}
    return replace(graph, tensors=tensors)


def _placeholder(shape, dtype) -> np.ndarray:
    """A read-only array of ``shape`` that takes no memory (every element is 0)."""
    return np.broadcast_to(np.zeros((), dtype), tuple(int(d) for d in shape))


def _np_dtype(dtype: str) -> np.dtype:
    return DTYPES.get(dtype) or np.dtype(np.float32)


class _ShapeLowerer(Lowerer):
    """Lowering with placeholder constants; unsupported nodes become opaque steps."""

    def __init__(self, graph: Graph) -> None:
        consts = {t.name: _placeholder(t.shape, _np_dtype(t.dtype)) for t in graph.constants()}
        super().__init__(graph, consts)

    def materialize(self, value: np.ndarray) -> np.ndarray:
        return value

    def value_of(self, v: V.View) -> np.ndarray:
        return _placeholder(v.shape, self.values[v.root].dtype)

    def fold(self, node: Node, fallback: bool) -> None:
        for name in node.outputs:
            t = self.graph.tensors[name]
            self.values[name] = _placeholder(t.shape, _np_dtype(t.dtype))
            self.set_view(name, V.root_view(name, self.shape(name), t.dtype))
        self.folded.append(node.name)

    def _check_dtype(self, dtype: str, name: str) -> None:
        return None

    def unsupported(self, node: Node, exc: RuntimeLoweringError, emitted: int) -> None:
        del self.steps[emitted:], self.origins[emitted:]
        outs = [self.output_root(o) for o in node.outputs if o in self.used]
        ins = [self.buf(i) for i in node.inputs if i in self.views]
        self.emit(OPAQUE, ins, outs, {"node": node.kind})


def _step_kernel(graph: Graph, lowered: Lowered, k: int, step: Step, node: Node | None) -> Kernel:
    """A kernel costed from the step's buffers (``node``: the node it belongs to, if any)."""
    specs = lowered.specs
    dtype = _origin_dtype(graph, node)
    size = itemsize(dtype)
    written = sum(int(np.prod(specs[o].shape, dtype=np.int64)) for o in step.outputs)
    read = sum(int(np.prod(specs[i].shape, dtype=np.int64)) for i in step.inputs)
    arithmetic = step.kind in _ARITHMETIC
    return Kernel(
        name=f"k{k}:{step.kind}" + (f":{node.kind}" if node is not None else ""),
        nodes=(),
        category=Category.ELEMENTWISE if arithmetic or step.kind == "cast"
        else Category.DATA_MOVEMENT,
        flops=written if arithmetic else 0,
        bytes=(read + written) * size,
        dtype=dtype,
        module=node.module if node is not None else "",
        elements=((step.attrs.get("op", step.kind), written),) if arithmetic else (),
        step=step.kind,
    )


def _origin_dtype(graph: Graph, node: Node | None) -> str:
    if node is not None and node.outputs and node.outputs[0] in graph.tensors:
        return graph.tensors[node.outputs[0]].dtype
    return "float32"

