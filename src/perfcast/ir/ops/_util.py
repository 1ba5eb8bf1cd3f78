"""Shape helpers shared by the op formulas; all of them accept array dimensions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from perfcast.ir.tensor import Dim, Shape, Tensor


def bdim(a: Dim, b: Dim) -> Dim:
    """Broadcast two dimensions (NumPy rules; arrays broadcast elementwise)."""
    if isinstance(a, int) and isinstance(b, int):
        return b if a == 1 else a
    return np.where(np.asarray(a) == 1, b, a)


def broadcast(*shapes: Shape) -> Shape:
    """Broadcast shapes right-aligned, as torch and NumPy do."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * rank
    for s in shapes:
        for k, d in enumerate(s):
            j = rank - len(s) + k
            out[j] = bdim(out[j], d)
    return tuple(out)


def norm_dim(dim: int, rank: int) -> int:
    """A possibly negative dimension index as a non-negative one."""
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise ValueError(f"dimension {dim} out of range for rank {rank}")
    return dim % max(rank, 1)


def same_as_input(ins: Sequence[Tensor], attrs: Mapping[str, object]) -> list[tuple[Shape, str]]:
    """Output shaped and typed like the first input."""
    return [(ins[0].shape, ins[0].dtype)]


def dims_attr(attrs: Mapping[str, object], key: str, rank: int) -> list[int]:
    """A dimension list attribute (``dim=None`` or ``[]`` means all dimensions)."""
    value = attrs.get(key)
    if value is None or value == []:
        return list(range(rank))
    if isinstance(value, int):
        value = [value]
    return sorted({norm_dim(int(d), rank) for d in value})  # type: ignore[union-attr]


def as_list(value: object, n: int) -> list[int]:
    """An int-or-list attribute (stride, padding...) expanded to ``n`` entries."""
    if isinstance(value, int):
        return [value] * n
    vals = [int(v) for v in value]  # type: ignore[union-attr]
    return vals * n if len(vals) == 1 else vals

