"""``perfcast optimize TARGET``: try the ways to run a model here, keep the fastest valid one."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from perfcast.cli.analyze import TARGETS_HELP, local_setup
from perfcast.cli.calibrate import parse_duration
from perfcast.cli.errors import fail
from perfcast.cli.options import BatchOption, SeqLenOption
from perfcast.cli.store import DbOption, open_store

PIPE_WIDTH = 170  # columns of the table when stdout is a file or pipe
HARDWARE_CHOICES = {"this": "auto", "local": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}


def optimize(
    target: Annotated[str, typer.Argument(help=TARGETS_HELP)],
    hardware: Annotated[str, typer.Option(
        "--hardware", "-H", help="'this' (or 'local'): the GPU when torch sees one, else the "
                                 "CPU; 'cpu' or 'cuda' to choose.")] = "this",
    budget: Annotated[str, typer.Option(
        "--budget", help="Time for the whole search, e.g. 90s, 5m.")] = "5m",
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="Threads for PyTorch, ONNX Runtime and the perfcast runtime "
                                 "(default: torch's).")] = None,
    batch: BatchOption = None,
    seq_len: SeqLenOption = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Try only this candidate (repeatable; eager always runs).")] = None,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help="Do not try this candidate (repeatable).")] = None,
    tolerance: Annotated[list[str] | None, typer.Option(
        "--tolerance", help="DTYPE=VALUE: largest accepted max error relative to the largest "
                            "reference value, e.g. bfloat16=0.05 (repeatable).")] = None,
    measure_all: Annotated[bool, typer.Option(
        "--all", help="Also measure candidates the estimator predicts slower.")] = False,
    profile: Annotated[str, typer.Option(
        "--profile", help="Calibration profile for the estimator's ranking on the CPU: "
                          "'latest', a file, or 'none'.")] = "latest",
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write the report to this file (.md: Markdown, .json: "
                         "JSON).")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Enumerate the candidates that apply here (eager, torch.compile modes, autocast,
    channels_last, SDPA, int8, ONNX Runtime, perfcast runtime), rank them with the
    estimator, check each against eager and measure the promising ones within the budget;
    report all of them and keep the run in the store."""
    from perfcast.frontends import CaptureError, load_target
    from perfcast.frontends.targets import DEFAULT_BATCH, DEFAULT_SEQ_LEN
    from perfcast.optimize import OptimizeError
    from perfcast.optimize import optimize as run_optimize
    from perfcast.optimize.report import render, to_markdown

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    device = _device(hardware)
    try:
        budget_s = parse_duration(budget)
    except ValueError as exc:
        fail(f"--budget: {exc}")
    tolerances = _tolerances(tolerance or [])
    if report_file is not None and report_file.suffix not in (".md", ".json"):
        fail(f"--report {report_file}: the file must end in .md or .json")
    try:
        import torch

        torch.manual_seed(0)
        with err.status(f"building {target} ..."):
            loaded = load_target(target, batch=batch, seq_len=seq_len, device="cpu")
        model, inputs = _to_device(loaded.model, loaded.example_inputs, device)
    except CaptureError as exc:
        fail(str(exc))
    spec, efficiency = _estimator_setup(device, threads, profile, db)
    store = open_store(db)
    command = shlex.join(["perfcast", *sys.argv[1:]])
    if target.startswith("examples:"):  # the sizes load_target used
        params = {"batch": batch or DEFAULT_BATCH, "seq_len": seq_len or DEFAULT_SEQ_LEN}
    else:
        params = {k: v for k, v in (("batch", batch), ("seq_len", seq_len)) if v is not None}
    try:
        with err.status("optimizing ...") as status:
            report = run_optimize(
                model, inputs, budget_s=budget_s, threads=threads, hardware=spec,
                efficiency=efficiency, only=only, skip=skip, tolerances=tolerances,
                measure_all=measure_all, store=store, name=loaded.name, params=params,
                command=command, progress=lambda msg: status.update(f"{loaded.name}: {msg} ..."))
    except OptimizeError as exc:
        fail(str(exc))
    finally:
        store.close()
    if report_file is not None:
        text = (json.dumps(report.to_dict(), indent=2) if report_file.suffix == ".json"
                else to_markdown(report))
        report_file.write_text(text)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        out = Console(highlight=False)
        render(out if out.is_terminal else Console(highlight=False, width=PIPE_WIDTH), report)


def _device(hardware: str) -> str:
    choice = HARDWARE_CHOICES.get(hardware)
    if choice is None:
        fail(f"--hardware {hardware!r}: optimize measures candidates on this machine; use "
             "this (or local), cpu or cuda")
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        fail("--hardware cuda: torch sees no CUDA device here")
    return choice


def _tolerances(items: list[str]) -> dict[str, float]:
    from perfcast.optimize import TOLERANCES

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or key not in TOLERANCES or not number > 0:
            fail(f"--tolerance {item!r} must be DTYPE=VALUE with DTYPE one of "
                 f"{', '.join(TOLERANCES)} and VALUE > 0")
        out[key] = number
    return out


def _to_device(model: Any, inputs: Any, device: str) -> tuple[Any, tuple]:
    import torch

    if isinstance(inputs, Mapping):
        fail("optimize needs positional example inputs (a tensor or a tuple), not keyword "
             "inputs")
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    if device == "cpu":
        return model, inputs
    moved = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
    return model.to(device), moved


def _estimator_setup(device: str, threads: int | None, profile: str,
                     db: Path | None) -> tuple[Any, Any]:
    """(spec, efficiency) the ranking estimates with: this CPU with its calibration profile,
    or the GPU's catalog entry (None when it has none)."""
    if device == "cuda":
        from perfcast.hardware.detect import detect_gpu

        gpu = detect_gpu()
        return (gpu.spec if gpu is not None else None), None
    import torch

    from perfcast.hardware.detect import detect_local

    spec, efficiency, _ = local_setup(detect_local(), threads or torch.get_num_threads(),
                                      profile, db)
    return spec, efficiency
