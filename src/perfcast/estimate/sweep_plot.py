"""Plot a sweep's Pareto fronts: throughput per GPU against interactivity.

One line per (hardware, precision) group (and per ISL/OSL when the sweep has several),
as InferenceMAX draws it. The suffix of the path picks the format: ``.png`` and ``.svg``
(matplotlib, Agg backend), or ``.html``/``.htm``: a self-contained page with the chart
as inline SVG and the front as a table, no scripts or external resources.
"""

from __future__ import annotations

import html
import io
import sys
from pathlib import Path

import pandas as pd

from perfcast.estimate.sweep import SweepResult, layout_label

PLOT_SUFFIXES = (".png", ".svg", ".html", ".htm")


class PlotFormatError(ValueError):
    """A plot path whose suffix names no supported format."""


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a Path if its suffix is a supported format, else PlotFormatError."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise PlotFormatError(
            f"cannot write a plot to {str(p)!r}: the suffix must be one of "
            f"{', '.join(PLOT_SUFFIXES)}"
        )
    return p


def _label(keys: list[str], values: tuple) -> str:
    parts = dict(zip(keys, values, strict=True))
    text = f"{parts['hardware']} {parts['precision']}"
    if "isl" in parts:
        text += f" {parts['isl']}/{parts['osl']}"
    return text


def _title(result: SweepResult) -> str:
    pairs = ", ".join(f"{i}/{o}" for i, o in result.workloads) or "-"
    return f"{result.model}: throughput per GPU vs interactivity (ISL/OSL {pairs})"


def _figure(result: SweepResult, front: pd.DataFrame, keys: list[str]):
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # leave an interactive session's backend
        matplotlib.use("Agg")
    from matplotlib.figure import Figure  # the Figure API needs no pyplot or display

    fig = Figure(figsize=(9, 6), dpi=110)
    ax = fig.add_subplot()
    if front.empty:
        ax.text(0.5, 0.5, "no feasible configuration", ha="center", va="center",
                transform=ax.transAxes)
    for values, group in front.groupby(keys, sort=True):
        ax.plot(group["interactivity"], group["throughput_per_gpu"], marker="o",
                markersize=3.5, linewidth=1.5, label=_label(keys, values))
    ax.set_xlabel("interactivity (tok/s/user)")
    ax.set_ylabel("throughput per GPU (tok/s/GPU)")
    ax.set_title(_title(result), fontsize=11)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if not front.empty:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _html(result: SweepResult, front: pd.DataFrame, keys: list[str], svg: str) -> str:
    rows = []
    for row in front.itertuples(index=False):
        cells = [
            " ".join(str(getattr(row, k)) for k in keys), layout_label(row), str(row.concurrency),
            f"{row.ttft_s * 1e3:.1f}", f"{row.tpot_s * 1e3:.2f}", f"{row.interactivity:.1f}",
            f"{row.throughput_per_gpu:.0f}", f"{row.output_throughput_per_gpu:.0f}",
            "-" if pd.isna(row.cost_per_million_tokens_usd)
            else f"{row.cost_per_million_tokens_usd:.3f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    heads = ["group", "layout", "concurrency", "TTFT ms", "TPOT ms", "tok/s/user",
             "tok/s/GPU", "output tok/s/GPU", "$/M tokens"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    title = html.escape(_title(result))
    summary = (f"{result.evaluated:,} configurations evaluated, {result.skipped_count:,} "
               f"skipped, {result.infeasible:,} infeasible")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{html.escape(summary)}. Pareto front: configurations no other beats on both
interactivity and throughput per GPU.</p>
{svg}
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def plot_pareto(result: SweepResult, path: str | Path) -> Path:
    """Write the Pareto fronts of ``result`` to ``path`` (.png, .svg, .html or .htm)."""
    p = check_plot_path(path)
    keys = ["hardware", "precision"]
    if len(result.workloads) > 1:
        keys += ["isl", "osl"]
    front = result.pareto(by=keys)
    fig = _figure(result, front, keys)
    suffix = p.suffix.lower()
    if suffix in (".png", ".svg"):
        fig.savefig(p, format=suffix[1:], metadata={"Date": None} if suffix == ".svg" else None)
        return p
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.find("<svg"):]  # drop the XML prolog and DOCTYPE for inline use
    p.write_text(_html(result, front, keys, svg), encoding="utf-8")
    return p
