"""ctypes bindings of the C kernels: one call description per runtime step kind.

:func:`step_call` turns a :class:`~perfcast.runtime.program.Step` and its buffers into a
:class:`Call` (the C function and its typed arguments). The per-step backend
(``backend_c``) resolves those arguments to pointers and calls through ctypes; the code
generator (``codegen``) prints the very same arguments as C literals, so both paths run
identical kernels with identical arguments.

:mod:`perfcast.runtime.ckernel_arrays` calls each kernel on NumPy arrays through this
same path (tests and benchmarks).
"""

from __future__ import annotations

import ctypes
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfcast.runtime import cbuild
from perfcast.runtime.program import Buf, Step

HEADER = cbuild.CSRC / "perfcast_kernels.h"


def _parse_enums() -> dict[str, dict[str, int]]:
    """``enum pc_x { PC_..._NAME = v, ... }`` blocks of the header, by enum name."""
    text = HEADER.read_text()
    out: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"enum\s+(\w+)\s*\{(.*?)\};", text, re.S):
        values = {}
        for name, val in re.findall(r"(\w+)\s*=\s*(-?\d+)", m.group(2)):
            values[name] = int(val)
        out[m.group(1)] = values
    return out


_ENUMS = _parse_enums()


def _table(enum: str, prefix: str) -> dict[str, int]:
    return {k[len(prefix):].lower(): v for k, v in _ENUMS[enum].items()}


DTYPE = {"float32": _ENUMS["pc_dtype"]["PC_F32"], "int64": _ENUMS["pc_dtype"]["PC_I64"],
         "bool": _ENUMS["pc_dtype"]["PC_BOOL"]}
ACT = _table("pc_act", "PC_ACT_")
C_MODE = _table("pc_cmode", "PC_C_")
BINARY_OPS = _table("pc_binary_op", "PC_BIN_")
SCALAR_OPS = _table("pc_scalar_op", "PC_SC_")
UNARY_OPS = _table("pc_unary_op", "PC_UN_")
REDUCE_OPS = _table("pc_reduce_op", "PC_RED_")
MASK_KIND = _table("pc_mask_kind", "PC_MASK_")
ERRORS = {v: k for k, v in _ENUMS["pc_error"].items()}
NP_DTYPE = {"float32": np.dtype(np.float32), "int64": np.dtype(np.int64),
            "bool": np.dtype(np.bool_)}
DTYPE_NAME = {v: k for k, v in NP_DTYPE.items()}

# Argument codes: p pointer, i C int, q int64, d double, a int64 array (or NULL).
SIGNATURES: dict[str, str] = {
    "pc_gemm": "ppppqqqqiddiqqi",
    "pc_gemm_packed": "ppppqqqqddiqi",
    "pc_gemm_pack_b": "ppqqi",
    "pc_binary": "iiiiapapap",
    "pc_scalar": "iipdpq",
    "pc_unary": "iippq",
    "pc_swiglu": "pppq",
    "pc_where": "iiapapapap",
    "pc_copy": "iiapapa",
    "pc_cast": "iippq",
    "pc_softmax": "ppqq",
    "pc_layer_norm": "ppppqqd",
    "pc_rms_norm": "pppqqd",
    "pc_reduce": "ippqqq",
    "pc_cumsum": "ippqqq",
    "pc_embedding": "pppqqq",
    "pc_gather": "ipppqqqq",
    "pc_rope": "ppppqqq",
    "pc_attention": "pppppqqqqqqdiiaaaaa",
}
_CTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int, "q": ctypes.c_int64, "d": ctypes.c_double,
           "a": ctypes.POINTER(ctypes.c_int64)}


class KernelError(RuntimeError):
    """A kernel rejected its arguments (or ran out of memory)."""


@dataclass(frozen=True)
class Ptr:
    """Element 0 of buffer ``buf``, moved by ``elems`` elements."""

    buf: str
    elems: int = 0


@dataclass(frozen=True)
class Call:
    """One kernel call: C function name and arguments matching SIGNATURES[func]."""

    func: str
    args: tuple[Any, ...]  # Ptr | None (p), int (i, q), float (d), tuple[int, ...] | None (a)


# ------------------------------------------------------------------ library


_lib_funcs: dict[str, Any] = {}


