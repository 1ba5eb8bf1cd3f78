"""The op registry: for each op kind, its output types, FLOPs, bytes, category and family.

Every op kind is defined exactly once with :func:`define`. Formulas take the op's
input tensors, output tensors and attributes and return a count; dimensions may be
NumPy arrays, so one call evaluates many shapes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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


class Family(StrEnum):
    """What an op does with its data: the question passes and the runtime ask of a kind."""

    ALIAS = "alias"  # its input itself (alias, detach): no kernel
    RESHAPE = "reshape"  # the same elements in the same order, reshaped: no kernel
    VIEW = "view"  # a strided view of its input (permute, slice, expand...): no kernel
    COPY = "copy"  # its input's values in a new buffer (clone, contiguous): a kernel in eager
    MOVEMENT = "movement"  # other rearrangements (cat, pad, repeat, flip, resample...)
    INDEX = "index"  # reads or writes at index tensors (gather, scatter, embedding...)
    CREATION = "creation"  # a new tensor; its inputs' values do not matter (zeros_like...)
    ELEMENTWISE = "elementwise"
    MATRIX = "matrix"
    REDUCTION = "reduction"
    POOLING = "pooling"
    NORM = "norm"
    COLLECTIVE = "collective"


# Families whose op launches no kernel and moves no bytes.
NO_KERNEL = frozenset({Family.ALIAS, Family.RESHAPE, Family.VIEW})
# Families whose result has the values of the op's first input.
IDENTITY = frozenset({Family.ALIAS, Family.COPY})
_DEFAULT_FAMILY = {**dict.fromkeys(MATRIX_CATEGORIES, Family.MATRIX),
                   Category.ELEMENTWISE: Family.ELEMENTWISE,
                   Category.REDUCTION: Family.REDUCTION, Category.NORM: Family.NORM,
                   Category.EMBEDDING: Family.INDEX, Category.COLLECTIVE: Family.COLLECTIVE}


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
    """How to cost one op kind, and its family."""

    kind: str
    category: Category
    family: Family
    infer: InferFn
    flops: CountFn = no_flops
    bytes: CountFn = io_bytes

    @property
    def view(self) -> bool:
        """A view of its input (:data:`NO_KERNEL` families): no kernel, no bytes."""
        return self.family in NO_KERNEL


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
    family: Family | None = None,
) -> None:
    """Register one formula set for one or more op kinds; a kind is defined once.

    ``family`` defaults to the one the category implies; data movement must name it.
    """
    family = family or _DEFAULT_FAMILY.get(category)
    if family is None:
        raise RegistryError(f"op kinds {kinds!r} of category {category} need a family")
    for kind in [kinds] if isinstance(kinds, str) else list(kinds):
        if kind in _REGISTRY:
            raise RegistryError(f"op kind {kind!r} is already defined")
        _REGISTRY[kind] = OpDef(kind, category, family, infer, flops, bytes)


def lookup(kind: str) -> OpDef:
    """The definition of ``kind``; raises :class:`UnknownOpError` if there is none."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnknownOpError(f"op kind {kind!r} is not in the registry") from None


def is_known(kind: str) -> bool:
    return kind in _REGISTRY


def in_family(kind: str, families: Family | Collection[Family]) -> bool:
    """Whether ``kind`` is known and of ``families`` (one family or several)."""
    op = _REGISTRY.get(kind)
    if op is None:
        return False
    return op.family is families if isinstance(families, Family) else op.family in families


def kinds_of(families: Family | Collection[Family]) -> list[str]:
    """The known kinds of ``families``, sorted."""
    return [k for k in known_kinds() if in_family(k, families)]


def known_kinds() -> list[str]:
    return sorted(_REGISTRY)
