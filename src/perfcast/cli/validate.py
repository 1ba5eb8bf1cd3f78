"""``perfcast validate``: reconcile perfcast's estimates with published measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli import validate_kernels, validate_zoo
from perfcast.cli.errors import fail
from perfcast.cli.store import DbOption, open_store

app = typer.Typer(help="Compare perfcast's estimates with published benchmark results.",
                  no_args_is_help=True)

DATA_HELP = ("A bundled table (inferencemax, mlperf) or a CSV path in either format; "
             "repeatable. Default: both bundled tables.")



@app.command("llm")
def llm(
    data: Annotated[list[str] | None, typer.Option("--data", "-d", help=DATA_HELP)] = None,
    hardware: Annotated[str | None, typer.Option(
        "--hardware", "-H", help="Only rows on these devices (comma-separated catalog "
                                 "names or aliases, e.g. h100,h200).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the full result (counts, statistics, rows) as JSON.")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Also write a Markdown report (with every row) to this path.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="Kernel times: fitted (default), row (each row's own engine's "
                         "measured GPU profile, where one exists), or trtllm|sglang|vllm "
                         "for all rows.")] = "fitted",
) -> None:
    """Per-row predicted vs measured LLM-serving metrics (InferenceMAX, MLPerf) and the
    MAPE / median APE of throughput, TPOT, interactivity and TTFT per hardware, model and
    framework."""
    from perfcast.estimate.engine_profiles import EngineError, check_engine
    from perfcast.hardware import HardwareError
    from perfcast.validate.llm import ValidationDataError, load_rows, reconcile

    devices = [h.strip() for h in hardware.split(",") if h.strip()] if hardware else None
    try:
        rows = [row for d in (data or ["inferencemax", "mlperf"]) for row in load_rows(d)]
        if engine != "row":
            check_engine(engine)
        result = reconcile(rows, hardware=devices, engine=engine)
    except (ValidationDataError, HardwareError, EngineError) as exc:
        fail(str(exc))
    if report is not None:
        try:
            report.write_text(result.to_markdown())
        except OSError as exc:
            fail(f"cannot write {report}: {exc}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print(result)
    if report is not None:
        Console(stderr=True, highlight=False).print(f"report written to {escape(str(report))}")


_SHORT = {"throughput_per_gpu": "tput/GPU", "output_throughput_per_gpu": "out/GPU",
          "tpot_s": "TPOT", "interactivity": "intvty", "ttft_s": "TTFT"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def _print(result) -> None:
    from perfcast.validate.llm import GROUPS, METRICS

    out = Console(highlight=False)
    for source in result.sources:
        part = result.subset(source)
        c = part.counts()
        out.print(f"[bold]{escape(source)}[/bold]: {c['rows']} rows: {c['ok']} ok, "
                  f"{c['skipped']} skipped, {c['infeasible']} infeasible, {c['error']} error")
        for status in ("skipped", "infeasible", "error"):
            for reason, n in part.reasons(status).items():
                out.print(f"  {status} {n:>4}  {escape(reason)}")
        summary = part.summary()
        groups = {"overall": {"all": summary["overall"]},
                  **{attr: summary[key] for attr, key in GROUPS.items()}}
        for title, stats in groups.items():
            if not stats:
                continue
            scope = "" if title == "overall" else f" by {title}"
            table = Table(title=f"{source}{scope}: MAPE/median APE in %",
                          title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
            table.add_column(title)
            table.add_column("rows", justify="right")
            for m in METRICS:
                table.add_column(_SHORT[m], justify="right")
            for name, s in stats.items():
                table.add_row(escape(name), str(max(s[m]["count"] for m in METRICS)), *(
                    f"{_pct(s[m]['mape'])}/{_pct(s[m]['median_ape'])}" if s[m]["count"]
                    else "-" for m in METRICS))
            out.print(table)


@app.command("models")
def models(
    names: Annotated[list[str] | None, typer.Option(
        "--models", "-m", help="Zoo model names (see --list) or path/to/file.py:factory; "
                               "repeatable. Default: the whole zoo.")] = None,
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes, e.g. 1,8.")] = "1,8",
    threads: Annotated[str, typer.Option("--threads", help="Thread counts, e.g. 1,2.")] = "1,2",
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Profile file, 'latest' (this machine's newest in the store) or "
                          "'none' (THEORETICAL only).")] = "latest",
    rounds: Annotated[int, typer.Option(
        "--rounds", min=1, help="Times each case is measured, in rounds over all cases; the "
                                "fastest round counts, the spread is reported.")] = 3,
    db: DbOption = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Directory for the Markdown report and plot (default: "
                         ".perfcast/reports/validate-models).")] = None,
    list_models: Annotated[bool, typer.Option("--list", help="List the zoo and exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help='Print {"models": [{"name", "batch", "threads", "predicted_s", '
                       '"measured_s", "ape", "confidence", ...}], "mape", "median_ape", '
                       '"within_10pct", "theoretical": {...}, "machine": {"drift": '
                       '{threads: {kernel: now / at calibration - 1}}, ...}}.')] = False,
) -> None:
    """Predict PyTorch eager latency of each model on this CPU (with the calibration
    profile, and THEORETICAL beside it), measure it, and report APE, MAPE, median APE and
    the share within ±10%; results go to the store and a report file."""
    from perfcast.cli.calibrate import parse_threads
    from perfcast.cli.profiles import resolve_profile
    from perfcast.validate.models import render_markdown, validate_models, write_report
    from perfcast.validate.zoo import ZOO

    if list_models:
        for model in ZOO.values():
            typer.echo(f"{model.name:12s} {model.kind:12s} {model.description}")
        return
    try:
        batches, thread_counts = parse_threads(batch), parse_threads(threads)
        builders = _builders(names or list(ZOO))
    except ValueError as exc:
        fail(str(exc).replace("--threads", "--batch/--threads"))
    store = open_store(db)
    try:
        loaded, foreign, _ = resolve_profile(profile, store)
        err = Console(stderr=True)
        with err.status("validating ...") as status:
            result = validate_models(builders, batches=batches, threads=thread_counts,
                                     profile=loaded, foreign_profile=foreign, store=store,
                                     rounds=rounds,
                                     progress=lambda what: status.update(escape(what)))
    finally:
        store.close()
    if not result.results:
        fail("no model could be validated: " + "; ".join(
            f"{k}: {v}" for k, v in result.failures.items()))
    path = write_report(result, report or Path(".perfcast") / "reports" / "validate-models")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(render_markdown(result))
    Console(stderr=True).print(f"report written to {escape(str(path))}")


def _builders(names: list[str]) -> dict:
    from perfcast.validate.zoo import ZOO

    out = {}
    for name in names:
        if name in ZOO:
            out[name] = ZOO[name].build
        elif ".py:" in name:
            out[name] = _factory_builder(name)
        else:
            import difflib

            close = difflib.get_close_matches(name, list(ZOO), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ValueError(f"unknown model {name!r}: {hint}zoo: {', '.join(ZOO)}; or give "
                             "path/to/file.py:factory")
    return out


def _factory_builder(target: str):
    def build(batch: int):
        from perfcast.frontends import load_target

        loaded = load_target(target, batch=batch, device="cpu")
        return loaded.model, loaded.example_inputs
    return build


app.command("kernels")(validate_kernels.kernels)
app.command("zoo")(validate_zoo.zoo)
