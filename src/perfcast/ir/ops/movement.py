"""Data movement: views (no kernel, no bytes), copies, concatenation, indexing, creation."""

from __future__ import annotations

import math

import numpy as np

from perfcast.ir.ops._util import broadcast, norm_dim, same_as_input
from perfcast.ir.registry import Category, Family, define
from perfcast.ir.tensor import Dim, Shape, numel

DM = Category.DATA_MOVEMENT


def _view(kinds, infer, family: Family = Family.VIEW) -> None:
    define(kinds, DM, infer, family=family)


def resolve_size(size, total: Dim) -> Shape:
    """A target size that may contain one -1, given the number of elements."""
    dims = list(size)
    if -1 in [d for d in dims if isinstance(d, int)]:
        k = dims.index(-1)
        dims[k] = total // numel([d for j, d in enumerate(dims) if j != k])
    return tuple(dims)


def _reshape(ins, attrs):
    x = ins[0]
    return [(resolve_size(attrs.get("size") or attrs.get("shape"), x.numel), x.dtype)]


def _unsqueeze(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs["dim"]), x.rank + 1)
    return [((*x.shape[:dim], 1, *x.shape[dim:]), x.dtype)]


def _squeeze(ins, attrs):
    x = ins[0]
    dims = attrs.get("dim")
    if dims is None:
        drop = {k for k, d in enumerate(x.shape) if isinstance(d, int) and d == 1}
    else:
        drop = {norm_dim(int(d), x.rank) for d in ([dims] if isinstance(dims, int) else dims)}
        drop = {k for k in drop if isinstance(x.shape[k], int) and x.shape[k] == 1}
    return [(tuple(d for k, d in enumerate(x.shape) if k not in drop), x.dtype)]


def _expand(ins, attrs):
    x = ins[0]
    size = list(attrs["size"])
    lead = len(size) - x.rank
    out = [x.shape[k - lead] if (isinstance(s, int) and s == -1) else s for k, s in enumerate(size)]
    return [(tuple(out), x.dtype)]


def _permute(ins, attrs):
    x = ins[0]
    return [(tuple(x.shape[norm_dim(int(d), x.rank)] for d in attrs["dims"]), x.dtype)]


def _transpose(ins, attrs):
    x = ins[0]
    shape = list(x.shape)
    if x.rank >= 2:
        a = norm_dim(int(attrs.get("dim0", attrs.get("axis0", 0))), x.rank)  # swapaxes: axis*
        b = norm_dim(int(attrs.get("dim1", attrs.get("axis1", 1))), x.rank)
        shape[a], shape[b] = shape[b], shape[a]
    return [(tuple(shape), x.dtype)]


def _reversed(ins, attrs):
    x = ins[0]
    return [(tuple(reversed(x.shape)), x.dtype)]


def slice_len(size: Dim, start, end, step: int) -> Dim:
    """Length of ``x[start:end:step]`` along a dimension of ``size``."""
    start = 0 if start is None else start
    end = size if end is None else end
    start = np.where(np.asarray(start) < 0, start + size, start)
    end = np.where(np.asarray(end) < 0, end + size, end)
    start = np.clip(start, 0, size)
    end = np.clip(end, start, size)
    n = (end - start + step - 1) // step
    return int(n) if np.ndim(n) == 0 else n


def _slice(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank)
    shape = list(x.shape)
    shape[dim] = slice_len(x.shape[dim], attrs.get("start"), attrs.get("end"),
                           int(attrs.get("step", 1)))
    return [(tuple(shape), x.dtype)]


def _select(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs["dim"]), x.rank)
    return [((*x.shape[:dim], *x.shape[dim + 1:]), x.dtype)]


def _narrow(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs["dim"]), x.rank)
    shape = list(x.shape)
    shape[dim] = int(attrs["length"])
    return [(tuple(shape), x.dtype)]


def _flatten(ins, attrs):
    x = ins[0]
    if x.rank == 0:
        return [((1,), x.dtype)]
    a = norm_dim(int(attrs.get("start_dim", 0)), x.rank)
    b = norm_dim(int(attrs.get("end_dim", -1)), x.rank)
    return [((*x.shape[:a], numel(x.shape[a:b + 1]), *x.shape[b + 1:]), x.dtype)]


def _unflatten(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs["dim"]), x.rank)
    sizes = resolve_size(attrs["sizes"], x.shape[dim])
    return [((*x.shape[:dim], *sizes, *x.shape[dim + 1:]), x.dtype)]


def _pieces(x, dim: int, sizes: list) -> list:
    return [((*x.shape[:dim], s, *x.shape[dim + 1:]), x.dtype) for s in sizes]


def _split(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank)
    size = x.shape[dim]
    if "split_sizes" in attrs:
        return _pieces(x, dim, list(attrs["split_sizes"]))
    step = int(attrs["split_size"])
    n = max(1, math.ceil(int(size) / step))
    return _pieces(x, dim, [min(step, int(size) - k * step) for k in range(n)])


def _chunk(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank)
    size = int(x.shape[dim])
    step = math.ceil(size / int(attrs["chunks"]))
    n = math.ceil(size / step) if step else 0
    return _pieces(x, dim, [min(step, size - k * step) for k in range(n)])


def _unbind(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank)
    return [((*x.shape[:dim], *x.shape[dim + 1:]), x.dtype)] * int(x.shape[dim])


