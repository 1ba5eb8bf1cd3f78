"""The NumPy backend: the reference for every runtime step kind.

Each step reads its inputs and writes its outputs through NumPy views into one arena
(a byte array the size the planner asked for), the program's constants and the call's
inputs, addressed only by buffer offsets and the step's attrs, as a C kernel would be.
It is the reference the C backend is checked against, not a fast path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from perfcast.runtime.program import DTYPES, Buf, Program

Kernel = Callable[[list[np.ndarray], list[np.ndarray], Mapping[str, Any]], None]


class NumpyExecutor:
    """Runs a :class:`Program` with NumPy; ``run(inputs)`` returns fresh output arrays."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.arena = np.zeros(program.arena_bytes, dtype=np.uint8)
        self._consts = [np.ascontiguousarray(c).reshape(-1) for c in program.consts]
        bufs = program.bufs
        self._plan = [(KERNELS[s.kind], [self._flat(bufs[i]) for i in s.inputs],
                       [self._flat(bufs[o])[:bufs[o].numel] for o in s.outputs], s.attrs)
                      for s in program.steps]
        self._outputs = [(self._flat(bufs[o]), bufs[o]) for o in program.outputs]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        flats = [np.ascontiguousarray(x).reshape(-1) for x in inputs]
        with np.errstate(all="ignore"):
            for kernel, ins, outs, attrs in self._plan:
                kernel([flats[x] if isinstance(x, int) else x for x in ins], outs, attrs)
        return [(flats[f] if isinstance(f, int) else f)[:b.numel].reshape(b.shape).copy()
                for f, b in self._outputs]

    def run_timed(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
        """:meth:`run` that also returns each step's wall time in seconds."""
        flats = [np.ascontiguousarray(x).reshape(-1) for x in inputs]
        spent = []
        with np.errstate(all="ignore"):
            for kernel, ins, outs, attrs in self._plan:
                t = time.perf_counter()
                kernel([flats[x] if isinstance(x, int) else x for x in ins], outs, attrs)
                spent.append(time.perf_counter() - t)
        return [(flats[f] if isinstance(f, int) else f)[:b.numel].reshape(b.shape).copy()
                for f, b in self._outputs], spent

    def _flat(self, buf: Buf) -> np.ndarray | int:
        """A 1-D array of ``buf``'s dtype from its element 0 (an input: its position)."""
        dtype = DTYPES[buf.dtype]
        if buf.storage == "const":
            return self._consts[buf.index]
        if buf.storage == "input":
            return buf.index
        n = (self.arena.size - buf.offset) // dtype.itemsize
        return self.arena[buf.offset:buf.offset + n * dtype.itemsize].view(dtype)


def _strided(flat: np.ndarray, shape: Sequence[int], strides: Sequence[int]) -> np.ndarray:
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, tuple(int(d) for d in shape),
                                           tuple(int(s) * item for s in strides))


def _dense(flat: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return flat[:n].reshape(tuple(int(d) for d in shape))


# -- elementwise tables -------------------------------------------------------------------
def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0)))).astype(x.dtype)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x * x * x)
    return 0.5 * x * (1.0 + np.tanh(inner))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)


UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0), "gelu": _gelu, "gelu_tanh": _gelu_tanh,
    "silu": lambda x: x * _sigmoid(x), "sigmoid": _sigmoid, "tanh": np.tanh, "exp": np.exp,
    "log": np.log, "neg": np.negative, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
    "abs": np.abs, "cos": np.cos, "sin": np.sin, "square": np.square,
    "reciprocal": lambda x: 1 / x, "erf": special.erf, "not": np.logical_not,
}
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal, "ne": np.not_equal,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "and": np.logical_and, "or": np.logical_or,
}
SCALAR: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "add": lambda x, v: x + v, "mul": lambda x, v: x * v, "sub": lambda x, v: x - v,
    "rsub": lambda x, v: v - x, "div": lambda x, v: x / v, "rdiv": lambda x, v: v / x,
    "pow": lambda x, v: x ** v, "maximum": np.maximum, "minimum": np.minimum,
}
ACT = {"none": lambda x: x, "relu": UNARY["relu"], "gelu": _gelu, "gelu_tanh": _gelu_tanh,
       "silu": UNARY["silu"]}


