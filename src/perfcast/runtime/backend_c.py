"""The C backend: a Program's steps run by the C kernels over one arena.

Two dispatch modes share the arena, the constants and the kernel arguments
(:func:`perfcast.runtime.ckernels.step_call`):

- ``"compiled"`` (default): :mod:`perfcast.runtime.codegen` turns the whole program into one
  C function, so a call is a single ctypes call with no Python per step;
- ``"steps"``: one ctypes call per step, with the arguments converted once up front (the
  per-op path; the reference the compiled path is checked against).

If the generated program cannot be compiled (no compiler, but kernels from the cache) the
executor warns and uses ``"steps"``. :meth:`CExecutor.run_timed` also returns each step's
wall time: compiled dispatch builds a timed variant of the function on first use
(:func:`perfcast.runtime.codegen.generate` with ``timed=True``), so ``run`` is unchanged.
"""

from __future__ import annotations

import ctypes
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from perfcast.runtime import cbuild, ckernels
from perfcast.runtime.ckernels import KernelError, Ptr
from perfcast.runtime.program import ALIGN, DTYPES, Buf, Program

DISPATCH = ("compiled", "steps")


def aligned_arena(nbytes: int, align: int = ALIGN) -> np.ndarray:
    """A zeroed uint8 array of ``nbytes`` whose data starts on an ``align`` boundary."""
    raw = np.zeros(max(int(nbytes), 1) + align, dtype=np.uint8)
    shift = (-raw.ctypes.data) % align
    return raw[shift:shift + max(int(nbytes), 1)]


