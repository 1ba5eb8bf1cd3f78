"""Render an :class:`OptimizeReport`: a rich table for the terminal, Markdown for files.

JSON is :meth:`OptimizeReport.to_dict` (documented in docs/optimize.md).
"""

from __future__ import annotations

from typing import Any

from perfcast.bench.stats import format_seconds
from perfcast.optimize.result import CandidateResult, OptimizeReport
from perfcast.units import binary_bytes

COLUMNS = ("#", "candidate", "status", "predicted (speedup)", "measured ±CI/2",
           "speedup [95% CI]", "final round", "memory", "max error (tol)", "build")
FINAL = COLUMNS.index("final round")


def _columns(report: OptimizeReport) -> list[str]:
    """The table's columns; "final round" only when there was one."""
    has_final = any(c.final is not None for c in report.candidates)
    return [c for i, c in enumerate(COLUMNS) if has_final or i != FINAL]


def _rows(report: OptimizeReport) -> list[list[str]]:
    keep = len(_columns(report)) == len(COLUMNS)
    return [[x for i, x in enumerate(_row(c)) if keep or i != FINAL]
            for c in report.candidates]


def _x(factor: float) -> str:
    """A speedup factor with 3 significant digits: 1.92x, 0.0213x, 156x."""
    return f"{factor:.3g}x"


def _predicted(p: Any) -> str:
    if p is None or p.latency_s is None:
        return "-"
    return format_seconds(p.latency_s) + (f" ({_x(p.speedup)})" if p.speedup else "")


def _row(c: CandidateResult) -> list[str]:
    p, s, cmp = c.prediction, c.stats, c.comparison
    if cmp is not None:
        lo, hi = 1 / cmp.ratio_ci95[1], 1 / cmp.ratio_ci95[0]
        speedup = f"{_x(cmp.speedup)} [{lo:.3g}-{hi:.3g}]"
    else:
        speedup = "reference" if c.speedup == 1.0 else "-"
    error = "-"
    if c.error is not None:
        error = f"{c.error.max_rel:.2g} ({c.error.tolerance:g})"
    status = c.status + (" *" if c.chosen else "")
    return [
        str(c.rank) if c.rank else "-", c.name, status,
        _predicted(p),
        f"{format_seconds(s.median)} ±{s.rel_ci_width / 2:.0%}" if s else "-",
        speedup,
        format_seconds(c.final.median) if c.final is not None else "-",
        binary_bytes(c.memory_bytes) if c.memory_bytes is not None else "-",
        error,
        format_seconds(c.build_s) if c.build_s is not None else "-",
    ]


def _headline(report: OptimizeReport) -> str:
    best = report.best
    if best.name == "eager":
        return ("chosen: eager - no candidate was significantly faster than eager "
                f"({format_seconds(report.reference.median) if report.reference else '-'})")
    cmp = best.comparison
    assert cmp is not None and best.stats is not None
    lo, hi = 1 / cmp.ratio_ci95[1], 1 / cmp.ratio_ci95[0]
    err = f", {best.error.describe()}" if best.error else ""
    return (f"chosen: {best.name} - {_x(cmp.speedup)} faster than eager "
            f"({format_seconds(cmp.baseline_median)} -> {format_seconds(cmp.candidate_median)}, "
            f"95% CI {_x(lo)}-{_x(hi)}, p={cmp.p_value:.2g}){err}")


def _explanations(report: OptimizeReport) -> list[tuple[str, str]]:
    """(candidate, why) for every candidate with a reason or notes."""
    lines = []
    for c in report.candidates:
        if c.reason:
            lines.append((c.name, f"{c.status}: {c.reason}"))
        for note in c.notes:
            lines.append((c.name, f"note: {note}"))
        if c.prediction is not None and c.status != "skipped":
            lines.append((c.name, f"prediction: {c.prediction.basis}"))
    return lines


def render(console: Any, report: OptimizeReport) -> None:
    """Print the report as a rich table with the reasons below it."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD,
                  title=f"perfcast optimize: {escape(report.model)} on {escape(report.hardware)}"
                        f" ({report.device}), {report.elapsed_s:.0f} s of "
                        f"{report.budget_s:.0f} s budget")
    for col in _columns(report):
        text = col in ("candidate", "status")
        table.add_column(col, justify="left" if text else "right", no_wrap=text)
    for c, row in zip(report.candidates, _rows(report), strict=True):
        style = {"rejected": "yellow", "failed": "red", "skipped": "dim"}.get(c.status)
        table.add_row(*(escape(x) for x in row), style="bold green" if c.chosen else style)
    console.print(table)
    console.print(f"[bold]{escape(_headline(report))}[/bold]")
    for name, why in _explanations(report):
        console.print(f"  [cyan]{escape(name)}[/cyan]: {escape(why)}")
    for note in report.notes:
        console.print(f"[yellow]note: {escape(note)}[/yellow]")
    if report.run_id:
        console.print(f"[dim]stored as run {report.run_id}[/dim]")


def to_markdown(report: OptimizeReport) -> str:
    """The report as a Markdown document: headline, table, reasons."""
    out = [f"# perfcast optimize: {report.model}", "",
           f"{report.hardware}, {report.device}; "
           f"{report.elapsed_s:.0f} s of a {report.budget_s:.0f} s budget.", "",
           f"**{_headline(report)}**", "",
           "| " + " | ".join(_columns(report)) + " |", "|" + "---|" * len(_columns(report))]
    out += ["| " + " | ".join(x.replace("|", "\\|") for x in row) + " |"
            for row in _rows(report)]
    out += ["", "`*` = chosen. Speedup = eager median / candidate median, timed in "
            "alternating rounds; max error is relative to the largest reference value.", ""]
    out += [f"- **{name}**: {why}" for name, why in _explanations(report)]
    out += [f"- note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"
