"""``perfcast llm sweep``: serving metrics over a grid and its Pareto fronts.

Registered by :mod:`perfcast.cli.llm` as ``app.command("sweep")(sweep_command)``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.errors import fail
from perfcast.cli.options import EngineOption

DEFAULT_CONCURRENCY = ",".join(str(2**i) for i in range(10))  # 1..512
_MAX_LAYOUT_REASONS = 6


class DpAttention(StrEnum):
    off = "off"
    on = "on"
    both = "both"



def _names(option: str, text: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        fail(f"{option} needs a comma-separated list without empty items, got {text!r}")
    return list(dict.fromkeys(items))


def _ints(option: str, text: str) -> list[int]:
    out = []
    for item in _names(option, text):
        try:
            value = int(item)
        except ValueError:
            fail(f"{option}: {item!r} is not an integer (expected e.g. 1,2,4,8)")
        if value < 1:
            fail(f"{option}: {value} must be at least 1")
        out.append(value)
    return out


def _table(title: str, frame, show_group: bool, show_workload: bool) -> Table:
    from perfcast.estimate.sweep import layout_label

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 0, 0, 1), pad_edge=False)
    heads = (["hardware", "precision"] if show_group else []) + (
        ["ISL/OSL"] if show_workload else []) + [
        "layout", "GPUs", "conc", "TTFT", "TPOT", "tok/s/user", "tok/s/GPU",
        "out/GPU", "GB/GPU", "$/Mtok"]
    rows = []
    for r in frame.itertuples(index=False):
        cost = r.cost_per_million_tokens_usd
        rows.append(([r.hardware, r.precision] if show_group else []) + (
            [f"{r.isl}/{r.osl}"] if show_workload else []) + [
            layout_label(r), str(r.gpus), str(r.concurrency),
            f"{r.ttft_s * 1e3:,.1f}", f"{r.tpot_s * 1e3:,.2f}", f"{r.interactivity:,.1f}",
            f"{r.throughput_per_gpu:,.0f}", f"{r.output_throughput_per_gpu:,.0f}",
            f"{r.memory_total_bytes / 1e9:,.1f}" + ("" if r.feasible else "!"),
            "-" if cost != cost else f"{cost:,.3f}",
        ])
    for i, h in enumerate(heads):
        width = max((len(row[i]) for row in rows), default=len(h))
        width = max(width, len(h))
        table.add_column(h, justify="left" if h in ("hardware", "precision", "layout")
                         else "right", min_width=width, no_wrap=True)
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    return table


def _summary(result) -> str:
    rate = result.evaluated / result.elapsed_s if result.elapsed_s > 0 else float("inf")
    return (f"{result.evaluated:,} configurations evaluated, {result.skipped_count:,} skipped, "
            f"{result.infeasible:,} infeasible (do not fit in memory) in "
            f"{result.elapsed_s:.2f} s ({rate:,.0f} configurations/s)")


def _print_skips(out: Console, result) -> None:
    layouts = [s for s in result.skipped if s.kind == "layout"]
    if layouts:
        shown = "; ".join(f"{s.layout}: {s.reason}" for s in layouts[:_MAX_LAYOUT_REASONS])
        more = len(layouts) - _MAX_LAYOUT_REASONS
        noun = "layout" if len(layouts) == 1 else "layouts"
        out.print(f"[dim]{len(layouts)} invalid {noun} skipped ({escape(shown)}"
                  f"{f'; and {more} more' if more > 0 else ''})[/dim]")
    for s in result.skipped:
        if s.kind != "layout":
            where = f"{s.hardware} {s.precision}" + (f" {s.layout}" if s.layout else "")
            out.print(f"[yellow]skipped[/yellow] {escape(where)} "
                      f"({s.configurations:,} configurations): {escape(s.reason)}")


def sweep_command(
    model: Annotated[str, typer.Option("--model", "-m",
                                       help="Catalog name/alias or path to a config.json.")],
    hardware: Annotated[str, typer.Option(
        "--hardware", "-H", help="Comma-separated catalog devices.")] = "h100-sxm,h200,b200",
    tp: Annotated[str, typer.Option(help="Tensor-parallel sizes, comma-separated.")]
    = "1,2,4,8",
    ep: Annotated[str, typer.Option(
        help="Expert-parallel sizes, comma-separated; 'auto': every divisor of tp for a MoE "
             "model, 1 for a dense one.")] = "auto",
    pp: Annotated[str, typer.Option(help="Pipeline stages, comma-separated.")] = "1",
    dp_attention: Annotated[DpAttention, typer.Option(
        "--dp-attention", help="Data-parallel attention: off, on, or both.")]
    = DpAttention.off,
    precision: Annotated[str, typer.Option(
        help="Precisions, comma-separated (bf16, fp16, fp8, fp4, nvfp4, mxfp4, w8a16, "
             "w4a16, fp4-w4a16).")] = "bf16,fp8",
    isl: Annotated[str, typer.Option(help="Input tokens per request, comma-separated.")]
    = "1024",
    osl: Annotated[str, typer.Option(help="Output tokens per request, comma-separated.")]
    = "1024",
    concurrency: Annotated[str, typer.Option(
        "--concurrency", "-c", help="Requests in flight, comma-separated.")]
    = DEFAULT_CONCURRENCY,
    plot: Annotated[Path | None, typer.Option(
        help="Write the Pareto chart: .png, .svg, or a self-contained .html.")] = None,
    csv: Annotated[Path | None, typer.Option(
        help="Write every evaluated configuration (infeasible ones flagged) as CSV.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    show_all: Annotated[bool, typer.Option(
        "--all", help="Print every configuration instead of the Pareto front.")] = False,
    engine: EngineOption = "fitted",
) -> None:
    """Sweep concurrency x parallelism x precision x hardware; print the Pareto front of
    throughput per GPU against interactivity (InferenceMAX's chart)."""
    from perfcast.estimate.sweep import sweep
    from perfcast.estimate.sweep_plot import check_plot_path, plot_pareto

    hw_list = _names("--hardware", hardware)
    prec_list = _names("--precision", precision)
    tp_list, pp_list = _ints("--tp", tp), _ints("--pp", pp)
    ep_list = None if ep.strip().lower() == "auto" else _ints("--ep", ep)
    isl_list, osl_list = _ints("--isl", isl), _ints("--osl", osl)
    conc_list = _ints("--concurrency", concurrency)
    dpa = {"off": [False], "on": [True], "both": [False, True]}[DpAttention(dp_attention).value]
    try:
        if plot is not None:
            check_plot_path(plot)
        result = sweep(model, hw_list, concurrency=conc_list, tp=tp_list, ep=ep_list,
                       pp=pp_list, dp_attention=dpa, precision=prec_list, isl=isl_list,
                       osl=osl_list, engine=engine)
    except ValueError as exc:
        fail(str(exc))
    if result.evaluated == 0:
        reasons = sorted({s.reason for s in result.skipped})
        fail("nothing to evaluate: every configuration was skipped: " + "; ".join(reasons))
    front = result.pareto()
    written = []
    if csv is not None:
        result.frame.to_csv(csv, index=False)
        written.append(str(csv))
    if plot is not None:
        written.append(str(plot_pareto(result, plot)))
    if as_json:
        typer.echo(json.dumps({**result.to_dict(show_all), "files": written}, indent=2))
        return
    out = Console(highlight=False)
    pairs = ", ".join(f"{i}/{o}" for i, o in result.workloads)
    multi = len(result.workloads) > 1
    if show_all:
        out.print(_table(f"{result.model}: all {result.evaluated:,} configurations "
                         f"(ISL/OSL {pairs}; ! = does not fit in memory)", result.frame,
                         show_group=True, show_workload=multi))
    else:
        keys = ["hardware", "precision"]
        if front.empty:
            out.print("[yellow]no feasible configuration: nothing fits in memory[/yellow]")
        for (hw_name, prec_name), group in front.groupby(keys, sort=True):
            out.print(_table(f"{result.model} on {hw_name}, {prec_name}: Pareto front "
                             f"(ISL/OSL {pairs})", group, show_group=False,
                             show_workload=multi))
    out.print("[dim]TTFT and TPOT in ms; tok/s/user is interactivity; $/Mtok per million "
              "input + output tokens[/dim]")
    out.print(_summary(result))
    _print_skips(out, result)
    for path in written:
        out.print(f"wrote {escape(path)}")