class CExecutor:
    """Runs a :class:`Program` with the C kernels; ``run(inputs)`` returns new arrays."""

    def __init__(self, program: Program, threads: int = 1, dispatch: str = "compiled",
                 prepack: bool = True) -> None:
        if dispatch not in DISPATCH:
            raise ValueError(f"dispatch must be one of {DISPATCH}, got {dispatch!r}")
        ckernels.lib()  # build/load now: CompilerUnavailable/BuildError surface here
        self.program = program
        self.threads = max(int(threads), 1)
        self.arena = aligned_arena(program.arena_bytes)
        self._arena_addr = self.arena.ctypes.data
        self._consts = [np.ascontiguousarray(c) for c in program.consts]
        self.bufs: dict[str, Buf] = dict(program.bufs)
        self.prepacked = self._prepack() if prepack else []
        self._const_addrs = [c.ctypes.data for c in self._consts]
        self._in_specs = [program.bufs[n] for n in program.inputs]
        self._outputs = [self._output_view(program.bufs[n]) for n in program.outputs]
        packed = {user: p.name for p in self.prepacked for user in p.steps}
        self._calls = [ckernels.step_call(s, self.bufs, packed) for s in program.steps]
        self._compiled: Any = None
        self._timed: Any = None
        self.dispatch = dispatch
        if dispatch == "compiled":
            from perfcast.runtime import codegen

            try:
                self._compiled = codegen.compile_program(program, calls=self._calls,
                                                         bufs=self.bufs)
            except (cbuild.CompilerUnavailable, cbuild.BuildError) as exc:
                warnings.warn(f"perfcast runtime: compiled dispatch unavailable ({exc}); "
                              "running step by step", RuntimeWarning, stacklevel=2)
                self.dispatch = "steps"
        if self.dispatch == "steps":
            self._bind_steps()
        self._consts_arr = (ctypes.c_void_p * max(len(self._consts), 1))(*self._const_addrs)
        self._inputs_arr = (ctypes.c_void_p * max(len(self._in_specs), 1))()

    # -- setup ------------------------------------------------------------------------
    def _prepack(self) -> list[ckernels.Prepack]:
        """Pack constant gemm weights once (extra constants after the program's own)."""
        plans = ckernels.plan_prepack(self.program.steps, self.bufs)
        for p in plans:
            src = self.bufs[p.source]
            flat = self._consts[src.index].reshape(-1)[:p.n * p.k]
            packed = ckernels.pack_b(flat, p.n, p.k, p.trans_b)
            self.bufs[p.name] = Buf(p.name, packed.shape, "float32", "const", 0,
                                    len(self._consts), (1,))
            self._consts.append(packed)
        return plans

    def _output_view(self, buf: Buf) -> tuple[Buf, np.ndarray | None]:
        if buf.storage != "arena":
            return buf, None
        dtype = DTYPES[buf.dtype]
        flat = self.arena[buf.offset:buf.offset + buf.nbytes].view(dtype)
        return buf, flat

    def _address(self, p: Ptr) -> int:
        buf = self.bufs[p.buf]
        extra = p.elems * DTYPES[buf.dtype].itemsize
        if buf.storage == "arena":
            return self._arena_addr + buf.offset + extra
        if buf.storage == "const":
            return self._const_addrs[buf.index] + extra
        raise AssertionError("input pointers are bound per call")

    def _bind_steps(self) -> None:
        """Per step: ctypes function, argument list, and the input pointers to patch."""
        self._steps: list[tuple[Any, list[Any], list[tuple[int, int, int]], str]] = []
        self._keep: list[Any] = []
        for step, call in zip(self.program.steps, self._calls, strict=True):
            patches: list[tuple[int, int, int]] = []
            sig = ckernels.SIGNATURES[call.func]

            def resolve(p: Ptr) -> int:
                buf = self.bufs[p.buf]
                if buf.storage == "input":
                    return 0  # patched per call
                return self._address(p)

            fn, args, keep = ckernels.bind(call, resolve)
            for pos, (code, value) in enumerate(zip(sig, call.args, strict=True)):
                if code == "p" and value is not None:
                    buf = self.bufs[value.buf]
                    if buf.storage == "input":
                        patches.append((pos, buf.index,
                                        value.elems * DTYPES[buf.dtype].itemsize))
            self._keep.extend(keep)
            self._steps.append((fn, list(args), patches, f"{step.kind} -> {step.outputs[0]}"))

    # -- running ----------------------------------------------------------------------
    def set_threads(self, threads: int) -> None:
        self.threads = max(int(threads), 1)

    def _prepare(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._in_specs):
            raise ValueError(f"expected {len(self._in_specs)} inputs, got {len(inputs)}")
        arrays = []
        for x, spec in zip(inputs, self._in_specs, strict=True):
            arr = np.ascontiguousarray(x, dtype=DTYPES[spec.dtype])
            if arr.shape != spec.shape:
                raise ValueError(f"input {spec.name}: expected shape {spec.shape}, got "
                                 f"{arr.shape}")
            arrays.append(arr)
        if ckernels.get_num_threads() != self.threads:
            ckernels.set_num_threads(self.threads)
        return arrays

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        arrays = self._prepare(inputs)
        if self.dispatch == "compiled":
            for i, arr in enumerate(arrays):
                self._inputs_arr[i] = arr.ctypes.data
            self._compiled.run(self._arena_addr, self._consts_arr, self._inputs_arr)
        else:
            addrs = [a.ctypes.data for a in arrays]
            for fn, args, patches, what in self._steps:
                for pos, index, extra in patches:
                    args[pos] = addrs[index] + extra
                rc = fn(*args)
                if rc != 0:
                    raise KernelError(f"step {what} failed: {ckernels.ERRORS.get(rc, rc)}")
        return self._collect(arrays)

    def run_timed(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
        """:meth:`run` that also returns each step's wall time in seconds."""
        arrays = self._prepare(inputs)
        n = len(self.program.steps)
        if self.dispatch == "compiled":
            if self._timed is None:
                from perfcast.runtime import codegen

                self._timed = codegen.compile_program(self.program, calls=self._calls,
                                                      bufs=self.bufs, timed=True)
            for i, arr in enumerate(arrays):
                self._inputs_arr[i] = arr.ctypes.data
            times = (ctypes.c_double * max(n, 1))()
            self._timed.run(self._arena_addr, self._consts_arr, self._inputs_arr, times)
            return self._collect(arrays), list(times)[:n]
        addrs = [a.ctypes.data for a in arrays]
        spent = []
        for fn, args, patches, what in self._steps:
            for pos, index, extra in patches:
                args[pos] = addrs[index] + extra
            t = time.perf_counter()
            rc = fn(*args)
            spent.append(time.perf_counter() - t)
            if rc != 0:
                raise KernelError(f"step {what} failed: {ckernels.ERRORS.get(rc, rc)}")
        return self._collect(arrays), spent

    def _collect(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        outs = []
        for buf, flat in self._outputs:
            if flat is not None:
                outs.append(flat.reshape(buf.shape).copy())
            elif buf.storage == "const":
                outs.append(np.array(self._consts[buf.index]).reshape(buf.shape))
            else:
                outs.append(np.array(arrays[buf.index]).reshape(buf.shape))
        return outs
