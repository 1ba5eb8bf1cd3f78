"""The shape facts a calibrated cost model needs beyond FLOPs and bytes.

A matrix kernel's speed depends on its GEMM dimensions, not only on its FLOPs: a
64x768x3072 product runs far below a 512x768x768 one of similar work. Convolutions are
read as the implicit GEMM a library runs (M = batch x output pixels, N = output
channels, K = input channels per group x kernel window). Elementwise kernels are
described by how many elements each op kind writes, since a tanh costs many times an
add per element on a CPU; windowed pooling by how many elements it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfcast.ir import Category, Family, Graph, Node, in_family
from perfcast.ir.tensor import Dim, numel

_LINEAR_KINDS = frozenset({"linear"})
_MM_KINDS = frozenset({"mm", "addmm"})
_BMM_KINDS = frozenset({"bmm", "baddbmm"})


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's geometry beyond M, N, K: what a framework may pick its
    implementation by (the PyTorch eager CPU rule lives in
    :mod:`perfcast.calibrate.eager_cpu`, with the backend's other facts)."""

    images: Dim  # N, the batch of images
    input_elements: Dim  # N x input channels x spatial
    window: tuple[Dim, ...]  # kernel extent along each spatial dimension
    strided: bool
    dilated: bool
    groups: int


@dataclass(frozen=True)
class MatrixShape:
    """GEMM dimensions of a matrix kernel: ``batch`` independent ``m x n x k`` products
    (a grouped convolution is one product per group).

    ``depthwise``: a grouped convolution with one input channel per group, which libraries
    run as a streaming stencil rather than as a GEMM. ``window``: the convolution window's
    elements, so that ``k / window`` is the input channels per group (1 for a GEMM).
    ``call``: a convolution's call facts (None for a GEMM).
    """

    batch: Dim
    m: Dim
    n: Dim
    k: Dim
    depthwise: bool = False
    window: Dim = 1
    call: ConvGeometry | None = None


def matrix_shape(graph: Graph, node: Node) -> MatrixShape | None:
    """The GEMM dimensions of ``node``, or None when it is not a GEMM or convolution."""
    ins = [graph.tensors[i] for i in node.inputs]
    kind = node.kind
    if kind in _LINEAR_KINDS:
        x, w = ins[0], ins[1]
        k = x.shape[-1]
        return MatrixShape(1, numel(x.shape[:-1]), w.shape[0], k)
    if kind in _MM_KINDS:
        a, b = ins[-2], ins[-1]
        return MatrixShape(1, a.shape[0], b.shape[1], a.shape[1])
    if kind in _BMM_KINDS:
        a, b = ins[-2], ins[-1]
        return MatrixShape(a.shape[0], a.shape[1], b.shape[2], a.shape[2])
    if kind == "matmul" or kind == "gemm":
        return _matmul_shape(graph, node, trans_b=bool(node.attrs.get("trans_b", False)))
    if graph.category(node) is Category.CONV:
        return _conv_shape(graph, node)
    return None


def element_counts(graph: Graph, nodes: tuple[Node, ...]) -> tuple[tuple[str, Dim], ...]:
    """``(op kind, elements)`` of each elementwise op (output elements) and pooling op
    (input elements) among ``nodes``."""
    counts = []
    for n in nodes:
        if in_family(n.kind, Family.POOLING) and n.inputs:
            counts.append((n.kind, graph.tensors[n.inputs[0]].numel))
        elif graph.category(n) is Category.ELEMENTWISE and n.outputs:
            counts.append((n.kind, graph.tensors[n.outputs[0]].numel))
    return tuple(counts)


def _matmul_shape(graph: Graph, node: Node, *, trans_b: bool) -> MatrixShape | None:
    a, b = (graph.tensors[i] for i in node.inputs[:2])
    if len(a.shape) < 1 or len(b.shape) < 1:
        return None
    k = a.shape[-1]
    n = (b.shape[-2] if trans_b else b.shape[-1]) if len(b.shape) >= 2 else 1
    if len(b.shape) <= 2:  # one weight for every row of a: a single GEMM
        return MatrixShape(1, numel(a.shape[:-1]), n, k)
    m = a.shape[-2] if len(a.shape) >= 2 else 1
    out = graph.tensors[node.outputs[0]]
    return MatrixShape(out.numel // (m * n), m, n, k)


def _conv_shape(graph: Graph, node: Node) -> MatrixShape:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    out = graph.tensors[node.outputs[0]]
    n_sp = len(w.shape) - 2
    groups = int(node.attrs.get("groups", node.attrs.get("group", 1)))  # ONNX: group
    window = numel(w.shape[2:])
    if node.attrs.get("transposed", False):
        c_out, c_in_group = w.shape[1] * groups, w.shape[0] // groups
        pixels = numel(x.shape[:-n_sp - 1]) * numel(x.shape[-n_sp:])
    else:
        c_out, c_in_group = w.shape[0], w.shape[1]
        pixels = numel(out.shape[:-n_sp - 1]) * numel(out.shape[-n_sp:])
    call = ConvGeometry(images=numel(x.shape[:-n_sp - 1]), input_elements=x.numel,
                    window=tuple(w.shape[2:]), strided=_any_above_one(node, "stride"),
                    dilated=_any_above_one(node, "dilation"), groups=groups)
    return conv_matrix_shape(pixels, c_out, c_in_group, groups, window, call)


def _any_above_one(node: Node, attr: str) -> bool:
    """Whether a convolution's ``stride`` or ``dilation`` (ONNX: ``strides``,
    ``dilations``; absent means 1) exceeds 1 along some dimension."""
    value = node.attrs.get(attr, node.attrs.get(f"{attr}s", 1))
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(int(v) > 1 for v in values if v is not None)


def conv_matrix_shape(pixels: Dim, c_out: Dim, c_in_group: Dim, groups: int,
                      window: Dim, call: ConvGeometry | None = None) -> MatrixShape:
    """The implicit GEMM of a convolution writing ``pixels`` outputs per channel (batch
    included): one product per group, or a depthwise stream."""
    if groups > 1 and c_in_group == 1:
        return MatrixShape(1, pixels, c_out, window, True, window, call)
    return MatrixShape(groups, pixels, c_out // groups, c_in_group * window, window=window,
                       call=call)
