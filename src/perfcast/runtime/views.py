"""View algebra: how reshape, transpose, slice... move a tensor's shape, strides and offset.

A :class:`View` places a tensor inside a root buffer (an input, a constant or an arena
buffer) without moving data. Every function returns a new view, or ``None`` where the
result is not expressible with strides (a reshape of some non-contiguous views).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfcast.runtime.program import contiguous_strides, is_contiguous


@dataclass(frozen=True)
class View:
    root: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int  # elements from the root's element 0
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def contiguous(self) -> bool:
        return is_contiguous(self.shape, self.strides)


def root_view(root: str, shape: Sequence[int], dtype: str) -> View:
    shape = tuple(int(d) for d in shape)
    return View(root, shape, contiguous_strides(shape), 0, dtype)


def norm(dim: int, rank: int) -> int:
    """A possibly negative dimension as a non-negative one (rank 0 behaves as rank 1)."""
    r = max(rank, 1)
    if not -r <= dim < r:
        raise ValueError(f"dimension {dim} out of range for rank {rank}")
    return dim % r


def reshape(v: View, new_shape: Sequence[int]) -> View | None:
    """``v`` with ``new_shape`` (one ``-1`` allowed), or None if the strides cannot express it."""
    shape = _resolve(new_shape, _numel(v.shape))
    if _numel(shape) != _numel(v.shape):
        raise ValueError(f"cannot reshape {list(v.shape)} to {list(new_shape)}")
    if v.contiguous:
        return replace(v, shape=shape, strides=contiguous_strides(shape))
    strides = _reshape_strides(v.shape, v.strides, shape)
    return None if strides is None else replace(v, shape=shape, strides=strides)


def _resolve(size: Sequence[int], total: int) -> tuple[int, ...]:
    dims = [int(d) for d in size]
    if -1 in dims:
        k = dims.index(-1)
        rest = _numel(dims[:k] + dims[k + 1:])
        dims[k] = total // rest if rest else 0
    return tuple(dims)


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _chunks(shape: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of dimensions that are dense among themselves: (numel, innermost stride)."""
    dims = [(d, s) for d, s in zip(shape, strides, strict=True) if d != 1]
    out: list[tuple[int, int]] = []
    for d, s in dims:
        if out and out[-1][1] == s * d:
            n, _ = out[-1]
            out[-1] = (n * d, s)
        else:
            out.append((d, s))
    return out


def _reshape_strides(shape, strides, new_shape) -> tuple[int, ...] | None:
    """Strides for ``new_shape`` over the same elements, if each chunk splits exactly."""
    chunks = _chunks(shape, strides)
    out = [0] * len(new_shape)
    k = len(new_shape) - 1
    for numel, inner in reversed(chunks):
        acc = 1
        while acc < numel:
            if k < 0:
                return None
            d = new_shape[k]
            out[k] = inner * acc
            acc *= d
            k -= 1
        if acc != numel:
            return None
    while k >= 0:  # leftover dimensions must be 1
        if new_shape[k] != 1:
            return None
        out[k] = 1
        k -= 1
    for j in reversed(range(len(new_shape))):  # size-1 dimensions: any stride; a dense one
        if new_shape[j] == 1:
            out[j] = out[j + 1] * new_shape[j + 1] if j + 1 < len(new_shape) else 1
    return tuple(out)


def unsqueeze(v: View, dim: int) -> View:
    dim = norm(dim, v.rank + 1)
    inner = v.strides[dim] * v.shape[dim] if dim < v.rank else 1
    return replace(v, shape=(*v.shape[:dim], 1, *v.shape[dim:]),
                   strides=(*v.strides[:dim], inner, *v.strides[dim:]))


def squeeze(v: View, dims: Sequence[int] | None) -> View:
    drop = set(range(v.rank)) if dims is None else {norm(d, v.rank) for d in dims}
    keep = [k for k in range(v.rank) if not (k in drop and v.shape[k] == 1)]
    return replace(v, shape=tuple(v.shape[k] for k in keep),
                   strides=tuple(v.strides[k] for k in keep))