def lib() -> ctypes.CDLL:
    """The kernel library with argtypes set (built on first use)."""
    handle = cbuild.kernel_library()
    if not _lib_funcs or _lib_funcs.get("__handle__") is not handle:
        _lib_funcs.clear()
        for name, sig in SIGNATURES.items():
            fn = getattr(handle, name)
            fn.argtypes = [_CTYPES[c] for c in sig]
            fn.restype = ctypes.c_int
            _lib_funcs[name] = fn
        handle.pc_set_num_threads.argtypes = [ctypes.c_int]
        handle.pc_set_num_threads.restype = None
        handle.pc_get_num_threads.restype = ctypes.c_int
        handle.pc_build_info.restype = ctypes.c_char_p
        handle.pc_gemm_packed_size.argtypes = [ctypes.c_int64, ctypes.c_int64]
        handle.pc_gemm_packed_size.restype = ctypes.c_int64
        handle.pc_set_num_threads(1)  # a defined start: one thread for kernels and BLAS
        _lib_funcs["__handle__"] = handle
    return handle


def func(name: str) -> Any:
    lib()
    return _lib_funcs[name]


def set_num_threads(n: int) -> None:
    """Threads for the kernels (OpenMP) and the BLAS together."""
    lib().pc_set_num_threads(int(n))


def get_num_threads() -> int:
    return int(lib().pc_get_num_threads())


def build_info() -> str:
    """Compile-time facts of the loaded library plus the flag set used."""
    b = cbuild.kernel_build()
    return f"{lib().pc_build_info().decode()} flags={b.flag_set} path={b.path}"


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise KernelError(f"{what} failed: {ERRORS.get(rc, rc)}")


# ------------------------------------------------------------------ step -> call


def _int_tuple(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape)


def _rows_ok(buf: Buf, cols: int) -> bool:
    """Last dimension contiguous and rows packed (what the row kernels assume)."""
    return buf.contiguous or (buf.strides[-1] == 1 and (len(buf.shape) < 2 or
                                                        buf.strides[-2] == cols))


def _need_contiguous(step: Step, buf: Buf) -> None:
    if not buf.contiguous:
        raise ValueError(f"{step.kind}: input {buf.name} must be contiguous, has strides "
                         f"{buf.strides} for shape {buf.shape}")


CallRule = Callable[[Step, list[Buf], Buf, Mapping[str, str]], Call]
CALLS: dict[str, CallRule] = {}  # step kind -> how its C kernel is called


def _calls(kind: str) -> Callable[[CallRule], CallRule]:
    def register(fn: CallRule) -> CallRule:
        CALLS[kind] = fn
        return fn

    return register


def step_call(step: Step, bufs: Mapping[str, Buf],
              packed: Mapping[str, str] | None = None) -> Call:
    """The kernel call that executes ``step`` (arguments still symbolic: see Call).

    ``packed`` maps a gemm step's output name to the buffer holding its b pre-packed
    (see :func:`plan_prepack`); such a step calls ``pc_gemm_packed``.
    """
    rule = CALLS.get(step.kind)
    if rule is None:
        raise ValueError(f"no C kernel for step kind {step.kind!r}")
    return rule(step, [bufs[n] for n in step.inputs], bufs[step.outputs[0]], packed or {})


@_calls("gemm")
def _gemm(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a, o = step.attrs, Ptr(out.name)
    c_mode = str(a.get("c_mode", "none"))
    c = Ptr(ins[2].name) if len(ins) > 2 and c_mode != "none" else None
    k = int(a["k"])
    for buf in ins[:1] + (ins[2:3] if c_mode == "full" else []):
        if not _rows_ok(buf, buf.shape[-1] if buf.shape else 1):
            raise ValueError(f"gemm: {buf.name} needs packed rows, strides {buf.strides}")
    if out.name in packed:
        return Call("pc_gemm_packed", (Ptr(ins[0].name), Ptr(packed[out.name]), c, o,
                                       int(a["batch"]), int(a["m"]), int(a["n"]), k,
                                       float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)),
                                       ACT[str(a.get("act", "none"))],
                                       int(a.get("a_batch_stride", 0)), C_MODE[c_mode]))
    return Call("pc_gemm", (Ptr(ins[0].name), Ptr(ins[1].name), c, o, int(a["batch"]),
                            int(a["m"]), int(a["n"]), k, int(bool(a["trans_b"])),
                            float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)),
                            ACT[str(a.get("act", "none"))], int(a.get("a_batch_stride", 0)),
                            int(a.get("b_batch_stride", 0)), C_MODE[c_mode]))


