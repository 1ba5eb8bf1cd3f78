"""NumPy semantics of the IR's data-movement kinds: views, copies, concatenation,
indexing and tensor creation (see :mod:`perfcast.runtime.interpret_ops` for ``Args``)."""

from __future__ import annotations

import math

import numpy as np

from perfcast.ir.ops._util import norm_dim
from perfcast.ir.ops.movement import resolve_size
from perfcast.runtime.interpret_ops import Args, Impl


def _dim(args: Args, key: str = "dim", default: int = 0, rank: int | None = None) -> int:
    return norm_dim(int(args.attr(key, default)), args.x.ndim if rank is None else rank)


def _reshape(args: Args):
    x = args.x
    size = args.attr("size") or args.attr("shape") or []
    return np.reshape(x, tuple(int(d) for d in resolve_size(size, x.size)))


def _unsqueeze(args: Args):
    return np.expand_dims(args.x, _dim(args, rank=args.x.ndim + 1))


def _squeeze(args: Args):
    x = args.x
    dims = args.attr("dim")
    if dims is None:
        return np.squeeze(x)
    dims = [dims] if isinstance(dims, int) else dims
    drop = tuple(d for d in {norm_dim(int(d), x.ndim) for d in dims} if x.shape[d] == 1)
    return np.squeeze(x, axis=drop) if drop else x


def _expand(args: Args):
    x = args.x
    size = [int(s) for s in args.attrs["size"]]
    lead = len(size) - x.ndim
    shape = [x.shape[k - lead] if s == -1 else s for k, s in enumerate(size)]
    return np.broadcast_to(x, shape)


def _permute(args: Args):
    return np.transpose(args.x, [norm_dim(int(d), args.x.ndim) for d in args.attrs["dims"]])


def _numpy_t(args: Args):
    return np.transpose(args.x)  # Tensor.T: every dimension reversed


def _transpose(args: Args):
    x = args.x
    if x.ndim < 2:
        return x
    return np.swapaxes(x, _dim(args, "dim0", 0), _dim(args, "dim1", 1))


def _slice(args: Args):
    x = args.x
    dim = _dim(args)
    index = [slice(None)] * x.ndim
    index[dim] = slice(args.attr("start"), args.attr("end"), int(args.attr("step", 1)))
    return x[tuple(index)]


def _select(args: Args):
    return np.take(args.x, int(args.attrs["index"]), axis=_dim(args))


def _narrow(args: Args):
    x, dim = args.x, _dim(args)
    start = int(args.operand("start", 1))
    start = start + x.shape[dim] if start < 0 else start
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, start + int(args.attrs["length"]))
    return x[tuple(index)]


def _flatten(args: Args):
    x = args.x
    if x.ndim == 0:
        return x.reshape(1)
    a, b = _dim(args, "start_dim", 0), _dim(args, "end_dim", -1)
    return x.reshape(*x.shape[:a], -1, *x.shape[b + 1:])


def _unflatten(args: Args):
    x, dim = args.x, _dim(args)
    sizes = tuple(int(d) for d in resolve_size(args.attrs["sizes"], x.shape[dim]))
    return x.reshape(*x.shape[:dim], *sizes, *x.shape[dim + 1:])


