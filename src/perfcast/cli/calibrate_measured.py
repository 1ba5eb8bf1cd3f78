"""``perfcast calibrate --from-measurements DIR``: fit GPU profiles from published tables."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail


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
    summary = {
        "profiles": [{"gpu": p.gpu, "engine": p.engine, "path": str(path),
                      "fits": len(p.fits), "worst_fit": _worst(p)}
                     for p, path in zip(report.profiles, report.written, strict=True)],
        "skipped": report.read.skipped, "notes": report.read.notes,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = Console(highlight=False)
    for p, path in zip(report.profiles, report.written, strict=True):
        out.print(f"{p.name}: {len(p.fits)} fits -> {escape(str(path))} (worst on its own "
                  f"points: {_worst(p)})")
    for line in report.read.skipped:
        out.print(f"[yellow]skipped: {escape(line)}[/yellow]")
    for line in report.read.notes:
        out.print(f"note: {escape(line)}")
    out.print(f"estimates use these profiles with --engine (profiles in {escape(str(out_dir))} "
              "take precedence over the packaged ones)")


def _worst(profile) -> str:
    """The fit with the largest error on its own points, as text."""
    fit = max(profile.fits.values(), key=lambda f: f.fit_mape)
    return f"{fit.form} {fit.key} {fit.fit_mape:.1%}"