def expand(v: View, size: Sequence[int]) -> View:
    lead = len(size) - v.rank
    if lead < 0:
        raise ValueError(f"cannot expand {list(v.shape)} to {list(size)}")
    shape, strides = [], []
    for k, s in enumerate(size):
        s = int(s)
        if k < lead:
            shape.append(s)
            strides.append(0)
            continue
        d, st = v.shape[k - lead], v.strides[k - lead]
        if s == -1 or s == d:
            shape.append(d)
            strides.append(st)
        elif d == 1:
            shape.append(s)
            strides.append(0)
        else:
            raise ValueError(f"cannot expand {list(v.shape)} to {list(size)}")
    return replace(v, shape=tuple(shape), strides=tuple(strides))


def broadcast_to(v: View, shape: Sequence[int]) -> View:
    """``v`` broadcast to ``shape`` (NumPy rules): stride 0 on the stretched dimensions."""
    return expand(v, [int(d) for d in shape])


def permute(v: View, dims: Sequence[int]) -> View:
    order = [norm(d, v.rank) for d in dims]
    if sorted(order) != list(range(v.rank)):
        raise ValueError(f"permutation {list(dims)} is not one of rank {v.rank}")
    return replace(v, shape=tuple(v.shape[k] for k in order),
                   strides=tuple(v.strides[k] for k in order))


def transpose(v: View, dim0: int, dim1: int) -> View:
    if v.rank < 2:
        return v
    order = list(range(v.rank))
    a, b = norm(dim0, v.rank), norm(dim1, v.rank)
    order[a], order[b] = order[b], order[a]
    return permute(v, order)


def slice_(v: View, dim: int, start: int | None, end: int | None, step: int = 1) -> View:
    dim = norm(dim, v.rank)
    size = v.shape[dim]
    if step < 1:
        raise ValueError(f"slice step must be >= 1, got {step}")
    lo = 0 if start is None else int(start)
    hi = size if end is None else int(end)
    lo = min(max(lo + size if lo < 0 else lo, 0), size)
    hi = min(max(hi + size if hi < 0 else hi, lo), size)
    n = (hi - lo + step - 1) // step
    shape, strides = list(v.shape), list(v.strides)
    shape[dim] = n
    strides[dim] = v.strides[dim] * step
    return replace(v, shape=tuple(shape), strides=tuple(strides),
                   offset=v.offset + lo * v.strides[dim])


def select(v: View, dim: int, index: int) -> View:
    dim = norm(dim, v.rank)
    size = v.shape[dim]
    if not -size <= index < size:
        raise ValueError(f"index {index} out of range for dimension {dim} of size {size}")
    index %= size
    return replace(v, shape=v.shape[:dim] + v.shape[dim + 1:],
                   strides=v.strides[:dim] + v.strides[dim + 1:],
                   offset=v.offset + index * v.strides[dim])


def split(v: View, dim: int, sizes: Sequence[int]) -> list[View]:
    """Consecutive pieces of ``sizes`` along ``dim``."""
    pieces, start = [], 0
    for n in sizes:
        pieces.append(slice_(v, dim, start, start + int(n)))
        start += int(n)
    return pieces


def coalesce(shape: Sequence[int], *strides: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Merge adjacent dimensions that are dense for every operand (iteration order kept).

    Returns ``(shape, strides_1, strides_2, ...)`` of the smallest rank that visits the
    same elements in the same order; size-1 dimensions are dropped (rank >= 1).
    """
    keep = [k for k, d in enumerate(shape) if d != 1]
    dims = [int(shape[k]) for k in keep]
    sts = [[int(s[k]) for k in keep] for s in strides]
    j = len(dims) - 1
    while j > 0:
        if all(st[j - 1] == st[j] * dims[j] for st in sts):
            dims[j - 1] *= dims[j]
            for st in sts:
                st[j - 1] = st[j]
                del st[j]
            del dims[j]
        j -= 1
    if not dims:
        return ((1,), *[(0,) for _ in strides])
    return (tuple(dims), *[tuple(st) for st in sts])
