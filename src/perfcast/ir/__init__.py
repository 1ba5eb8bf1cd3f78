"""perfcast's graph IR: tensors, nodes, graphs and the op registry."""

from perfcast.ir import ops as _ops  # noqa: F401  (fills the registry)
from perfcast.ir.cost import Cost
from perfcast.ir.dtypes import DTypeError, canonical, itemsize
from perfcast.ir.graph import Graph, GraphError, Node
from perfcast.ir.registry import (
    MATRIX_CATEGORIES,
    Category,
    OpDef,
    RegistryError,
    UnknownOpError,
    define,
    lookup,
)
from perfcast.ir.tensor import Dim, Shape, Tensor, numel

__all__ = [
    "MATRIX_CATEGORIES",
    "Category",
    "Cost",
    "DTypeError",
    "Dim",
    "Graph",
    "GraphError",
    "Node",
    "OpDef",
    "RegistryError",
    "Shape",
    "Tensor",
    "UnknownOpError",
    "canonical",
    "define",
    "itemsize",
    "lookup",
    "numel",
]
