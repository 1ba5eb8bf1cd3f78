"""``perfcast calibrate``: fit this machine's efficiency profile from microbenchmarks."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from perfcast.cli.errors import fail
from perfcast.cli.store import DbOption, open_store

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """``"10m"`` → 600.0; ``"90s"``, ``"1.5h"`` and bare seconds also work."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"duration {text!r} is not a positive number with an optional unit "
                         "s, m or h (e.g. 90s, 10m)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` → [1, 2]."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"--threads {text!r} must be positive integers separated by commas")
    return values


def calibrate(
    hardware: Annotated[str, typer.Option(
        "--hardware", "-H", help="Only 'this' (or 'local'): calibration measures this "
                                 "machine.")] = "this",
    budget: Annotated[str, typer.Option(
        "--budget", help="Time to spend measuring, e.g. 90s, 10m.")] = "10m",
    threads: Annotated[str | None, typer.Option(
        "--threads", help="Thread counts to calibrate, e.g. 1,2 (default: 1 and all "
                          "cores).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write the profile here (.json or .yaml).")] = None,
    refit: Annotated[str | None, typer.Option(
        "--refit", help="Fit a new profile version from a stored calibration run (its id, or "
                        "'latest') without measuring anything.")] = None,
    accept_poor_fit: Annotated[bool, typer.Option(
        "--accept-poor-fit", help="Make the profile the default for -H local even when a fit "
                                  "is poor (RMS error above 100% on its own points).")] = False,
    allow_incomplete: Annotated[bool, typer.Option(
        "--allow-incomplete", help="--refit a run that did not complete (killed or "
                                   "failed).")] = False,
    from_measurements: Annotated[Path | None, typer.Option(
        "--from-measurements", help="Fit GPU kernel profiles from published measurement "
                                    "tables in DIR (<system>/<op>/<framework>/<version>/"
                                    "<table>.parquet) instead of measuring; -o is then a "
                                    "directory (default .perfcast/gpu_profiles).")] = None,
    systems: Annotated[str | None, typer.Option(
        "--systems", help="With --from-measurements: only these system directories, "
                          "e.g. h100_sxm,b200_sxm.")] = None,
    engines: Annotated[str | None, typer.Option(
        "--engines", help="With --from-measurements: only these engines "
                          "(trtllm,sglang,vllm).")] = None,
    gpu: Annotated[str | None, typer.Option(
        "--gpu", help="Measure this machine's CUDA GPU (GEMM, attention, all-reduce when "
                      "torch.distributed runs) within --budget with PyTorch's kernels, "
                      "standing in for ENGINE (trtllm|sglang|vllm), and fit a GPU profile "
                      "like --from-measurements does.")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Measure GEMM, conv, attention, elementwise, reduction, norm and copy kernels on this
    machine within the budget, fit achieved rate vs size per op category, dtype and
    thread count, and store the profile (the store and a portable JSON file).

    With --from-measurements DIR: fit per-(GPU, engine) kernel profiles from published
    GPU kernel tables instead (no measuring)."""
    if from_measurements is not None:
        from perfcast.cli.calibrate_measured import calibrate_from_measurements

        calibrate_from_measurements(from_measurements, output, systems, engines, as_json)
        return
    if gpu is not None:
        from perfcast.cli.calibrate_measured import calibrate_this_gpu

        calibrate_this_gpu(budget, gpu, output, as_json)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from perfcast.calibrate.run import calibrate as run_calibration
    from perfcast.calibrate.run import refit as refit_run
    from perfcast.hardware.catalog import LOCAL_NAMES
    from perfcast.store import StoreError

    if hardware not in LOCAL_NAMES:
        fail(f"--hardware {hardware!r}: calibration measures this machine; use 'this' and "
             "copy the profile file to attach it elsewhere")
    try:
        budget_s = parse_duration(budget)
        thread_counts = parse_threads(threads) if threads else None
    except ValueError as exc:
        fail(str(exc))
    store = open_store(db)
    command = shlex.join(["perfcast", *sys.argv[1:]])
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, disable=as_json)
    try:
        if refit is not None:
            result = refit_run(store, _calibration_run(store, refit), output=output,
                               allow_incomplete=allow_incomplete,
                               accept_poor_fit=accept_poor_fit)
        else:
            with bar:
                task = bar.add_task("calibrating", total=1.0)
                result = run_calibration(
                    store, budget_s=budget_s, threads=thread_counts, output=output,
                    command=command, accept_poor_fit=accept_poor_fit,
                    on_point=lambda what, done: bar.update(task, completed=done,
                                                           description=escape(what[:60])))
    except KeyboardInterrupt:
        fail("calibration interrupted: the run is marked failed and no profile was written")
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    finally:
        store.close()
    summary = {"run_id": result.run_id, "profile": str(result.profile_path),
               "version": result.version, "hardware": result.profile.hardware_key,
               "default": result.default, "poor_fits": result.poor_fits,
               "points": len(result.points), "elapsed_s": result.elapsed_s,
               "threads": result.profile.threads_available(),
               "overhead_s": {str(k): v for k, v in result.profile.overhead_s.items()},
               "curves": sorted({"/".join(map(str, key)) for key in
                                 [*result.profile.compute, *result.profile.memory]}),
               "shape_models": {"/".join(map(str, k)): m.to_dict()
                                for k, m in result.profile.shape.items()},
               "element_cost_s": {"/".join(map(str, k)): c
                                  for k, c in result.profile.element_cost.items()},
               "element_fixed_s": {"/".join(map(str, k)): c
                                   for k, c in result.profile.element_fixed_s.items()},
               "composite": {str(t): f.to_dict() for t, f in result.profile.composite.items()}}
    if not result.default:
        Console(stderr=True).print(
            f"[yellow]profile v{result.version} has poor fits ("
            f"{escape('; '.join(result.poor_fits))}): stored, but not the default for -H "
            f"local; use it with --profile {result.version} (or calibrate with "
            "--accept-poor-fit)[/yellow]")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = Console(highlight=False)
    out.print(f"calibrated {summary['hardware']} from {summary['points']} measurements in "
              f"{result.elapsed_s:.0f} s (run {result.run_id})")
    out.print("per-kernel overhead: " + ", ".join(
        f"{t} thread(s) {v * 1e6:.1f} µs" for t, v in result.profile.overhead_s.items()))
    if result.profile.reference:
        out.print("reference kernels (geometric mean of the start and end timings): " + "; ".join(
            f"{t} thread(s) " + ", ".join(
                f"{k} {v * 1e3:.2f} ms ({result.reference_change.get(t, {}).get(k, 0.0):+.0%} "
                "end vs start)" for k, v in kernels.items())
            for t, kernels in result.profile.reference.items()))
    for key, model in result.profile.shape.items():
        name = "/".join(map(str, key))
        out.print(f"{name} shape model: {model.rate / 1e9:.0f} GFLOP/s with full tiles, "
                  f"half-full at M={model.half_m:.1f} N={model.half_n:.1f} "
                  f"K={model.half_k:.1f}, packing x{model.memory_weight:.2f} of streaming"
                  + (f", channels in blocks of {model.block}" if model.block > 1 else "")
                  + (f", packing x (N/K)^{model.aspect:.2f}" if model.aspect else "")
                  + f"; RMS error {model.rel_rmse:.0%} on {model.n_points} shapes")
    fixed = result.profile.element_fixed_s
    costs = ", ".join(f"{'/'.join(map(str, k))} {c * 1e9:.2f} ns"
                      + (f" + {fixed[k] * 1e6:.1f} µs" if fixed.get(k, 0.0) >= 5e-7 else "")
                      for k, c in result.profile.element_cost.items())
    if costs:
        out.print(f"per-element cost: {costs}")
    for t, fit in result.profile.composite.items():
        factors = ", ".join(f"{g} ×{v:.2f}" for g, v in fit.scale.items())
        out.print(f"whole-network check, {t} thread(s), {fit.n_nets} synthetic networks: RMS "
                  f"error of the estimate {fit.micro_rel_rmse:.0%}; per-group factors that "
                  f"would fit them (not applied: see docs/calibrate.md): {factors}")
    if not result.profile.composite:
        out.print("[yellow]no whole-network check: the budget ended before enough synthetic "
                  "networks were measured (give a larger --budget)[/yellow]")
    out.print(f"{len(summary['curves'])} curves; profile v{result.version} stored and written "
              f"to {escape(str(result.profile_path))}")


def _calibration_run(store: Any, which: str) -> str:
    """The id of the calibration run ``which`` names ('latest' or an id)."""
    if which != "latest":
        return which
    for run in store.runs(limit=None):
        if "calibration" in (run.meta or {}):
            return run.id
    raise ValueError("--refit latest: the store has no calibration run")
