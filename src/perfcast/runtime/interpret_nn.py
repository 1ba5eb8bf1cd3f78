"""NumPy semantics of the IR's matrix products, norms, attention, embedding and fused
kinds (``gemm``, ``swiglu``, ``rope``), on the reference formulas."""

from __future__ import annotations

import numpy as np

from perfcast.runtime.interpret_ops import Args, Impl
from perfcast.runtime.reference import gemm, layer_norm, rms_norm, rope, sdpa, silu


# -- matrix products -----------------------------------------------------------------
def _linear(args: Args):
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    out = np.matmul(args.x, np.swapaxes(w, -1, -2))
    return out + b if b is not None else out


def _addmm(args: Args):
    c, a, b = args.tensor("self", 0), args.values[-2], args.values[-1]
    return gemm(a, b, c, alpha=float(args.attr("alpha", 1)), beta=float(args.attr("beta", 1)))


def _gemm(args: Args):
    a, b = args.values[0], args.values[1]
    c = args.values[2] if len(args.values) > 2 else None
    return gemm(a, b, c, trans_b=bool(args.attr("trans_b", False)),
                alpha=float(args.attr("alpha", 1.0)), beta=float(args.attr("beta", 1.0)),
                act=str(args.attr("act", "none")))


def _matmul(args: Args):
    return np.matmul(args.values[0], args.values[1])


GEMMS: dict[str, Impl] = {
    "linear": _linear, "mm": _matmul, "bmm": _matmul, "matmul": _matmul, "addmm": _addmm,
    "baddbmm": _addmm, "gemm": _gemm,
}


# -- normalization, attention, embedding, fused kinds --------------------------------
def _eps(args: Args, x: np.ndarray) -> float:
    eps = args.attr("eps")
    return float(np.finfo(x.dtype).eps) if eps is None else float(eps)


def _n_norm_dims(args: Args) -> int:
    shape = args.attr("normalized_shape")
    return len(shape) if isinstance(shape, list | tuple) else 1


def _layer_norm(args: Args):
    x = args.x
    return layer_norm(x, args.tensor("weight", 1), args.tensor("bias", 2), _eps(args, x),
                      _n_norm_dims(args))


def _native_layer_norm(args: Args):
    x, n = args.x, _n_norm_dims(args)
    axes = tuple(range(x.ndim - n, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(np.var(x, axis=axes, keepdims=True) + x.dtype.type(_eps(args, x)))
    return [_layer_norm(args), mean, rstd]


def _rms_norm(args: Args):
    x = args.x
    return rms_norm(x, args.tensor("weight", 1), _eps(args, x), _n_norm_dims(args))


def _group_norm(args: Args):
    x, groups = args.x, int(args.attrs["num_groups"])
    grouped = x.reshape(x.shape[0], groups, -1)
    y = layer_norm(grouped, None, None, _eps(args, x)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    y = y * w.reshape(shape) if w is not None else y
    return y + b.reshape(shape) if b is not None else y


def _batch_norm_out(args: Args) -> np.ndarray:
    x = args.x
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = args.tensor("running_mean", 3).reshape(shape)
    var = args.tensor("running_var", 4).reshape(shape)
    y = (x - mean) / np.sqrt(var + x.dtype.type(_eps(args, x)))
    w, b = args.tensor("weight", 1), args.tensor("bias", 2)
    y = y * w.reshape(shape) if w is not None else y
    return y + b.reshape(shape) if b is not None else y


def _batch_norm_triple(args: Args):
    empty = np.zeros((0,), args.x.dtype)
    return [_batch_norm_out(args), empty, empty]


def _sdpa(args: Args):
    """Fused (positional) nodes align causal masks bottom-right as docs/runtime.md says;
    captured ATen nodes keep torch's top-left alignment (the same when S == T)."""
    if float(args.attr("dropout_p", 0.0)) > 0:
        raise ValueError("attention dropout is random; export the model in eval mode")
    scale = args.attr("scale")
    q, k, v = args.tensor("query", 0), args.tensor("key", 1), args.tensor("value", 2)
    mask, causal = args.tensor("attn_mask", 3), bool(args.attr("is_causal", False))
    s, t = q.shape[-2], k.shape[-2]
    if causal and args.node.arg_names is not None and s != t:
        mask, causal = np.tri(s, t, dtype=bool), False
    return sdpa(q, k, v, mask, scale=None if scale is None else float(scale), causal=causal)


def _weight_norm(args: Args):
    """``v * g / ||v||``, the norm over every dimension but ``dim`` (all of them for -1)."""
    v, g, dim = args.tensor("v", 0), args.tensor("g", 1), int(args.attr("dim", 0))
    axes = tuple(a for a in range(v.ndim) if dim == -1 or a != dim % v.ndim)
    norm = np.sqrt(np.sum(np.square(v, dtype=np.float64), axis=axes, keepdims=True))
    return (v * (g / norm)).astype(v.dtype)


def _embedding(args: Args):
    return np.take(args.tensor("weight", 0), args.tensor("indices", 1), axis=0)


def _swiglu(args: Args):
    return silu(args.values[0]) * args.values[1]


def _rope(args: Args):
    return rope(*args.values[:3])


NN: dict[str, Impl] = {
    "layer_norm": _layer_norm, "native_layer_norm": _native_layer_norm,
    "rms_norm": _rms_norm, "group_norm": _group_norm,
    "batch_norm": _batch_norm_out, "_native_batch_norm_legit_no_training": _batch_norm_triple,
    "scaled_dot_product_attention": _sdpa, "embedding": _embedding, "swiglu": _swiglu,
    "rope": _rope, "_weight_norm": _weight_norm,
}
