"""``perfcast calibrate --from-measurements DIR``: fit GPU profiles from published tables;
``perfcast calibrate --gpu``: measure this machine's GPU with PyTorch, then fit the same way."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail

MEASURED_DIR = Path(".perfcast") / "gpu-measurements"  # where calibrate --gpu keeps its tables


def calibrate_from_measurements(root: Path, output: Path | None, systems: str | None,
                                engines: str | None, as_json: bool) -> None:
    """Fit one profile per (GPU, engine) from the tables under ``root`` and write them."""
    from perfcast.calibrate.from_measurements import fit_measurements
    from perfcast.calibrate.measurements import MeasurementError
    from perfcast.estimate.gpu_profile import ENGINES, user_profile_dir

    engine_list = [e.strip() for e in engines.split(",")] if engines else None
    bad = [e for e in engine_list or [] if e not in ENGINES]
    if bad:
        fail(f"--engines {engines!r}: unknown {bad}; choose from {', '.join(ENGINES)}")
    out_dir = output or user_profile_dir()
    err = Console(stderr=True, highlight=False)
    try:
        report = fit_measurements(
            root, out_dir, systems=[s.strip() for s in systems.split(",")] if systems else None,
            engines=engine_list,
            progress=None if as_json else lambda m: err.print(f"fitting {escape(m)}"))
    except MeasurementError as exc:
        fail(str(exc))
    if not report.profiles:
        fail(f"{root}: no profile fitted ({'; '.join(report.read.skipped) or 'no tables'})")
    _summarize(report, out_dir, as_json)


def calibrate_this_gpu(budget: str, engine: str, output: Path | None, as_json: bool) -> None:
    """Measure this machine's CUDA GPU with PyTorch for ``budget`` (e.g. 90s, 10m), keep the
    tables under ``.perfcast/gpu-measurements/`` and fit a profile for ``engine`` from them
    (PyTorch's kernels standing in for that engine's)."""
    import pyarrow.parquet as pq

    from perfcast.calibrate.from_measurements import fit_measurements
    from perfcast.calibrate.gpu_collect import collect
    from perfcast.cli.calibrate import parse_duration
    from perfcast.estimate.gpu_profile import SHIPPED, profile_filename, user_profile_dir

    try:
        budget_s = parse_duration(budget)
    except ValueError as exc:
        fail(f"--budget: {exc}")
    root = MEASURED_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    out_dir = output or user_profile_dir()
    err = Console(stderr=True, highlight=False)
    try:
        system_dir = collect(root, budget_s=budget_s, engine=engine,
                             progress=None if as_json else lambda m: err.print(escape(m)))
        import torch

        source = (f"measured on this machine by perfcast calibrate --gpu with PyTorch "
                  f"{torch.__version__} kernels standing in for {engine}; tables in {root}")
        report = fit_measurements(
            root, None, systems=[system_dir.name], engines=[engine], source=source,
            progress=None if as_json else lambda m: err.print(f"fitting {escape(m)}"))
    except ValueError as exc:  # bad input, no CUDA GPU, or unreadable tables
        fail(str(exc))
    if not any(p.fits for p in report.profiles):
        fail(f"no profile fitted from the tables in {root} ("
             f"{'; '.join(report.read.skipped + report.read.notes) or 'no tables'}); "
             "give a larger --budget")
    for p in report.profiles:  # written only now: an empty profile would hide a packaged one
        name = profile_filename(p.gpu, p.engine)
        report.written.append(p.save(out_dir / name))
        if (SHIPPED / name).exists():
            report.read.notes.append(f"{out_dir / name} takes precedence over the packaged "
                                     f"{name} (fitted from {engine}'s own kernels) for the "
                                     "kernels it measured; the packaged fits time the rest")
    measured = {str(path): pq.read_metadata(path).num_rows
                for path in sorted(system_dir.rglob("*.parquet"))}
    _summarize(report, out_dir, as_json, measured)


def _summarize(report: Any, out_dir: Path, as_json: bool,
               measured: dict[str, int] | None = None) -> None:
    """Print the profiles written (and the tables measured), as text or JSON."""
    summary: dict[str, Any] = {
        "profiles": [{"gpu": p.gpu, "engine": p.engine, "path": str(path),
                      "fits": len(p.fits), "worst_fit": _worst(p)}
                     for p, path in zip(report.profiles, report.written, strict=True)],
        "skipped": report.read.skipped, "notes": report.read.notes,
    }
    if measured is not None:
        summary["measured"] = [{"table": path, "rows": rows} for path, rows in measured.items()]
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = Console(highlight=False)
    for path, rows in (measured or {}).items():
        out.print(f"measured: {rows} rows -> {escape(path)}")
    for p, path in zip(report.profiles, report.written, strict=True):
        out.print(f"{p.name}: {len(p.fits)} fits -> {escape(str(path))} (worst on its own "
                  f"points: {_worst(p)})")
    for line in report.read.skipped:
        out.print(f"[yellow]skipped: {escape(line)}[/yellow]")
    for line in report.read.notes:
        out.print(f"note: {escape(line)}")
    out.print(f"estimates use these profiles with --engine (fits in {escape(str(out_dir))} "
              "take precedence over the packaged ones)")


def _worst(profile) -> str:
    """The fit with the largest error on its own points, as text."""
    if not profile.fits:
        return "no fits"
    fit = max(profile.fits.values(), key=lambda f: f.fit_mape)
    return f"{fit.form} {fit.key} {fit.fit_mape:.1%}"