def _value(x: np.ndarray, value: float) -> Any:
    """The scalar in ``x``'s type (float32 math stays float32)."""
    return x.dtype.type(value) if x.dtype != np.bool_ else value


# -- kernels ----------------------------------------------------------------------------
def k_gemm(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    batch, m, n, k = at["batch"], at["m"], at["n"], at["k"]
    a = _strided(ins[0], (batch, m, k), (at["a_batch_stride"], k, 1))
    if at["trans_b"]:
        b = _strided(ins[1], (batch, n, k), (at["b_batch_stride"], k, 1)).transpose(0, 2, 1)
    else:
        b = _strided(ins[1], (batch, k, n), (at["b_batch_stride"], n, 1))
    acc = np.matmul(a, b)
    if at["alpha"] != 1.0:
        acc *= np.float32(at["alpha"])
    if at["c_mode"] == "row":
        acc += np.float32(at["beta"]) * ins[2][:n]
    elif at["c_mode"] == "full":
        acc += np.float32(at["beta"]) * _dense(ins[2], (batch, m, n))
    _dense(outs[0], (batch, m, n))[...] = ACT[at["act"]](acc)


def k_binary(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    shape = at["shape"]
    a = _strided(ins[0], shape, at["a_strides"])
    b = _strided(ins[1], shape, at["b_strides"])
    _dense(outs[0], shape)[...] = BINARY[at["op"]](a, b)


def k_scalar(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    x = ins[0][:outs[0].size]
    outs[0][...] = SCALAR[at["op"]](x, _value(x, at["value"]))


def k_unary(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    outs[0][...] = UNARY[at["op"]](ins[0][:outs[0].size])


def k_where(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    shape = at["shape"]
    cond = _strided(ins[0], shape, at["cond_strides"])
    a = _strided(ins[1], shape, at["a_strides"])
    b = _strided(ins[2], shape, at["b_strides"])
    _dense(outs[0], shape)[...] = np.where(cond, a, b)


def k_copy(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    shape = at["shape"]
    src = _strided(ins[0], shape, at["strides"])
    dst = outs[0][int(at["out_offset_elems"]):]
    if at.get("out_strides") is not None:
        np.lib.stride_tricks.as_strided(dst, tuple(shape),
                                        tuple(s * dst.itemsize for s in at["out_strides"]))[
            ...] = src
    else:
        _dense(dst, shape)[...] = src


def k_softmax(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    x = _dense(ins[0], (at["rows"], at["cols"]))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    _dense(outs[0], (at["rows"], at["cols"]))[...] = e / e.sum(axis=1, keepdims=True)


def k_layer_norm(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    rows, cols = at["rows"], at["cols"]
    x = _dense(ins[0], (rows, cols)).astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    y = (x - mean) / np.sqrt(var + at["eps"]) * ins[1][:cols] + ins[2][:cols]
    _dense(outs[0], (rows, cols))[...] = y


def k_rms_norm(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    rows, cols = at["rows"], at["cols"]
    x = _dense(ins[0], (rows, cols)).astype(np.float64)
    y = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + at["eps"]) * ins[1][:cols]
    _dense(outs[0], (rows, cols))[...] = y


def k_reduce(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    shape = (at["outer"], at["inner_len"], at["inner"])
    x = _dense(ins[0], shape)
    fn = {"sum": np.sum, "mean": np.mean, "max": np.max}[at["op"]]
    _dense(outs[0], (shape[0], shape[2]))[...] = fn(x, axis=1)


def k_cumsum(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    shape = (at["outer"], at["inner_len"], at["inner"])
    x = _dense(ins[0], shape)
    acc = np.float64 if x.dtype == np.float32 else x.dtype  # as ATen on the CPU
    _dense(outs[0], shape)[...] = np.cumsum(x, axis=1, dtype=acc)


def k_gather(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    outer, n, m, inner = at["outer"], at["len"], at["m"], at["inner"]
    idx = _dense(ins[1], (outer, m, inner))
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise IndexError(f"gather index {int(idx[bad][0])} out of range [0, {n})")
    _dense(outs[0], (outer, m, inner))[...] = np.take_along_axis(
        _dense(ins[0], (outer, n, inner)), idx, axis=1)


def k_embedding(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    n, dim = at["n"], at["dim"]
    vocab = ins[0].size // dim
    idx = ins[1][:n]
    bad = (idx < 0) | (idx >= vocab)
    if bad.any():
        raise IndexError(f"embedding index {int(idx[bad][0])} out of range [0, {vocab})")
    _dense(outs[0], (n, dim))[...] = _dense(ins[0], (vocab, dim))[idx]


def k_attention(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    b, hq, hkv, s, t, d = (at[x] for x in ("b", "hq", "hkv", "s", "t", "d"))
    q = _strided(ins[0], (b, hq, s, d), at["q_strides"])
    k = _strided(ins[1], (b, hkv, t, d), at["k_strides"])
    v = _strided(ins[2], (b, hkv, t, d), at["v_strides"])
    group = hq // hkv
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scores = np.matmul(q, k.transpose(0, 1, 3, 2)) * np.float32(at["scale"])
    keep = np.ones((b, hq, s, t), dtype=bool)
    if at["causal"]:
        keep &= np.tril(np.ones((s, t), dtype=bool), k=t - s)
    if at["mask_kind"] != "none":
        mask = _strided(ins[3], (b, hq, s, t), at["mask_strides"])
        if at["mask_kind"] == "bool":
            keep &= mask
        else:
            scores = scores + mask
    scores = np.where(keep, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.where(np.isfinite(top), np.exp(scores - np.where(np.isfinite(top), top, 0)), 0)
    total = e.sum(axis=-1, keepdims=True)
    probs = np.divide(e, total, out=np.zeros_like(e), where=total > 0)  # no key kept: zeros
    out = np.matmul(probs, v)
    if at.get("out_strides") is not None:
        _strided(outs[0], (b, hq, s, d), at["out_strides"])[...] = out
    else:
        _dense(outs[0], (b, hq, s, d))[...] = out


def k_rope(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    rows, d, cs = at["rows"], at["d"], at["cs_rows"]
    x = _dense(ins[0], (rows, d))
    pick = np.arange(rows) % cs
    cos, sin = _dense(ins[1], (cs, d))[pick], _dense(ins[2], (cs, d))[pick]
    half = d // 2
    rotated = np.concatenate([-x[:, half:], x[:, :half]], axis=1)
    _dense(outs[0], (rows, d))[...] = x * cos + rotated * sin


def k_swiglu(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    n = at["n"]
    gate, up = ins[0][:n], ins[1][:n]
    outs[0][:n] = gate * _sigmoid(gate) * up


def k_cast(ins: list[np.ndarray], outs: list[np.ndarray], at: Mapping[str, Any]) -> None:
    outs[0][...] = ins[0][:outs[0].size].astype(DTYPES[at["to"]])


KERNELS: dict[str, Kernel] = {
    "gemm": k_gemm, "binary": k_binary, "scalar": k_scalar, "unary": k_unary,
    "where": k_where, "copy": k_copy,
    "softmax": k_softmax, "layer_norm": k_layer_norm, "rms_norm": k_rms_norm,
    "reduce": k_reduce, "cumsum": k_cumsum, "gather": k_gather,
    "embedding": k_embedding,
    "attention": k_attention, "rope": k_rope, "swiglu": k_swiglu, "cast": k_cast,
}
