"""Each C kernel called on NumPy arrays, through the backends' own path.

The functions (``gemm``, ``binary``, ``attention``, ...) build the attrs the lowering
would, wrap the arrays as buffers, and go through :func:`ckernels.step_call` and
:func:`ckernels.bind`; tests and benchmarks use them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perfcast.runtime.ckernels import (
    DTYPE_NAME,
    NP_DTYPE,
    Ptr,
    bind,
    check,
    pack_b,
    step_call,
)
from perfcast.runtime.program import Buf, Step, contiguous_strides


def _buf(name: str, arr: np.ndarray) -> Buf:
    item = arr.dtype.itemsize
    strides = tuple(s // item for s in arr.strides)
    return Buf(name, tuple(arr.shape), DTYPE_NAME[arr.dtype], "input", 0, 0, strides)


def prepare_step(kind: str, attrs: Mapping[str, Any], inputs: Sequence[np.ndarray | None],
                 out_shape: Sequence[int], out_dtype: str = "float32",
                 out: np.ndarray | None = None, packed: bool = False) -> tuple[Any, np.ndarray]:
    """A no-argument callable running one step on these arrays, and its output array.

    The arrays are bound by address: keep them alive and unchanged in shape while calling.
    ``packed``: a gemm whose second input is already :func:`pack_b`'s output.
    """
    arrays = {f"in{i}": x for i, x in enumerate(inputs) if x is not None}
    for name, x in arrays.items():
        if x.dtype not in DTYPE_NAME:
            raise TypeError(f"{name}: dtype {x.dtype} is not float32/int64/bool")
    if out is None:
        out = np.empty(tuple(int(d) for d in out_shape), dtype=NP_DTYPE[out_dtype])
    bufs = {n: _buf(n, x) for n, x in arrays.items()}
    bufs["out"] = Buf("out", out.shape, out_dtype, "arena", 0, -1, contiguous_strides(out.shape))
    step = Step(kind, tuple(arrays), ("out",), dict(attrs))
    call = step_call(step, bufs, {"out": "in1"} if packed else None)
    addr = {n: x.ctypes.data for n, x in arrays.items()}
    addr["out"] = out.ctypes.data

    def resolve(p: Ptr) -> int:
        return addr[p.buf] + p.elems * NP_DTYPE[bufs[p.buf].dtype].itemsize

    fn, args, keep = bind(call, resolve)
    what = f"{kind} ({call.func})"

    def run() -> None:
        rc = fn(*args)
        if rc != 0:
            check(rc, what)

    run.keep = (keep, arrays, out)  # type: ignore[attr-defined]
    return run, out


def run_step(kind: str, attrs: Mapping[str, Any], inputs: Sequence[np.ndarray | None],
             out_shape: Sequence[int], out_dtype: str = "float32") -> np.ndarray:
    """Execute one step on NumPy arrays (None inputs are skipped) and return its output."""
    run, out = prepare_step(kind, attrs, inputs, out_shape, out_dtype)
    run()
    return out


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, *, trans_b: bool = False,
         alpha: float = 1.0, beta: float = 1.0, act: str = "none",
         prepacked: bool = False) -> np.ndarray:
    """act(alpha * a @ op(b) + beta * c); b shared [K, N] or batched like a; c a row bias
    [N] or the full output shape. ``prepacked`` packs a shared b first and runs the
    packed-weights kernel (what the backend does for constant weights)."""
    a = np.ascontiguousarray(_f32(a))
    b = np.ascontiguousarray(_f32(b))
    *lead, m, k = a.shape
    n = b.shape[-2] if trans_b else b.shape[-1]
    batch = math.prod(lead)
    shared = b.ndim == 2
    attrs = {"batch": batch, "m": m, "n": n, "k": k, "trans_b": trans_b, "alpha": alpha,
             "beta": beta, "act": act, "a_batch_stride": m * k,
             "b_batch_stride": 0 if shared else b.shape[-1] * b.shape[-2], "c_mode": "none"}
    if c is not None:
        c = _f32(c)
        if c.ndim == 1 or (c.ndim >= 1 and math.prod(c.shape[:-1]) == 1 and c.shape[-1] == n
                           and c.size == n):
            c = np.ascontiguousarray(c.reshape(n))
            attrs["c_mode"] = "row"
        else:
            c = np.ascontiguousarray(np.broadcast_to(c, (*lead, m, n)))
            attrs["c_mode"] = "full"
    if prepacked and shared:
        run, out = prepare_step("gemm", attrs, [a, pack_b(b, n, k, trans_b), c], (*lead, m, n),
                                packed=True)
        run()
        return out
    return run_step("gemm", attrs, [a, b, c], (*lead, m, n))


def broadcast_strides(x: np.ndarray, shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of x viewed as ``shape`` (0 on broadcast dimensions)."""
    item = x.dtype.itemsize
    st = [s // item for s in x.strides]
    pad = len(shape) - x.ndim
    out = []
    for i, d in enumerate(shape):
        j = i - pad
        if j < 0 or (x.shape[j] == 1 and d != 1):
            out.append(0)
        else:
            out.append(st[j])
    return tuple(out)


_CMP = {"eq", "ne", "lt", "le", "gt", "ge"}


def binary(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if op in _CMP or (op in ("and", "or") and a.dtype != np.int64):
        out_dtype = "bool"
    elif op == "div" and a.dtype == np.int64:
        out_dtype = "float32"
    else:
        out_dtype = DTYPE_NAME[a.dtype]
    attrs = {"op": op, "rank": len(shape), "shape": shape,
             "a_strides": broadcast_strides(a, shape), "b_strides": broadcast_strides(b, shape)}
    return run_step("binary", attrs, [a, b], shape, out_dtype)


def scalar(op: str, x: np.ndarray, value: float) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return run_step("scalar", {"op": op, "value": value}, [x], x.shape, DTYPE_NAME[x.dtype])


def unary(op: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return run_step("unary", {"op": op}, [x], x.shape, DTYPE_NAME[x.dtype])


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    gate, up = np.ascontiguousarray(_f32(gate)), np.ascontiguousarray(_f32(up))
    return run_step("swiglu", {"n": gate.size}, [gate, up], gate.shape)


def where(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cond, a, b = np.asarray(cond, dtype=np.bool_), np.asarray(a), np.asarray(b)
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    attrs = {"rank": len(shape), "shape": shape,
             "cond_strides": broadcast_strides(cond, shape),
             "a_strides": broadcast_strides(a, shape), "b_strides": broadcast_strides(b, shape)}
    return run_step("where", attrs, [cond, a, b], shape, DTYPE_NAME[a.dtype])


def copy(x: np.ndarray) -> np.ndarray:
    """A contiguous copy of any strided view."""
    item = x.dtype.itemsize
    attrs = {"rank": x.ndim, "shape": x.shape, "strides": tuple(s // item for s in x.strides),
             "out_offset_elems": 0}
    return run_step("copy", attrs, [x], x.shape, DTYPE_NAME[x.dtype])


def cast(x: np.ndarray, to: str) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return run_step("cast", {"to": to}, [x], x.shape, to)


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(_f32(x))
    cols = x.shape[-1]
    return run_step("softmax", {"rows": x.size // max(cols, 1), "cols": cols}, [x], x.shape)


def layer_norm(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None,
               eps: float = 1e-5) -> np.ndarray:
    x = np.ascontiguousarray(_f32(x))
    cols = x.shape[-1]
    attrs = {"rows": x.size // max(cols, 1), "cols": cols, "eps": eps,
             "normalized_shape": (cols,)}
    if w is None and b is not None:
        w = np.ones(cols, np.float32)
    return run_step("layer_norm", attrs, [x, None if w is None else _f32(w),
                                          None if b is None else _f32(b)], x.shape)


def rms_norm(x: np.ndarray, w: np.ndarray | None, eps: float = 1e-6) -> np.ndarray:
    x = np.ascontiguousarray(_f32(x))
    cols = x.shape[-1]
    return run_step("rms_norm", {"rows": x.size // max(cols, 1), "cols": cols, "eps": eps},
                    [x, None if w is None else _f32(w)], x.shape)


def reduce(op: str, x: np.ndarray, axis: int) -> np.ndarray:
    """Reduce one axis (keepdims=False)."""
    x = np.ascontiguousarray(_f32(x))
    axis = axis % x.ndim
    outer = math.prod(x.shape[:axis])
    inner = math.prod(x.shape[axis + 1:])
    attrs = {"op": op, "outer": outer, "inner_len": x.shape[axis], "inner": inner}
    return run_step("reduce", attrs, [x], x.shape[:axis] + x.shape[axis + 1:])


def embedding(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    table = np.ascontiguousarray(_f32(table))
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    return run_step("embedding", {"n": idx.size, "dim": table.shape[1]}, [table, idx],
                    (*idx.shape, table.shape[1]))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, *,
              scale: float | None = None, causal: bool = False) -> np.ndarray:
    """SDPA on [B, H, S, D] views (any strides with a contiguous last dimension)."""
    b, hq, s, d = q.shape
    hkv, t = k.shape[1], k.shape[2]
    attrs: dict[str, Any] = {"b": b, "hq": hq, "hkv": hkv, "s": s, "t": t, "d": d,
                             "scale": 1.0 / math.sqrt(d) if scale is None else scale,
                             "causal": causal, "mask_kind": "none", "mask_strides": (0, 0, 0, 0)}
    inputs: list[np.ndarray] = [q, k, v]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            mask = _f32(mask)
        attrs["mask_kind"] = "bool" if mask.dtype == np.bool_ else "add"
        attrs["mask_strides"] = broadcast_strides(mask, (b, hq, s, t))
        inputs.append(mask)
    return run_step("attention", attrs, inputs, (b, hq, s, d))


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x [..., S, D]; cos/sin [S, D] (any leading ones) shared across the leading dims."""
    x = np.ascontiguousarray(_f32(x))
    d = x.shape[-1]
    cos = np.ascontiguousarray(_f32(cos)).reshape(-1, d)
    sin = np.ascontiguousarray(_f32(sin)).reshape(-1, d)
    attrs = {"rows": x.size // d, "d": d, "cs_rows": cos.shape[0]}
    return run_step("rope", attrs, [x, cos, sin], x.shape)
