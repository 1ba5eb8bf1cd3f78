"""``perfcast validate kernels``: predicted vs measured time of each kernel on this CPU, for
PyTorch eager or perfcast's runtime (``--engine``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.errors import fail
from perfcast.cli.store import DbOption

if TYPE_CHECKING:
    from perfcast.validate.kernels import KernelReport

ENGINES = ("eager", "perfcast")
TARGET_HELP = ("examples:NAME or path/to/file.py:factory returning (model, example_inputs); "
               "built and run on this machine's CPU.")


def kernels(
    target: Annotated[str, typer.Argument(help=TARGET_HELP)],
    batch: Annotated[int, typer.Option(min=1, help="Batch size of the example inputs.")] = 1,
    seq_len: Annotated[int, typer.Option(
        "--seq-len", min=1, help="Sequence length (built-in transformer examples).")] = 32,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="Threads PyTorch runs with; default: its current count.")]
    = None,
    top: Annotated[int, typer.Option(min=1, help="Worst kernels to list.")] = 20,
    engine: Annotated[str, typer.Option(
        "--engine", help="'eager': PyTorch under the profiler against the eager target; "
                         "'perfcast': the runtime's timed steps against the perfcast "
                         "target, one to one.")] = "eager",
    profile: Annotated[str, typer.Option(
        "--profile", help="Calibration profile the estimate uses: 'latest' (newest in the "
                          "store), a file, or 'none' (theoretical).")] = "latest",
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]
    = False,
) -> None:
    """Run TARGET in PyTorch eager under the profiler, map the measured aten ops onto the
    estimated eager kernels ('local' hardware, with the calibration profile) and compare
    them kernel by kernel and per op category. The profiler adds tens of microseconds to
    each op it records: small kernels read slower than they run. With --engine perfcast,
    TARGET is compiled by perfcast's runtime and each step is timed in its dispatch loop
    against the perfcast target's kernel for that step."""
    if engine not in ENGINES:
        fail(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    report = _measure(target, batch=batch, seq_len=seq_len, threads=threads, profile=profile,
                      db=db, engine=engine)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print(report, top)


def _measure(target: str, *, batch: int, seq_len: int, threads: int | None, profile: str,
             db: Path | None, engine: str) -> KernelReport:
    """The report, or exit 2 with the reason the target could not be built or estimated."""
    import torch

    from perfcast.calibrate import ProfileError
    from perfcast.cli.analyze import local_setup
    from perfcast.frontends import CaptureError
    from perfcast.hardware import HardwareError, load_spec
    from perfcast.runtime import BackendUnavailable, RuntimeLoweringError
    from perfcast.validate.kernels import measure_target
    from perfcast.validate.kernels_runtime import measure_runtime_target

    measure = measure_runtime_target if engine == "perfcast" else measure_target
    try:
        spec, efficiency, _ = local_setup(load_spec("local"), threads or torch.get_num_threads(),
                                          profile, db)
        return measure(target, batch=batch, seq_len=seq_len, threads=threads,
                       hardware=spec, efficiency=efficiency)
    except (CaptureError, HardwareError, ProfileError, BackendUnavailable,
            RuntimeLoweringError) as exc:
        fail(str(exc))


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f}"


def _print(report: KernelReport, top: int) -> None:
    out = Console(highlight=False)
    matched = report.matched
    out.print(f"[bold]{escape(report.model)}[/bold] ({report.engine}): batch {report.batch}, "
              f"{report.threads} threads, {len(matched)}/{len(report.matches)} kernels matched, "
              f"forward {_us(report.measured_total_s)} us, "
              f"{_us(sum(report.unmatched_measured.values()))} us in unmatched ops")
    worst = Table(title=f"worst {top} kernels by absolute error", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("kernel", "module", "predicted us", "measured us", "error %"):
        worst.add_column(name, justify="left" if name in ("kernel", "module") else "right")
    for m in report.worst(top):
        error = "-" if m.error is None else f"{100 * m.error:+.0f}"
        worst.add_row(escape(m.kernel), escape(m.module or "-"), _us(m.predicted_s),
                      _us(m.measured_s), error)
    out.print(worst)
    cats = Table(title="per category (matched kernels)", title_justify="left",
                 box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("category", "kernels", "predicted us", "measured us", "APE %"):
        cats.add_column(name, justify="left" if name == "category" else "right")
    for cat, row in report.by_category().items():
        ape = "-" if row["ape"] is None else f"{100 * row['ape']:.0f}"
        cats.add_row(escape(cat), str(row["kernels"]), _us(row["predicted_s"]),
                     _us(row["measured_s"]), ape)
    out.print(cats)
