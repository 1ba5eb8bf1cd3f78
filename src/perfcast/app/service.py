"""The functions behind the HTTP API and the MCP server: plain arguments in, JSON out.

Each function returns what the matching CLI command prints with ``--json`` (the same
library calls build both), and raises :class:`BadInput`, :class:`NotFound` or
:class:`Unavailable` naming the field at fault. Names are resolved against the bundled
catalogs only: no argument is ever read as a file path. Store-backed functions (runs,
history, validation) live in :mod:`perfcast.app.service_store` and are re-exported here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from perfcast.app.errors import BadInput, NotFound, ServiceError, Unavailable, check_name
from perfcast.app.service_store import (
    bench_targets,
    check_benchmarks,
    compare_runs,
    history,
    history_targets,
    list_runs,
    run_benchmarks,
    show_run,
    system_info,
    validation_llm,
    validation_summary,
)

__all__ = [
    "BadInput",
    "NotFound",
    "ServiceError",
    "Unavailable",
    "analyze",
    "analyze_onnx",
    "bench_targets",
    "check_benchmarks",
    "check_sweep",
    "compare_runs",
    "detect_hardware",
    "history",
    "history_targets",
    "list_examples",
    "list_hardware",
    "list_runs",
    "llm_estimate",
    "llm_models",
    "llm_sweep",
    "run_benchmarks",
    "show_hardware",
    "show_run",
    "system_info",
    "validation_llm",
    "validation_summary",
]

MAX_BATCH = 4096
MAX_SEQ_LEN = 131072
MAX_DEVICES = 8
MAX_SWEEP_CONFIGURATIONS = 2_000_000
MAX_SWEEP_ROWS = 100_000
Progress = Callable[[float, str], None]


# -- hardware ----------------------------------------------------------------------------


def _hardware_spec(field: str, key: str) -> Any:
    from perfcast.hardware import catalog_names, load_spec
    from perfcast.hardware.catalog import resolve_name, suggest

    check_name(field, key)
    canon = resolve_name(key)
    if canon is None:
        raise NotFound(field, key, allowed=catalog_names(), suggestions=suggest(key))
    return load_spec(canon)


def list_hardware() -> list[dict[str, Any]]:
    """Every catalog device with its headline figures in SI units (dense peaks)."""
    from perfcast.hardware import list_specs

    return [{
        "name": s.name, "display_name": s.display_name, "vendor": s.vendor, "kind": s.kind,
        "aliases": list(s.aliases),
        "peak_flops": {k: f.dense for k, f in s.compute.items()},
        "memory_capacity_bytes": s.memory_capacity,
        "memory_bandwidth_bytes_per_s": s.memory_bandwidth,
        "tdp_w": s.power.tdp_w,
        "price_per_hour_usd": s.price_per_hour_usd.value if s.price_per_hour_usd else None,
    } for s in list_specs()]


def show_hardware(key: str) -> dict[str, Any]:
    """Every figure of one catalog device with its sources (``perfcast hw show --json``)."""
    return _hardware_spec("key", key).model_dump(mode="json")


def detect_hardware() -> dict[str, Any]:
    """This machine: CPU facts, derived spec and GPU (``perfcast hw detect --json``)."""
    from perfcast.hardware import HardwareError, describe_local, detect_gpu, detect_local

    try:
        spec, facts, gpu = detect_local(), describe_local(), detect_gpu()
    except HardwareError as exc:
        raise Unavailable("hardware", str(exc)) from None
    return {"facts": facts, "spec": spec.model_dump(mode="json"),
            "gpu": gpu.to_dict() if gpu is not None else None}


# -- model analysis ----------------------------------------------------------------------


def list_examples() -> list[dict[str, str]]:
    """The built-in example models (``perfcast analyze --list-examples``)."""
    from perfcast.examples import list_examples as examples

    return [{"name": e.name, "description": e.description, "source": e.source}
            for e in examples()]


_capture_lock = threading.Lock()


@lru_cache(maxsize=16)
def _prepared_example(name: str, batch: int, seq_len: int, dtype: str | None) -> Any:
    from perfcast.estimate.analyze import prepare
    from perfcast.frontends import load_target

    with _capture_lock:  # torch.export is not meant to run twice at once in one process
        loaded = load_target(f"examples:{name}", batch=batch, seq_len=seq_len)
        return prepare(loaded.model, loaded.example_inputs, dtype=dtype, name=loaded.name)


def _check_analysis_options(hardware: Sequence[str], dtype: str | None,
                            target: str) -> list[Any]:
    from perfcast.ir import DTypeError, canonical
    from perfcast.ir.dtypes import FLOATING
    from perfcast.passes import TARGETS

    if not hardware:
        raise BadInput("hardware", "give at least one catalog device")
    if len(hardware) > MAX_DEVICES:
        raise BadInput("hardware", f"at most {MAX_DEVICES} devices per request, "
                                   f"got {len(hardware)}")
    if target not in TARGETS:
        raise NotFound("target", target, allowed=list(TARGETS))
    if dtype is not None:
        try:
            name = canonical(dtype)
        except DTypeError as exc:
            raise BadInput("dtype", str(exc)) from None
        if name not in FLOATING:
            raise BadInput("dtype", f"{dtype!r} is not a floating-point type; allowed: "
                                    f"{', '.join(sorted(FLOATING))} (or fp32/bf16/fp16/fp8)")
    return [_hardware_spec("hardware", h) for h in dict.fromkeys(hardware)]


def _estimates(prepared: Any, specs: list[Any], target: str) -> list[dict[str, Any]]:
    from perfcast.estimate.analyze import estimate_prepared
    from perfcast.hardware import HardwareError

    try:
        return [estimate_prepared(prepared, spec, target=target).to_dict() for spec in specs]
    except HardwareError as exc:
        raise BadInput("hardware", str(exc)) from None


def analyze(model: str, hardware: Sequence[str] = ("h100-sxm",), *, dtype: str | None = None,
            batch: int = 1, seq_len: int = 128, target: str = "eager") -> list[dict[str, Any]]:
    """Estimates of a built-in example, one per device (``perfcast analyze --json``).

    ``model`` is an example name (with or without ``examples:``); ``hardware`` catalog
    names or aliases. Each estimate lists every kernel (FLOPs, bytes, time, bound,
    intensity, achieved and peak rate) and every layer.
    """
    from perfcast.frontends import CaptureError

    name = model.removeprefix("examples:")
    check_name("model", name)
    names = [e["name"] for e in list_examples()]
    if name not in names:
        raise NotFound("model", model, allowed=names)
    _check_range("batch", batch, 1, MAX_BATCH)
    _check_range("seq_len", seq_len, 1, MAX_SEQ_LEN)
    specs = _check_analysis_options(hardware, dtype, target)
    try:
        prepared = _prepared_example(name, batch, seq_len, dtype)
    except CaptureError as exc:
        raise BadInput("model", str(exc)) from None
    return _estimates(prepared, specs, target)


def analyze_onnx(data: bytes, hardware: Sequence[str] = ("h100-sxm",), *,
                 name: str = "model", dtype: str | None = None, batch: int | None = None,
                 dims: Mapping[str, int] | None = None,
                 target: str = "eager") -> list[dict[str, Any]]:
    """Estimates of an ONNX model given as bytes (parsed by ``onnx``, never unpickled).

    ``dims`` sets symbolic input dimensions by name; ``batch`` fills the other leading
    symbolic dimensions (1 by default); ``dtype`` overrides the floating-point type of
    weights and activations.
    """
    from perfcast.estimate.analyze import prepare_graph
    from perfcast.frontends.onnx_import import OnnxImportError, import_onnx

    check_name("name", name)
    if batch is not None:
        _check_range("batch", batch, 1, MAX_BATCH)
    specs = _check_analysis_options(hardware, dtype, target)
    try:
        captured = import_onnx(data, name=name, batch=batch or 1, dims=dims, dtype=dtype)
    except ModuleNotFoundError as exc:
        raise Unavailable("file", f"ONNX support needs the {exc.name!r} package "
                                  "(pip install perfcast[onnx])") from None
    except OnnxImportError as exc:
        raise BadInput("file", str(exc)) from None
    return _estimates(prepare_graph(captured, dtype=dtype), specs, target)


def _check_range(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(field, f"must be an integer from {low} to {high}, got {value!r}")
    return value


# -- LLM serving -------------------------------------------------------------------------


def llm_models() -> list[dict[str, Any]]:
    """The LLM catalog with architecture facts (``perfcast llm models --json``)."""
    from perfcast.llm import catalog_rows

    return catalog_rows()


def _llm_model(name: str) -> Any:
    from perfcast.frontends.llm import UnknownModelError, load_model, model_names

    check_name("model", name)
    # load_model reads an existing path or *.json as a config file: never from the API
    if name.lower().endswith(".json") or Path(name).exists():
        raise NotFound("model", name, allowed=model_names())
    try:
        return load_model(name)
    except UnknownModelError as exc:
        raise NotFound("model", name, allowed=model_names(),
                       suggestions=exc.suggestions) from None


def _precision(text: str, kv_cache: str | None = None) -> Any:
    from perfcast.frontends.llm.precision import parse_precision

    if not isinstance(text, str) or len(text) > 200:
        raise BadInput("precision", "must be a preset name or weights=..,kv=.. (200 chars max)")
    try:
        prec = parse_precision(text)
    except ValueError as exc:
        raise BadInput("precision", str(exc)) from None
    if kv_cache:
        try:
            prec = prec.with_kv_cache(kv_cache)
        except ValueError as exc:
            raise BadInput("kv_cache", str(exc)) from None
    return prec


def llm_estimate(model: str, hardware: str = "h100-sxm", *, tp: int = 1, pp: int = 1,
                 ep: int = 1, dp: int = 1, dp_attention: bool = False, isl: int = 1024,
                 osl: int = 1024, concurrency: int = 1, precision: str = "bf16",
                 kv_cache: str | None = None, requests: int | None = None,
                 engine: str = "fitted", moe_distribution: str = "random") -> dict[str, Any]:
    """Serving metrics of one deployment (``perfcast llm estimate --json``)."""
    import perfcast.llm as llm
    from perfcast.estimate.collectives import CommunicationError
    from perfcast.estimate.serving import LLMPrecisionError
    from perfcast.frontends.llm.parallel import Parallelism, check

    cfg = _llm_model(model)
    spec = _hardware_spec("hardware", hardware)
    prec = _precision(precision, kv_cache)
    if requests is not None and requests < concurrency:
        raise BadInput("requests", f"must be at least concurrency ({concurrency}), "
                                   f"got {requests}")
    try:
        check(cfg, Parallelism(tp, pp, ep, dp, dp_attention))
    except ValueError as exc:
        raise BadInput("parallelism", str(exc)) from None
    try:
        est = llm.estimate(cfg, spec, tp=tp, pp=pp, ep=ep, dp=dp, dp_attention=dp_attention,
                           isl=isl, osl=osl, concurrency=concurrency, precision=prec,
                           requests=requests, engine=engine,
                           moe_distribution=moe_distribution)
    except LLMPrecisionError as exc:
        raise BadInput("precision", str(exc)) from None
    except CommunicationError as exc:
        raise BadInput("parallelism", str(exc)) from None
    except ValueError as exc:
        raise BadInput("request", str(exc)) from None
    return est.to_dict()


def llm_sweep(model: str, hardware: Sequence[str] = ("h100-sxm", "h200", "b200"), *,
              tp: Sequence[int] = (1, 2, 4, 8), ep: Sequence[int] | None = None,
              pp: Sequence[int] = (1,), dp_attention: str = "off",
              precision: Sequence[str] = ("bf16", "fp8"), isl: Sequence[int] = (1024,),
              osl: Sequence[int] = (1024,),
              concurrency: Sequence[int] = tuple(2**i for i in range(10)),
              show_all: bool = False, progress: Progress | None = None,
              engine: str = "fitted") -> dict[str, Any]:
    """Serving metrics over a grid and its Pareto fronts (``perfcast llm sweep --json``
    without files). ``ep=None`` tries every divisor of tp for a MoE model; ``dp_attention``
    is off, on or both. ``progress(fraction, message)`` is called once per device."""
    import pandas as pd

    from perfcast.estimate.sweep import SweepResult, sweep

    plan = check_sweep(model, hardware, tp=tp, ep=ep, pp=pp, dp_attention=dp_attention,
                       precision=precision, isl=isl, osl=osl, concurrency=concurrency,
                       show_all=show_all)
    specs = plan.pop("hardware")
    parts = []
    for k, spec in enumerate(specs):
        if progress is not None:
            progress(k / len(specs), f"sweeping {spec.name}")
        try:
            parts.append(sweep(hardware=[spec], engine=engine, **plan))
        except ValueError as exc:
            raise BadInput("request", str(exc)) from None
    frames = [p.frame for p in parts if len(p.frame)]  # an empty frame would make
    frame = (pd.concat(frames, ignore_index=True) if frames  # bool columns float
             else parts[0].frame)
    result = SweepResult(plan["model"].name, frame, _merge_skips(parts),
                         sum(p.elapsed_s for p in parts))
    if result.evaluated == 0:
        reasons = sorted({s.reason for s in result.skipped})
        raise BadInput("request", "nothing to evaluate: every configuration was skipped: "
                                  + "; ".join(reasons))
    return {**result.to_dict(show_all), "files": []}


def check_sweep(model: str, hardware: Sequence[str], *, tp: Sequence[int],
                ep: Sequence[int] | None, pp: Sequence[int], dp_attention: str,
                precision: Sequence[str], isl: Sequence[int], osl: Sequence[int],
                concurrency: Sequence[int], show_all: bool = False,
                engine: str = "fitted") -> dict[str, Any]:
    """Validate the arguments of :func:`llm_sweep` (fast); returns the resolved ones
    (``engine`` is checked by the request schema and passed on separately)."""
    cfg = _llm_model(model)
    specs = list({s.name: s for s in (_hardware_spec("hardware", h) for h in hardware)}.values())
    if not specs:
        raise BadInput("hardware", "give at least one catalog device")
    precs = [_precision(p) for p in dict.fromkeys(precision)]
    if not precs:
        raise BadInput("precision", "give at least one precision")
    modes = {"off": [False], "on": [True], "both": [False, True]}
    if dp_attention not in modes:
        raise BadInput("dp_attention", f"must be off, on or both, got {dp_attention!r}")
    lists = {"tp": tp, "pp": pp, "isl": isl, "osl": osl, "concurrency": concurrency,
             **({"ep": ep} if ep is not None else {})}
    for field, values in lists.items():
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                             for v in values):
            raise BadInput(field, f"must be a non-empty list of positive integers, got "
                                  f"{list(values)!r}")
    eps = len(set(ep)) if ep is not None else max(_divisors(t) for t in tp)
    size = (len(specs) * len(precs) * len(set(tp)) * eps * len(set(pp))
            * len(modes[dp_attention]) * len(set(concurrency)) * len(set(isl)) * len(set(osl)))
    if size > MAX_SWEEP_CONFIGURATIONS:
        raise BadInput("request", f"up to {size:,} configurations; the limit is "
                                  f"{MAX_SWEEP_CONFIGURATIONS:,} per sweep")
    if show_all and size > MAX_SWEEP_ROWS:
        raise BadInput("show_all", f"up to {size:,} rows; every row can be listed for at most "
                                   f"{MAX_SWEEP_ROWS:,} configurations (the Pareto front for "
                                   "any size)")
    return {"model": cfg, "hardware": specs, "concurrency": list(concurrency), "tp": list(tp),
            "ep": None if ep is None else list(ep), "pp": list(pp),
            "dp_attention": modes[dp_attention], "precision": precs, "isl": list(isl),
            "osl": list(osl)}


def _divisors(n: int) -> int:
    return sum(n % d == 0 for d in range(1, n + 1))


def _merge_skips(parts: Sequence[Any]) -> list[Any]:
    """Skips of per-device sweeps as one sweep reports them: each invalid layout once,
    its configurations summed over devices; device-specific skips in device order."""
    from dataclasses import replace

    layouts: dict[tuple, Any] = {}
    others = []
    for part in parts:
        for s in part.skipped:
            if s.kind != "layout":
                others.append(s)
                continue
            key = (s.layout, s.reason)
            seen = layouts.get(key)
            layouts[key] = s if seen is None else replace(
                seen, configurations=seen.configurations + s.configurations)
    return [*layouts.values(), *others]