def _split_at(x: np.ndarray, dim: int, sizes: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum(sizes)[:-1]
    return list(np.split(x, bounds, axis=dim))


def _split(args: Args):
    x, dim = args.x, _dim(args)
    if args.attr("split_sizes") is not None:
        return _split_at(x, dim, [int(s) for s in args.attrs["split_sizes"]])
    step, size = int(args.attrs["split_size"]), x.shape[dim]
    n = max(1, math.ceil(size / step))
    return _split_at(x, dim, [min(step, size - k * step) for k in range(n)])


def _chunk(args: Args):
    x, dim = args.x, _dim(args)
    size = x.shape[dim]
    step = math.ceil(size / int(args.attrs["chunks"]))
    n = math.ceil(size / step) if step else 0
    return _split_at(x, dim, [min(step, size - k * step) for k in range(n)])


def _unbind(args: Args):
    x, dim = args.x, _dim(args)
    return [np.take(x, k, axis=dim) for k in range(x.shape[dim])]


def _cat(args: Args):
    parts = [v for v in args.values if v.size or v.ndim > 1]  # torch skips empty 1-D tensors
    return np.concatenate(parts, axis=norm_dim(int(args.attr("dim", 0)), parts[0].ndim))


def _stack(args: Args):
    return np.stack(args.values, axis=norm_dim(int(args.attr("dim", 0)), args.x.ndim + 1))


def _pad(args: Args):
    x, pad = args.x, [int(p) for p in args.attrs["pad"]]
    mode = args.attr("mode", "constant")
    if mode != "constant":
        raise ValueError(f"pad mode {mode!r} is not supported; allowed: constant")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError(f"negative padding {pad} is not supported")
    return np.pad(x, widths, constant_values=float(args.attr("value", 0.0)))


def _repeat(args: Args):
    return np.tile(args.x, [int(r) for r in args.attrs["repeats"]])


def _repeat_interleave(args: Args):
    dim = args.attr("dim")
    reps = int(args.attrs["repeats"])
    return np.repeat(args.x, reps, axis=None if dim is None else _dim(args))


def _roll(args: Args):
    dims = args.attr("dims")
    shifts = args.attrs["shifts"]
    if not dims:
        return np.roll(args.x.reshape(-1), shifts).reshape(args.x.shape)
    return np.roll(args.x, shifts, axis=tuple(dims))


def _index(args: Args):
    tensors = iter(args.values[1:])
    key = tuple(next(tensors) if entry == "tensor" else slice(None)
                for entry in args.attrs["indices"])
    return args.x[key]


def _index_select(args: Args):
    return np.take(args.x, args.tensor("index", 1).reshape(-1), axis=_dim(args))


def _gather(args: Args):
    return np.take_along_axis(args.x, args.tensor("index", 1), axis=_dim(args))


# -- creation ------------------------------------------------------------------------
def _copy(args: Args):
    return np.broadcast_to(args.tensor("src", 1), args.x.shape)


def _fill(args: Args):
    return np.full(args.x.shape, args.operand("value", 1), dtype=args.x.dtype)


def _new(value: float) -> Impl:
    def impl(args: Args):
        return np.full(tuple(int(d) for d in args.attrs["size"]), args.attr("fill_value", value))

    return impl


def _like(value: float) -> Impl:
    return lambda args: np.full(args.x.shape, args.attr("fill_value", value))


def _factory(value: float) -> Impl:
    def impl(args: Args):
        return np.full(tuple(int(d) for d in args.attrs["size"]), args.attr("fill_value", value))

    return impl


def _arange(args: Args):
    return np.arange(args.attr("start", 0), args.attrs["end"], args.attr("step", 1))


def _scalar_tensor(args: Args):
    return np.asarray(args.attrs["s"])


MOVEMENT: dict[str, Impl] = {
    "view": _reshape, "reshape": _reshape, "_unsafe_view": _reshape,
    "unsqueeze": _unsqueeze, "squeeze": _squeeze, "expand": _expand, "permute": _permute,
    "transpose": _transpose, "t": _transpose, "numpy_T": _numpy_t, "slice": _slice,
    "select": _select, "narrow": _narrow, "flatten": _flatten, "unflatten": _unflatten,
    "split": _split,
    "split_with_sizes": _split, "chunk": _chunk, "unbind": _unbind, "copy": _copy,
    "roll": _roll, "flip": lambda a: np.flip(a.x, axis=tuple(a.attrs["dims"])), "cat": _cat,
    "stack": _stack, "constant_pad_nd": _pad, "pad": _pad, "repeat": _repeat,
    "repeat_interleave": _repeat_interleave, "index": _index, "index_select": _index_select,
    "gather": _gather, "fill": _fill,
    "new_ones": _new(1), "new_zeros": _new(0), "new_full": _new(0), "new_empty": _new(0),
    "zeros_like": _like(0), "ones_like": _like(1), "full_like": _like(0),
    "empty_like": _like(0), "zeros": _factory(0), "ones": _factory(1), "full": _factory(0),
    "empty": _factory(0), "arange": _arange, "scalar_tensor": _scalar_tensor,
}