@_calls("binary")
def _binary(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    x, y = ins
    if x.dtype != y.dtype:
        raise ValueError(f"binary {a['op']}: mixed dtypes {x.dtype}/{y.dtype}")
    return Call("pc_binary", (BINARY_OPS[str(a["op"])], DTYPE[x.dtype], DTYPE[out.dtype],
                              int(a["rank"]), _int_tuple(a["shape"]), Ptr(x.name),
                              _int_tuple(a["a_strides"]), Ptr(y.name),
                              _int_tuple(a["b_strides"]), Ptr(out.name)))


@_calls("scalar")
def _scalar(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    _need_contiguous(step, ins[0])
    return Call("pc_scalar", (SCALAR_OPS[str(step.attrs["op"])], DTYPE[ins[0].dtype],
                              Ptr(ins[0].name), float(step.attrs["value"]), Ptr(out.name),
                              out.numel))


@_calls("unary")
def _unary(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    _need_contiguous(step, ins[0])
    return Call("pc_unary", (UNARY_OPS[str(step.attrs["op"])], DTYPE[ins[0].dtype],
                             Ptr(ins[0].name), Ptr(out.name), out.numel))


@_calls("swiglu")
def _swiglu(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    for buf in ins:
        _need_contiguous(step, buf)
    return Call("pc_swiglu", (Ptr(ins[0].name), Ptr(ins[1].name), Ptr(out.name),
                              int(step.attrs["n"])))


@_calls("where")
def _where(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    cond, x, y = ins
    strides = a.get("strides")
    cs, xs, ys = (strides if strides is not None else
                  (a["cond_strides"], a["a_strides"], a["b_strides"]))
    return Call("pc_where", (NP_DTYPE[out.dtype].itemsize, int(a["rank"]),
                             _int_tuple(a["shape"]), Ptr(cond.name), _int_tuple(cs),
                             Ptr(x.name), _int_tuple(xs), Ptr(y.name), _int_tuple(ys),
                             Ptr(out.name)))


@_calls("copy")
def _copy(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    x = ins[0]
    out_strides = a.get("out_strides")
    return Call("pc_copy", (NP_DTYPE[x.dtype].itemsize, int(a["rank"]),
                            _int_tuple(a["shape"]), Ptr(x.name), _int_tuple(a["strides"]),
                            Ptr(out.name, int(a.get("out_offset_elems", 0))),
                            None if out_strides is None else _int_tuple(out_strides)))


@_calls("cast")
def _cast(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    _need_contiguous(step, ins[0])
    return Call("pc_cast", (DTYPE[ins[0].dtype], DTYPE[str(step.attrs["to"])],
                            Ptr(ins[0].name), Ptr(out.name), out.numel))


@_calls("softmax")
def _softmax(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    _need_contiguous(step, ins[0])
    return Call("pc_softmax", (Ptr(ins[0].name), Ptr(out.name), int(step.attrs["rows"]),
                               int(step.attrs["cols"])))


@_calls("layer_norm")
def _layer_norm(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    _need_contiguous(step, ins[0])
    w = Ptr(ins[1].name) if len(ins) > 1 else None
    b = Ptr(ins[2].name) if len(ins) > 2 else None
    return Call("pc_layer_norm", (Ptr(ins[0].name), w, b, Ptr(out.name), int(a["rows"]),
                                  int(a["cols"]), float(a["eps"])))


@_calls("rms_norm")
def _rms_norm(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    _need_contiguous(step, ins[0])
    w = Ptr(ins[1].name) if len(ins) > 1 else None
    return Call("pc_rms_norm", (Ptr(ins[0].name), w, Ptr(out.name), int(a["rows"]),
                                int(a["cols"]), float(a["eps"])))


@_calls("reduce")
def _reduce(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    _need_contiguous(step, ins[0])
    return Call("pc_reduce", (REDUCE_OPS[str(a["op"])], Ptr(ins[0].name), Ptr(out.name),
                              int(a["outer"]), int(a["inner_len"]), int(a["inner"])))


@_calls("cumsum")
def _cumsum(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    _need_contiguous(step, ins[0])
    return Call("pc_cumsum", (DTYPE[out.dtype], Ptr(ins[0].name), Ptr(out.name),
                              int(a["outer"]), int(a["inner_len"]), int(a["inner"])))


@_calls("gather")
def _gather(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    _need_contiguous(step, ins[0])
    _need_contiguous(step, ins[1])
    return Call("pc_gather", (NP_DTYPE[out.dtype].itemsize, Ptr(ins[0].name),
                              Ptr(ins[1].name), Ptr(out.name), int(a["outer"]),
                              int(a["len"]), int(a["m"]), int(a["inner"])))


@_calls("embedding")
def _embedding(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    table, idx = ins
    _need_contiguous(step, table)
    _need_contiguous(step, idx)
    return Call("pc_embedding", (Ptr(table.name), Ptr(idx.name), Ptr(out.name),
                                 int(step.attrs["n"]), int(step.attrs["dim"]),
                                 int(table.shape[0])))


@_calls("attention")
def _attention(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    a = step.attrs
    q, k, v = ins[:3]
    mask_kind = str(a.get("mask_kind", "none"))
    mask = Ptr(ins[3].name) if len(ins) > 3 and mask_kind != "none" else None
    ms = _int_tuple(a["mask_strides"]) if mask is not None else None
    return Call("pc_attention", (Ptr(q.name), Ptr(k.name), Ptr(v.name), mask, Ptr(out.name),
                                 int(a["b"]), int(a["hq"]), int(a["hkv"]), int(a["s"]),
                                 int(a["t"]), int(a["d"]), float(a["scale"]),
                                 int(bool(a["causal"])), MASK_KIND[mask_kind], ms,
                                 _strides4(q, a.get("q_strides")),
                                 _strides4(k, a.get("k_strides")),
                                 _strides4(v, a.get("v_strides")),
                                 _strides4(out, a.get("out_strides"))))


@_calls("rope")
def _rope(step: Step, ins: list[Buf], out: Buf, packed: Mapping[str, str]) -> Call:
    x, cos, sin = ins
    for buf in ins:
        _need_contiguous(step, buf)
    return Call("pc_rope", (Ptr(x.name), Ptr(cos.name), Ptr(sin.name), Ptr(out.name),
                            int(step.attrs["rows"]), int(step.attrs["d"]),
                            int(step.attrs["cs_rows"])))


def _strides4(buf: Buf, given: Sequence[int] | None) -> tuple[int, ...] | None:
    """4-d element strides of an attention operand: the attrs' if given, else the buffer's
    (None when contiguous, the kernel's default)."""
    if given is not None:
        return _int_tuple(given)
    if buf.contiguous or len(buf.shape) != 4:
        return None
    return _int_tuple(buf.strides)


# ------------------------------------------------------------------ pre-packed weights

PACK_MAX_ROWS = 8192  # beyond this many rows of a, the BLAS's own blocking wins


@dataclass(frozen=True)
class Prepack:
    """One constant b packed for ``pc_gemm_packed``: ``name`` is the packed buffer."""

    name: str
    source: str          # the const Buf read
    n: int
    k: int
    trans_b: bool
    steps: tuple[str, ...]  # output names of the gemm steps that use it


def plan_prepack(steps: Sequence[Step], bufs: Mapping[str, Buf]) -> list[Prepack]:
    """Gemm steps whose b is a constant shared by all batch rows get a packed copy of it
    (one per constant, layout and size, whatever the number of steps using it)."""
    found: dict[tuple[Any, ...], Prepack] = {}
    for step in steps:
        if step.kind != "gemm" or len(step.inputs) < 2:
            continue
        a = step.attrs
        b = bufs[step.inputs[1]]
        n, k, tb = int(a["n"]), int(a["k"]), bool(a["trans_b"])
        if (b.storage != "const" or int(a.get("b_batch_stride", 0)) != 0 or b.dtype != "float32"
                or int(a["batch"]) * int(a["m"]) > PACK_MAX_ROWS or n == 0 or k == 0):
            continue
        key = (b.index, b.strides, n, k, tb)
        prev = found.get(key)
        users = (*prev.steps, step.outputs[0]) if prev else (step.outputs[0],)
        name = prev.name if prev else f"{b.name}~packed{len(found)}"
        found[key] = Prepack(name, b.name, n, k, tb, users)
    return list(found.values())


def pack_b(b: np.ndarray, n: int, k: int, trans_b: bool) -> np.ndarray:
    """``b`` ([k, n], or [n, k] if trans_b; C-contiguous) packed for pc_gemm_packed."""
    h = lib()
    size = int(h.pc_gemm_packed_size(n, k))
    raw = np.empty(size + 16, np.float32)
    shift = (-raw.ctypes.data % 64) // 4
    packed = raw[shift:shift + size]
    src = np.ascontiguousarray(b, dtype=np.float32)
    if src.size != n * k:
        raise ValueError(f"pack_b: {src.shape} is not {n}x{k}")
    check(func("pc_gemm_pack_b")(src.ctypes.data, packed.ctypes.data, n, k, int(trans_b)),
          "pc_gemm_pack_b")
    return packed


# ------------------------------------------------------------------ calling with pointers


def _carg(code: str, value: Any, resolve: Any, keep: list[Any]) -> Any:
    if code == "p":
        return None if value is None else resolve(value)
    if code == "a":
        if value is None:
            return None
        arr = (ctypes.c_int64 * max(len(value), 1))(*value)
        keep.append(arr)
        return ctypes.cast(arr, ctypes.POINTER(ctypes.c_int64))
    if code == "d":
        return float(value)
    return int(value)


def bind(call: Call, resolve: Any) -> tuple[Any, tuple[Any, ...], list[Any]]:
    """(ctypes function, converted args, objects to keep alive); resolve(Ptr) -> address."""
    sig = SIGNATURES[call.func]
    if len(sig) != len(call.args):
        raise ValueError(f"{call.func}: {len(call.args)} args for signature {sig}")
    keep: list[Any] = []
    args = tuple(_carg(c, v, resolve, keep) for c, v in zip(sig, call.args, strict=True))
    return func(call.func), args, keep
