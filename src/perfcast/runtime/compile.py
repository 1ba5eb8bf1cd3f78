"""``perfcast.runtime.compile``: a PyTorch model to a callable that runs on the runtime.

capture (with weights) -> passes -> lowering -> memory plan -> backend. The callable
takes the same inputs as the example (torch tensors or NumPy arrays), checks their
count, shape and dtype, and returns NumPy arrays (a tuple when there are several).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from perfcast.ir import Graph
from perfcast.runtime.backend_numpy import NumpyExecutor
from perfcast.runtime.lower import lower
from perfcast.runtime.planner import PlanReport, plan
from perfcast.runtime.program import DTYPES, Program

BACKENDS = ("auto", "c", "numpy")


class RuntimeInputError(ValueError):
    """A call's inputs do not match what the model was compiled for."""


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (no C compiler for ``backend="c"``)."""


class Executor(Protocol):
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...

    def run_timed(self, inputs: Sequence[np.ndarray]
                  ) -> tuple[list[np.ndarray], list[float]]: ...


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def describe(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


class CompiledModel:
    """A compiled model: call it like the model; ``program``, ``plan_report``,
    ``pass_report`` and ``backend`` say what runs."""

    def __init__(self, program: Program, plan_report: PlanReport, pass_report: Any,
                 inputs: list[InputSpec], backend: str, threads: int | None,
                 kw_order: list[str] | None = None,
                 kw_fixed: Mapping[str, Any] | None = None) -> None:
        self.program = program
        self.plan_report = plan_report
        self.pass_report = pass_report
        self.input_specs = inputs
        self._kw_order = kw_order
        self._kw_fixed = dict(kw_fixed or {})  # non-tensor keyword inputs, compiled in
        self.backend, self._executor = _make_executor(program, backend, threads)
        self.threads = threads

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        outs = self.run(self._bind(args, kwargs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        """Run on inputs in graph order (checked); a list of output arrays."""
        arrays = self.check_inputs(inputs)
        return self._executor.run(arrays)

    def run_timed(self, *args: Any, **kwargs: Any) -> tuple[list[np.ndarray], list[float]]:
        """Call the model (inputs as for a call); its outputs and each program step's wall
        time in seconds, in step order."""
        return self._executor.run_timed(self.check_inputs(self._bind(args, kwargs)))

    def set_threads(self, threads: int) -> None:
        """Threads the C kernels use from now on (the NumPy backend ignores it)."""
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        setter = getattr(self._executor, "set_threads", None)
        if setter is not None:
            setter(threads)

    def check_inputs(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        """The inputs as contiguous arrays, or :class:`RuntimeInputError` saying what is wrong."""
        specs = self.input_specs
        if len(inputs) != len(specs):
            raise RuntimeInputError(
                f"expected {len(specs)} input(s) "
                f"({', '.join(f'{s.name}: {s.describe()}' for s in specs)}), got {len(inputs)}")
        arrays = []
        for k, (value, spec) in enumerate(zip(inputs, specs, strict=True)):
            arr = _as_numpy(value)
            where = f"input {k} ({spec.name!r})"
            if arr is None:
                raise RuntimeInputError(f"{where}: expected a torch tensor or NumPy array, got "
                                        f"{type(value).__name__}")
            if tuple(arr.shape) != spec.shape or arr.dtype != DTYPES[spec.dtype]:
                raise RuntimeInputError(f"{where}: expected {spec.describe()}, got "
                                        f"{arr.dtype}{list(arr.shape)}")
            arrays.append(np.ascontiguousarray(arr))
        return arrays

    def _bind(self, args: tuple, kwargs: dict) -> list[Any]:
        if kwargs:
            order = list(kwargs) if self._kw_order is None else self._kw_order
            unknown = sorted(set(kwargs) - set(order))
            changed = [k for k in unknown if k not in self._kw_fixed
                       or not _same(kwargs[k], self._kw_fixed[k])]
            if changed:
                raise RuntimeInputError(f"unexpected keyword input(s) {changed}; the model was "
                                        f"compiled with {order}"
                                        + (f" and {self._kw_fixed}" if self._kw_fixed else ""))
            missing = [k for k in order if k not in kwargs]
            if missing:
                raise RuntimeInputError(f"missing keyword input(s) {missing}")
            return [*args, *(kwargs[k] for k in order)]
        return list(args)


PassesArg = Iterable[str] | Mapping[str, bool] | bool | None


def compile(model: Any, example_inputs: Any, *, backend: str = "auto",
            threads: int | None = None, passes: PassesArg = None,
            name: str | None = None) -> CompiledModel:
    """Compile ``model`` for ``example_inputs`` (a tensor, a tuple of them or a dict).

    ``backend``: "c" (compiled kernels), "numpy" (the reference) or "auto" (C when a
    compiler works, else NumPy with a warning). ``threads``: kernel threads (C backend;
    default 1). ``passes``: None runs every graph pass, False none; else the names to run
    or a mapping of pass name to on/off (``perfcast.passes.PASS_NAMES``).
    """
    from perfcast.frontends.torch_export import capture

    _check_backend(backend)
    cap = capture(model, example_inputs, keep_weights=True, name=name)
    kw_order, kw_fixed = None, {}  # keyword tensors (graph inputs) and other values
    if isinstance(example_inputs, Mapping):
        kw_order = [k for k, v in example_inputs.items() if _is_array(v)]
        kw_fixed = {k: v for k, v in example_inputs.items() if not _is_array(v)}
    return compile_graph(cap.graph, cap.weights, backend=backend, threads=threads,
                         passes=passes, kw_order=kw_order, kw_fixed=kw_fixed)


def compile_graph(graph: Graph, consts: Mapping[str, np.ndarray], *, backend: str = "auto",
                  threads: int | None = None, passes: PassesArg = None,
                  kw_order: list[str] | None = None,
                  kw_fixed: Mapping[str, Any] | None = None) -> CompiledModel:
    """Compile an IR graph whose constants' values are ``consts`` (see :func:`compile`);
    ``kw_order`` names the keyword inputs in graph order, ``kw_fixed`` the non-tensor
    keyword values the graph was captured with (a call may repeat them)."""
    _check_backend(backend)
    graph, consts, report = run_graph_passes(graph, consts, passes)
    program, plan_report = plan(lower(graph, consts))
    inputs = [InputSpec(n, tuple(int(d) for d in graph.tensors[n].shape),
                        graph.tensors[n].dtype) for n in graph.inputs]
    return CompiledModel(program, plan_report, report, inputs, backend, threads, kw_order,
                         kw_fixed)


def run_graph_passes(graph: Graph, consts: Mapping[str, np.ndarray],
                     passes: PassesArg) -> tuple[Graph, dict, Any]:
    """The graph passes selected by ``passes`` (see :func:`compile`)."""
    if passes is False:
        return graph, dict(consts), None
    from perfcast.passes import PASS_NAMES, run_passes
    from perfcast.runtime.interpret import eval_node

    if passes is None or passes is True:
        enable = None
    elif isinstance(passes, Mapping):
        enable = dict(passes)
    else:
        chosen = [passes] if isinstance(passes, str) else list(passes)
        enable = {name: name in chosen for name in PASS_NAMES}
        enable.update({name: True for name in chosen})  # unknown names: run_passes says so
    return run_passes(graph, dict(consts), evaluate=eval_node, enable=enable)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _make_executor(program: Program, backend: str, threads: int | None) -> tuple[str, Executor]:
    if backend == "numpy":
        return "numpy", NumpyExecutor(program)
    from perfcast.runtime import cbuild

    reason = cbuild.unavailable_reason()
    if reason is not None:
        if backend == "c":
            raise BackendUnavailable(f"the C backend cannot run here: {reason}")
        warnings.warn(f"perfcast runtime: C kernels unavailable ({reason}); falling back to "
                      "the NumPy backend, which is much slower", RuntimeWarning, stacklevel=3)
        return "numpy", NumpyExecutor(program)
    from perfcast.runtime.backend_c import CExecutor

    return "c", CExecutor(program, threads=threads or 1)


def _as_numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if _is_torch_tensor(value):
        return value.detach().cpu().numpy()
    return None


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or _is_torch_tensor(value)


def _same(a: Any, b: Any) -> bool:
    """Equal non-tensor values (``b`` is never an array, so neither is an equal ``a``)."""
    return type(a) is type(b) and bool(a == b)