_view(["view", "reshape", "_unsafe_view"], _reshape, Family.RESHAPE)
_view("unsqueeze", _unsqueeze)
_view("squeeze", _squeeze)
_view("expand", _expand)
_view("permute", _permute)
_view(["transpose", "t", "swapaxes", "swapdims"], _transpose)
_view("numpy_T", _reversed)
_view("slice", _slice)
_view("select", _select)
_view("narrow", _narrow)
_view("flatten", _flatten, Family.RESHAPE)
_view("unflatten", _unflatten, Family.RESHAPE)
_view(["split", "split_with_sizes"], _split)
_view("chunk", _chunk)
_view("unbind", _unbind)
_view(["alias", "detach"], same_as_input, Family.ALIAS)

# -- copies ---------------------------------------------------------------------------
define(["clone", "contiguous", "lift_fresh_copy"], DM, same_as_input, family=Family.COPY)
define(["copy", "roll", "flip"], DM, same_as_input, family=Family.MOVEMENT)


def _cat(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank)
    shape = list(x.shape)
    shape[dim] = sum((t.shape[dim] for t in ins[1:]), start=x.shape[dim])
    return [(tuple(shape), x.dtype)]


def _stack(ins, attrs):
    x = ins[0]
    dim = norm_dim(int(attrs.get("dim", 0)), x.rank + 1)
    return [((*x.shape[:dim], len(ins), *x.shape[dim:]), x.dtype)]


def _pad(ins, attrs):
    x = ins[0]
    pad = list(attrs["pad"])
    shape = list(x.shape)
    for k in range(len(pad) // 2):
        shape[-1 - k] = shape[-1 - k] + pad[2 * k] + pad[2 * k + 1]
    return [(tuple(shape), x.dtype)]


def _repeat(ins, attrs):
    x = ins[0]
    reps = list(attrs["repeats"])
    padded = (1,) * (len(reps) - x.rank) + tuple(x.shape)
    return [(tuple(d * r for d, r in zip(padded, reps, strict=True)), x.dtype)]


def _repeat_interleave(ins, attrs):
    x = ins[0]
    dim = attrs.get("dim")
    reps = int(attrs["repeats"])
    if dim is None:
        return [((x.numel * reps,), x.dtype)]
    d = norm_dim(int(dim), x.rank)
    shape = list(x.shape)
    shape[d] = shape[d] * reps
    return [(tuple(shape), x.dtype)]


define("cat", DM, _cat, family=Family.MOVEMENT)
define("stack", DM, _stack, family=Family.MOVEMENT)
define(["constant_pad_nd", "pad"], DM, _pad, family=Family.MOVEMENT)
define("repeat", DM, _repeat, family=Family.MOVEMENT)
define("repeat_interleave", DM, _repeat_interleave, family=Family.MOVEMENT)


# -- indexing -------------------------------------------------------------------------
def _index(ins, attrs):
    """Advanced indexing ``x[i0, i1, ...]`` where some entries are None (slices)."""
    x = ins[0]
    layout = list(attrs["indices"])
    idx = iter(ins[1:])
    shapes = [next(idx).shape if entry is not None else None for entry in layout]
    used = [k for k, s in enumerate(shapes) if s is not None]
    bshape = broadcast(*(shapes[k] for k in used))
    rest_after = list(x.shape[len(layout):])
    adjacent = used == list(range(used[0], used[-1] + 1))
    before = [x.shape[k] for k in range(used[0]) if shapes[k] is None] if adjacent else []
    middle = [x.shape[k] for k in range(used[0], len(layout)) if shapes[k] is None]
    if not adjacent:
        middle = [x.shape[k] for k in range(len(layout)) if shapes[k] is None]
    return [((*before, *bshape, *middle, *rest_after), x.dtype)]


def _index_select(ins, attrs):
    x, index = ins[0], ins[1]
    dim = norm_dim(int(attrs["dim"]), x.rank)
    shape = list(x.shape)
    shape[dim] = index.numel
    return [(tuple(shape), x.dtype)]


def _gather(ins, attrs):
    return [(ins[1].shape, ins[0].dtype)]


define("index", DM, _index, family=Family.INDEX)
define("index_select", DM, _index_select, family=Family.INDEX)
define("gather", DM, _gather, family=Family.INDEX)
define(["scatter", "scatter_add", "index_put", "index_copy", "index_add", "masked_scatter"],
       DM, same_as_input, family=Family.INDEX)


# -- creation -------------------------------------------------------------------------
def _created(shape, attrs, default: str):
    return [(tuple(shape), str(attrs.get("dtype") or default))]


def _new(ins, attrs):
    return _created(attrs["size"], attrs, ins[0].dtype)


def _like(ins, attrs):
    return _created(ins[0].shape, attrs, ins[0].dtype)


def _factory(ins, attrs):
    return _created(attrs["size"], attrs, "float32")


def _arange(ins, attrs):
    start, end, step = attrs.get("start", 0), attrs["end"], attrs.get("step", 1)
    ints = all(isinstance(v, int) for v in (start, end, step))
    return _created((max(0, math.ceil((end - start) / step)),), attrs,
                    "int64" if ints else "float32")


def _scalar_tensor(ins, attrs):
    return _created((), attrs, "float32")


def _write_only(ins, outs, attrs) -> Dim:
    return outs[0].nbytes


def _nothing(ins, outs, attrs) -> Dim:
    return 0


_CREATION = {
    _new: ["new_ones", "new_zeros", "new_full"],
    _like: ["zeros_like", "ones_like", "full_like"],
    _factory: ["zeros", "ones", "full"],
    _arange: ["arange"],
    _scalar_tensor: ["scalar_tensor"],
}
for _infer, _kinds in _CREATION.items():
    define(_kinds, DM, _infer, bytes=_write_only, family=Family.CREATION)
define("new_empty", DM, _new, bytes=_nothing, family=Family.CREATION)
define("empty_like", DM, _like, bytes=_nothing, family=Family.CREATION)
define("empty", DM, _factory, bytes=_nothing, family=Family.CREATION)
