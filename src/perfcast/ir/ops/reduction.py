"""Reductions, softmax, scans and pooling (windowed reductions).

Sums and means count 1 FLOP per input element (mean adds 1 per output for the
divide); variance 3 per input element; softmax 5 per element (max, subtract, exp,
sum, divide), log-softmax 5. Pooling counts one comparison or add per window
element per output, plus the divide for averages.
"""

from __future__ import annotations

import math

from perfcast.ir.ops._util import as_list, dims_attr
from perfcast.ir.registry import Category, Family, define
from perfcast.ir.tensor import Dim, numel


def _reduced_shape(ins, attrs):
    x = ins[0]
    dims = dims_attr(attrs, "dim", x.rank)
    keep = bool(attrs.get("keepdim", False))
    return tuple(1 if k in dims else d for k, d in enumerate(x.shape) if keep or k not in dims)


def _accumulator_dtype(ins, attrs) -> str:
    """Sums of bools and integers accumulate in int64, as in torch."""
    if attrs.get("dtype"):
        return str(attrs["dtype"])
    return "int64" if ins[0].dtype in {"bool", "int8", "uint8", "int16", "int32"} else ins[0].dtype


def _reduce_infer(ins, attrs):
    return [(_reduced_shape(ins, attrs), _accumulator_dtype(ins, attrs))]


def _reduce_pair_infer(ins, attrs):
    shape = _reduced_shape(ins, attrs)
    return [(shape, ins[0].dtype), (shape, "int64")]


def _index_infer(ins, attrs):
    return [(_reduced_shape(ins, attrs), "int64")]


def _input_flops(per_in: int, per_out: int = 0):
    def flops(ins, outs, attrs) -> Dim:
        return per_in * ins[0].numel + per_out * outs[0].numel

    return flops


define(["sum", "amax", "amin", "prod", "any", "all"], Category.REDUCTION,
       _reduce_infer, _input_flops(1))
define("mean", Category.REDUCTION, _reduce_infer, _input_flops(1, 1))
define(["max", "min"], Category.REDUCTION, _reduce_pair_infer, _input_flops(1))
define(["argmax", "argmin"], Category.REDUCTION, _index_infer, _input_flops(1))
define(["var", "std"], Category.REDUCTION, _reduce_infer, _input_flops(3, 1))
define("logsumexp", Category.REDUCTION, _reduce_infer, _input_flops(4, 1))
define("linalg_vector_norm", Category.REDUCTION, _reduce_infer, _input_flops(2, 1))


def _same_infer(ins, attrs):
    return [(ins[0].shape, str(attrs.get("dtype") or ins[0].dtype))]


define(["softmax", "_softmax", "log_softmax", "_log_softmax"], Category.REDUCTION,
       _same_infer, _input_flops(5))
def _cumsum_infer(ins, attrs):
    return [(ins[0].shape, _accumulator_dtype(ins, attrs))]


define("cumsum", Category.REDUCTION, _cumsum_infer, _input_flops(1))


def _diff_infer(ins, attrs):
    x = ins[0]
    dim = int(attrs.get("dim", -1)) % x.rank
    n = int(attrs.get("n", 1))
    extra = sum(t.shape[dim] for t in ins[1:])
    shape = list(x.shape)
    shape[dim] = shape[dim] + extra - n
    return [(tuple(shape), x.dtype)]


define("diff", Category.REDUCTION, _diff_infer, lambda ins, outs, attrs: outs[0].numel)


def _topk_infer(ins, attrs):
    x = ins[0]
    dim = int(attrs.get("dim", -1)) % x.rank
    shape = list(x.shape)
    shape[dim] = int(attrs["k"])
    return [(tuple(shape), x.dtype), (tuple(shape), "int64")]


def _topk_flops(ins, outs, attrs) -> Dim:
    return ins[0].numel * max(1, math.ceil(math.log2(max(int(attrs["k"]), 2))))


define("topk", Category.REDUCTION, _topk_infer, _topk_flops)


def _sort_infer(ins, attrs):
    return [(ins[0].shape, ins[0].dtype), (ins[0].shape, "int64")]


def _sort_flops(ins, outs, attrs) -> Dim:
    x = ins[0]
    n = x.shape[int(attrs.get("dim", -1)) % x.rank]
    return x.numel * max(1, math.ceil(math.log2(max(int(n), 2))))


define("sort", Category.REDUCTION, _sort_infer, _sort_flops)


# -- pooling ------------------------------------------------------------------------
def _pool_params(ins, attrs, n_sp: int):
    ks = as_list(attrs["kernel_size"], n_sp)
    stride = as_list(attrs.get("stride") or ks, n_sp)
    pad = as_list(attrs.get("padding", 0), n_sp)
    dil = as_list(attrs.get("dilation", 1), n_sp)
    return ks, stride, pad, dil


def _pool_len(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_infer(n_sp: int, with_indices: bool):
    def infer(ins, attrs):
        x = ins[0]
        ks, stride, pad, dil = _pool_params(ins, attrs, n_sp)
        ceil = bool(attrs.get("ceil_mode", False))
        sp = [_pool_len(s, k, st, p, d, ceil) for s, k, st, p, d in
              zip(x.shape[-n_sp:], ks, stride, pad, dil, strict=True)]
        shape = (*x.shape[:-n_sp], *sp)
        return [(shape, x.dtype)] + ([(shape, "int64")] if with_indices else [])

    return infer


def _pool_flops(n_sp: int, per_out: int):
    def flops(ins, outs, attrs) -> Dim:
        window = numel(as_list(attrs["kernel_size"], n_sp))
        return outs[0].numel * (window + per_out)

    return flops


for _n in (1, 2, 3):
    define(f"max_pool{_n}d", Category.REDUCTION, _pool_infer(_n, False), _pool_flops(_n, 0),
           family=Family.POOLING)
    define(f"max_pool{_n}d_with_indices", Category.REDUCTION, _pool_infer(_n, True),
           _pool_flops(_n, 0), family=Family.POOLING)
    define(f"avg_pool{_n}d", Category.REDUCTION, _pool_infer(_n, False), _pool_flops(_n, 1),
           family=Family.POOLING)


def _adaptive_infer(n_sp: int, with_indices: bool):
    def infer(ins, attrs):
        x = ins[0]
        out_sp = as_list(attrs["output_size"], n_sp)
        shape = (*x.shape[:-n_sp], *out_sp)
        return [(shape, x.dtype)] + ([(shape, "int64")] if with_indices else [])

    return infer


def _adaptive_flops(n_sp: int, per_out: int):
    def flops(ins, outs, attrs) -> Dim:
        x, out = ins[0], outs[0]
        sizes = zip(x.shape[-n_sp:], out.shape[-n_sp:], strict=True)
        window = numel([-(-i // o) for i, o in sizes])
        return out.numel * (window + per_out)

    return flops


for _n in (1, 2, 3):
    define(f"adaptive_avg_pool{_n}d", Category.REDUCTION, _adaptive_infer(_n, False),
           _adaptive_flops(_n, 1), family=Family.POOLING)
    define(f"adaptive_max_pool{_n}d", Category.REDUCTION, _adaptive_infer(_n, True),
           _adaptive_flops(_n, 0), family=Family.POOLING)
define("_adaptive_avg_pool2d", Category.REDUCTION, _adaptive_infer(2, False), _adaptive_flops(2, 1),
       family=Family.POOLING)


def _histc_infer(ins, attrs):
    return [((int(attrs.get("bins", 100)),), ins[0].dtype)]


define("histc", Category.REDUCTION, _histc_infer, _input_flops(1))
