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

from perfcast.cli.errors import fail

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
) -> None:
    """Per-row predicted vs measured LLM-serving metrics (InferenceMAX, MLPerf) and the
    MAPE / median APE of throughput, TPOT, interactivity and TTFT per hardware, model and
    framework."""
    from perfcast.hardware import HardwareError
    from perfcast.validate.llm import ValidationDataError, load_rows, reconcile

    devices = [h.strip() for h in hardware.split(",") if h.strip()] if hardware else None
    try:
        rows = [row for d in (data or ["inferencemax", "mlperf"]) for row in load_rows(d)]
        result = reconcile(rows, hardware=devices)
    except (ValidationDataError, HardwareError) as exc:
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
