"""``perfcast analyze TARGET --hardware NAME``: how fast a model runs there, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail
from perfcast.cli.options import BatchOption, EngineOption, SeqLenOption
from perfcast.cli.store import DbOption, open_store

TARGETS_HELP = ("examples:NAME (see `perfcast analyze --list-examples`), zoo:NAME (see "
                "`perfcast validate zoo --list`), path/to/config.json (a Hugging Face config), "
                "path/to/model.tflite or .onnx, or path/to/file.py:factory returning "
                "(model, example_inputs)")


def analyze(
    target: Annotated[str | None, typer.Argument(help=TARGETS_HELP)] = None,
    hardware: Annotated[list[str] | None, typer.Option(
        "--hardware", "-H",
        help="Catalog device, alias, YAML path or 'local'; repeatable.")] = None,
    dtype: Annotated[str | None, typer.Option(
        help="Precision of weights and activations (fp32, bf16, fp16...); "
             "default: the model's own.")] = None,
    batch: BatchOption = None,
    seq_len: SeqLenOption = None,
    fusion: Annotated[str, typer.Option(
        "--fusion", "--target",
        help="Fusion target: eager, compile or perfcast (--target is the old, deprecated "
             "name of this option; TARGET names the model).")] = "eager",
    top: Annotated[int, typer.Option(min=1, help="Kernels to list in the report.")] = 10,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="Threads PyTorch runs with ('local' hardware only).")] = None,
    profile: Annotated[str, typer.Option(
        "--profile", help="Calibration profile for 'local': 'latest' (newest in the store "
                          "with good fits), a stored version (3), a file, or 'none'.")
    ] = "latest",
    engine: EngineOption = "fitted",
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
    list_examples: Annotated[bool, typer.Option(
        "--list-examples", help="List the built-in examples and exit.")] = False,
) -> None:
    """Estimate latency, FLOPs, bytes, memory and energy of a model on catalog hardware."""
    from perfcast.cli.report import render_comparison, render_estimate
    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.estimate.engine_profiles import EngineError
    from perfcast.frontends import CaptureError, load_target
    from perfcast.hardware import HardwareError, load_spec
    from perfcast.ir import DTypeError
    from perfcast.passes import UnknownTargetError

    out, err = Console(highlight=False), Console(stderr=True, highlight=False, soft_wrap=True)
    if list_examples:
        _print_examples(out)
        return
    if target is None:
        fail("missing TARGET: " + TARGETS_HELP)
    try:
        specs = [load_spec(h) for h in (hardware or ["h100-sxm"])]
        if target.endswith((".tflite", ".onnx")):
            with err.status(f"reading {target} ..."):
                prepared = _prepare_file(Path(target), batch, dtype)
        else:
            with err.status(f"building {target} ..."):
                loaded = load_target(target, batch=batch, seq_len=seq_len)
            with err.status(f"capturing {loaded.name} with torch.export ...") as status:
                prepared = prepare(loaded.model, loaded.example_inputs, dtype=dtype,
                                   name=loaded.name, progress=lambda msg: status.update(
                                       f"{loaded.name}: {msg} ..."))
        results = []
        for spec, model, label in (local_setup(s, threads, profile, db) for s in specs):
            model, note = with_engine_profile(spec, model, engine)
            result = estimate_prepared(prepared, spec, target=fusion, efficiency=model)
            result.notes.extend(n for n in (f"calibrated with {label}" if label else "", note)
                                if n)
            results.append(result)
    except (HardwareError, CaptureError, DTypeError, UnknownTargetError, EngineError) as exc:
        fail(str(exc))
    if as_json:
        payload = [r.to_dict() for r in results]
        typer.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
        return
    for result in results:
        render_estimate(out, result, top=top)
    if len(results) > 1:
        render_comparison(out, results, specs)


def _prepare_file(path: Path, batch: int | None, dtype: str | None) -> Any:
    """A .tflite (fixed shapes and types) or .onnx file, ready to estimate."""
    from perfcast.estimate.analyze import prepare_graph
    from perfcast.frontends import CaptureError

    if not path.is_file():
        raise CaptureError(f"model file {str(path)!r} does not exist")
    if path.suffix == ".tflite":
        from perfcast.frontends.tflite_import import import_tflite

        return prepare_graph(import_tflite(path))
    from perfcast.frontends.onnx_import import import_onnx

    cap = import_onnx(path.read_bytes(), name=path.stem, batch=batch or 1, dtype=dtype)
    return prepare_graph(cap, dtype=dtype)


def with_engine_profile(spec: Any, model: Any, engine: str) -> tuple[Any, str]:
    """The kernel-time model with ``engine``'s measured GPU profile of ``spec`` in front
    (GEMMs and attention; the rest as before), and a note saying which profile was used."""
    from perfcast.estimate.engine_profiles import FITTED, check_engine, engine_profile
    from perfcast.estimate.kernel_time import as_time_model
    from perfcast.estimate.measured_time import MeasuredTime

    if check_engine(engine) == FITTED or spec.kind != "gpu":
        return model, ""
    found = engine_profile(spec, engine)
    if found is None:
        return model, f"no measured {engine} profile for {spec.name}: datasheet roofline"
    return MeasuredTime(found, as_time_model(model)), f"kernel times from measured profile " \
        f"{found.name} (GEMM and attention; other kernels by the roofline)"


def local_setup(spec: Any, threads: int | None, profile: str, db: Path | None) -> tuple:
    """(spec, efficiency, profile label) for one device: 'local' gets the profile and
    thread count; the label names the profile used ("" when none)."""
    if spec.name != "local":
        return spec, None, ""
    from perfcast.calibrate.model import apply_profile
    from perfcast.cli.profiles import resolve_profile
    from perfcast.hardware.detect import scale_to_threads

    count = threads or spec.cores or 1
    store = open_store(db) if profile != "none" and not Path(profile).exists() else None
    try:
        loaded, foreign, label = resolve_profile(profile, store)
    finally:
        if store is not None:
            store.close()
    if loaded is None:
        return scale_to_threads(spec, count), None, ""
    return (*apply_profile(spec, loaded, count, foreign=foreign), label)


def _print_examples(out: Console) -> None:
    from perfcast.examples import list_examples

    for ex in list_examples():
        out.print(f"examples:{ex.name:14s} {escape(ex.description)}  "
                  f"[dim]({escape(ex.source)})[/dim]")


