"""perfcast's graph IR: tensors, nodes, graphs and the op registry."""

from perfcast.ir import ops as _ops  # noqa: F401  (fills the registry)
from perfcast.ir.cost import Cost
from perfcast.ir.dtypes import DTypeError, canonical, itemsize
from perfcast.ir.graph import Graph, GraphError, Node, schema_arg
from perfcast.ir.registry import (
    IDENTITY,
    MATRIX_CATEGORIES,
    Category,
    Family,
    OpDef,
    RegistryError,
    UnknownOpError,
    define,
    in_family,
    kinds_of,
    lookup,
)
from perfcast.ir.tensor import Dim, Shape, Tensor, numel

__all__ = [
    "IDENTITY",
    "MATRIX_CATEGORIES",
    "Category",
    "Cost",
    "DTypeError",
    "Dim",
    "Family",
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
    "in_family",
    "itemsize",
    "kinds_of",
    "lookup",
    "numel",
    "schema_arg",
]
