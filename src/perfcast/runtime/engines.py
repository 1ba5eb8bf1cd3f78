"""One model, several engines, timed side by side: perfcast (C, NumPy), PyTorch eager,
torch.compile and ONNX Runtime.

Each engine is built once (compile, export; not timed), checked against eager PyTorch
(max absolute difference over all outputs) and timed with :func:`perfcast.bench.measure`
at the same thread count, in interleaved rounds. torch.compile and ONNX Runtime follow
what the ``workloads`` bench suite does (default torch.compile mode; the dynamo ONNX
exporter; ORT_ENABLE_ALL with ``threads`` intra-op threads).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ("perfcast-c", "perfcast-numpy", "eager", "onnxruntime", "compile")
DEFAULT_ENGINES = ("perfcast-c", "eager", "onnxruntime", "compile")


@dataclass(frozen=True)
class EngineResult:
    """One engine on one model: median and 95% CI of a forward pass, and its error vs eager."""

    engine: str
    median_s: float | None = None
    ci95_s: tuple[float, float] | None = None
    max_abs_err: float | None = None
    setup_s: float = 0.0
    skipped: str | None = None  # why the engine did not run

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "median_s": self.median_s,
                "ci95_s": list(self.ci95_s) if self.ci95_s else None,
                "max_abs_err": self.max_abs_err, "setup_s": self.setup_s,
                "skipped": self.skipped}


def check_engines(names: Sequence[str]) -> list[str]:
    """``names`` validated against :data:`ENGINES` (ValueError naming the allowed ones)."""
    bad = [n for n in names if n not in ENGINES]
    if bad:
        raise ValueError(f"unknown engine(s) {', '.join(map(repr, bad))}; allowed: "
                         f"{', '.join(ENGINES)}")
    return list(dict.fromkeys(names))


def compare_engines(model: Any, inputs: Sequence[Any], *,
                    engines: Sequence[str] = DEFAULT_ENGINES, threads: int = 1,
                    budget_s: float = 3.0, rounds: int = 3,
                    progress: Callable[[str], None] | None = None) -> list[EngineResult]:
    """Build, check and time each engine on ``model(*inputs)`` with ``threads`` threads.

    Timing is interleaved: ``rounds`` rounds each time every engine for
    ``budget_s / rounds`` seconds, so a slow spell of a shared machine falls on all
    engines alike; an engine's median and CI come from all its samples together.
    """
    import torch

    from perfcast.bench import StopRule, measure
    from perfcast.bench.stats import Stats
    from perfcast.bench.timer import torch_threads

    say = progress or (lambda _msg: None)
    names = check_engines(engines)
    model = model.eval()
    inputs = tuple(inputs)
    with torch.inference_mode():
        reference = flatten_outputs(model(*inputs))
    built: dict[str, tuple[Callable[[], Any], float, float]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        say(f"building {name}")
        start = time.perf_counter()
        try:
            with torch_threads(threads):
                fn = build_engine(name, model, inputs, threads)
                err = max_abs_error(flatten_outputs(fn()), reference)
        except _Skip as exc:
            skipped[name] = str(exc)
            continue
        built[name] = (fn, err, time.perf_counter() - start)
    samples: dict[str, list[float]] = {name: [] for name in built}
    rule = StopRule(budget_s=max(budget_s / max(rounds, 1), 0.05), min_samples=3)
    for k in range(max(rounds, 1)):
        for name, (fn, _, _) in built.items():
            say(f"timing {name} (round {k + 1}/{rounds})")
            samples[name].extend(measure(fn, threads=threads, rule=rule, name=name).samples)
    results = []
    for name in names:
        if name in skipped:
            results.append(EngineResult(name, skipped=skipped[name]))
            continue
        stats = Stats.from_samples(samples[name])
        _, err, setup = built[name]
        results.append(EngineResult(name, stats.median, stats.ci95, err, setup))
    return results


class _Skip(RuntimeError):
    """The engine cannot run here (missing package or compiler)."""


def build_engine(name: str, model: Any, inputs: tuple, threads: int) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``inputs`` with engine ``name``."""
    import torch

    if name.startswith("perfcast-"):
        from perfcast.runtime.compile import BackendUnavailable, compile

        try:
            compiled = compile(model, inputs, backend=name.removeprefix("perfcast-"),
                               threads=threads)
        except BackendUnavailable as exc:
            raise _Skip(str(exc)) from exc
        arrays = [x.detach().cpu().numpy() for x in inputs]
        return lambda: compiled(*arrays)
    if name == "eager":
        def eager() -> Any:
            with torch.inference_mode():
                return model(*inputs)

        return eager
    if name == "compile":
        from perfcast.bench.suites._common import compile_skip_reason

        reason = compile_skip_reason()
        if reason:
            raise _Skip(reason)
        compiled_model = torch.compile(model)

        def run_compiled() -> Any:
            with torch.inference_mode():
                return compiled_model(*inputs)

        run_compiled()  # the first call compiles
        return run_compiled
    if name == "onnxruntime":
        return _onnxruntime(model, inputs, threads)
    raise ValueError(f"unknown engine {name!r}")


def _onnxruntime(model: Any, inputs: tuple, threads: int) -> Callable[[], Any]:
    from perfcast.bench.suites._common import missing_modules

    reason = missing_modules("onnx", "onnxruntime", "onnxscript")
    if reason:
        raise _Skip(reason)
    from perfcast.bench.suites.workloads import onnxruntime_session
    from perfcast.frontends.outputs import FlatOutputs

    flat = FlatOutputs(model)  # the exporter returns tensors only, not a transformers Cache
    with tempfile.TemporaryDirectory(prefix="perfcast-onnx-") as tmp, \
            warnings.catch_warnings():  # the exporter warns about its own internals
        warnings.simplefilter("ignore")
        session, feeds = onnxruntime_session(flat, inputs, Path(tmp) / "model.onnx",
                                             threads=threads)
    return lambda: session.run(None, feeds)


def flatten_outputs(value: Any) -> list[np.ndarray]:
    """Every tensor or array in a (nested) model output, in order, as NumPy arrays; torch
    results as the runtime flattens them (:func:`perfcast.frontends.outputs.flatten_tensors`:
    each tensor once, a ``transformers`` Cache's key/value tensors included)."""
    from torch.utils._pytree import tree_flatten

    from perfcast.frontends.outputs import flatten_tensors

    tensors = flatten_tensors(value)
    if tensors:
        return [t.detach().cpu().numpy() for t in tensors]
    return [leaf for leaf in tree_flatten(value)[0] if isinstance(leaf, np.ndarray)]


def max_abs_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Largest |got - want| over all outputs; ValueError if their count or shapes differ."""
    if len(got) != len(want):
        raise ValueError(f"{len(got)} outputs, expected {len(want)}")
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape:
            raise ValueError(f"output shape {list(g.shape)}, expected {list(w.shape)}")
        if g.size:
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))))
    return worst
