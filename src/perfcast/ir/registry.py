"""The op registry: for each op kind, its output types, FLOPs, bytes and category.

Every op kind is defined exactly once with :func:`define`. Formulas take the op's
input tensors, output tensors and attributes and return a count; dimensions may be
NumPy arrays, so one call evaluates many shapes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from perfcast.ir.tensor import Dim, Shape, Tensor


class Category(StrEnum):
    GEMM = "gemm"
    CONV = "conv"
    ATTENTION = "attention"
    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    NORM = "norm"
    DATA_MOVEMENT = "data_movement"
    EMBEDDING = "embedding"
    COLLECTIVE = "collective"


# Matrix work: runs on tensor cores / matrix units at the dtype's matrix peak
MATRIX_CATEGORIES = frozenset({Category.GEMM, Category.CONV, Category.ATTENTION})


Inputs = Sequence[Tensor]
Attrs = Mapping[str, object]
InferFn = Callable[[Inputs, Attrs], list[tuple[Shape, str]]]
CountFn = Callable[[Inputs, Sequence[Tensor], Attrs], Dim]


def io_bytes(inputs: Inputs, outputs: Sequence[Tensor], attrs: Attrs) -> Dim:
    """Minimum traffic: every input read once, every output written once."""
    total: Dim = 0
    for t in (*inputs, *outputs):
        total = total + t.nbytes
    return total


def no_flops(inputs: Inputs, outputs: Sequence[Tensor], attrs: Attrs) -> Dim:
    """Ops that move data but do no arithmetic."""
    return 0


@dataclass(frozen=True)
class OpDef:
    """How to cost one op kind. ``view`` ops alias their input: no kernel, no bytes."""

    kind: str
    category: Category
    infer: InferFn
    flops: CountFn = no_flops
    bytes: CountFn = io_bytes
    view: bool = False


class RegistryError(ValueError):
    """A problem with op definitions (duplicate or unknown kind)."""


class UnknownOpError(RegistryError):
    """The registry has no definition for an op kind."""


_REGISTRY: dict[str, OpDef] = {}


def define(
    kinds: str | Iterable[str],
    category: Category,
    infer: InferFn,
    flops: CountFn = no_flops,
    bytes: CountFn = io_bytes,
    *,
    view: bool = False,
) -> None:
    """Register one formula set for one or more op kinds; a kind is defined once."""
    for kind in [kinds] if isinstance(kinds, str) else list(kinds):
        if kind in _REGISTRY:
            raise RegistryError(f"op kind {kind!r} is already defined")
        _REGISTRY[kind] = OpDef(kind, category, infer, flops, bytes, view)


def lookup(kind: str) -> OpDef:
    """The definition of ``kind``; raises :class:`UnknownOpError` if there is none."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnknownOpError(f"op kind {kind!r} is not in the registry") from None


def is_known(kind: str) -> bool:
    return kind in _REGISTRY


def known_kinds() -> list[str]:
    return sorted(_REGISTRY)
