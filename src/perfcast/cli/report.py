"""Human-readable reports of estimates (rich tables)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.estimate.result import Estimate
from perfcast.hardware import HardwareSpec
from perfcast.units import si


def _f(value, unit: str) -> str:
    return si(float(np.max(value)), unit)


def render_estimate(out: Console, est: Estimate, top: int = 10) -> None:
    """Totals, FLOPs by category, top kernels, per-layer summary and unsupported ops."""
    t = est.totals
    total_time = float(np.max(t.time_s))
    out.rule(f"[bold]{escape(est.model)}[/bold] on [bold]{escape(est.hardware)}[/bold] "
             f"({est.dtype}, {est.target})")
    bounds = Counter(str(k.bound) for k in est.kernels)
    summary = Table(box=box.SIMPLE, show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in [
        ("latency", _f(t.time_s, "s")),
        ("work", f"{_f(t.flops, 'FLOP')}, {_f(t.bytes, 'B')} moved "
                 f"({float(np.max(t.flops)) / max(float(np.max(t.bytes)), 1):.1f} FLOP/B)"),
        ("achieved", f"{_f(float(np.max(t.flops)) / total_time, 'FLOP/s')}"),
        ("parameters", f"{t.params:,}"),
        ("memory", f"weights {_f(t.weights_bytes, 'B')}, "
                   f"peak activations {_f(t.activations_peak_bytes, 'B')}"),
        ("energy", _f(t.energy_j, "J")),
        ("kernels", f"{len(est.kernels)} ("
                    + ", ".join(f"{n} {b}-bound" for b, n in bounds.items()) + ")"),
        ("confidence", str(est.confidence)),
    ]:
        summary.add_row(label, value)
    out.print(summary)
    cats = Table(title="FLOPs by category (before fusion)", box=box.SIMPLE_HEAD)
    for col in ("category", "FLOPs", "share"):
        cats.add_column(col, justify="left" if col == "category" else "right")
    total_flops = max(sum(float(np.max(v)) for v in t.flops_by_category.values()), 1.0)
    for cat, fl in sorted(t.flops_by_category.items(), key=lambda kv: -float(np.max(kv[1]))):
        cats.add_row(cat, _f(fl, "FLOP"), f"{100 * float(np.max(fl)) / total_flops:.1f}%")
    out.print(cats)
    _kernels_table(out, est, top, total_time)
    _layers_table(out, est, top, total_time)
    if est.unsupported_ops:
        un = Table(title="[red]unsupported ops (no FLOPs counted; bytes from shapes)[/red]",
                   box=box.SIMPLE_HEAD)
        un.add_column("op")
        un.add_column("count", justify="right")
        for op, n in sorted(est.unsupported_ops.items(), key=lambda kv: -kv[1]):
            un.add_row(escape(op), str(n))
        out.print(un)
    for note in est.notes:
        out.print(f"[yellow]note:[/yellow] {escape(note)}")


def _kernels_table(out: Console, est: Estimate, top: int, total_time: float) -> None:
    table = Table(title=f"top {top} kernels by time", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False)
    table.add_column("kernel @ module", overflow="ellipsis", no_wrap=True, max_width=34)
    for col in ("time", "%", "FLOPs", "bytes", "FLOP/B", "bound"):
        table.add_column(col, justify="left" if col == "bound" else "right", no_wrap=True)
    for k in est.top_kernels(top):
        fl, by = float(np.max(k.kernel.flops)), float(np.max(k.kernel.bytes))
        where = k.kernel.module.rsplit(".", 2)[-2:] if k.kernel.module else ["-"]
        table.add_row(escape(f"{k.kernel.op} @ {'.'.join(where)}"), _f(k.time_s, "s"),
                      f"{100 * float(np.max(k.time_s)) / total_time:.1f}",
                      _f(fl, "FLOP"), _f(by, "B"), f"{fl / by:.1f}" if by else "-", str(k.bound))
    out.print(table)


def _layers_table(out: Console, est: Estimate, top: int, total_time: float) -> None:
    layers = sorted(est.layers(), key=lambda r: -float(np.max(r["time_s"])))
    table = Table(title=f"per-layer summary (top {min(top, len(layers))} of {len(layers)})",
                  box=box.SIMPLE_HEAD)
    table.add_column("layer", max_width=34, overflow="ellipsis", no_wrap=True)
    for col in ("kernels", "time", "share", "FLOPs", "bytes"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in layers[:top]:
        table.add_row(escape(row["layer"]), str(row["kernels"]), _f(row["time_s"], "s"),
                      f"{100 * float(np.max(row['time_s'])) / total_time:.1f}%",
                      _f(row["flops"], "FLOP"), _f(row["bytes"], "B"))
    out.print(table)


def render_comparison(out: Console, results: list[Estimate], specs: list[HardwareSpec]) -> None:
    """One row per device: latency, speedup against the first, energy, cost."""
    table = Table(title="hardware comparison", box=box.SIMPLE_HEAD)
    for col in ("hardware", "latency", "vs first", "energy", "$ / 1M runs", "confidence"):
        table.add_column(col, justify="left" if col in ("hardware", "confidence") else "right")
    base = float(np.max(results[0].totals.time_s))
    for est, spec in zip(results, specs, strict=True):
        time_s = float(np.max(est.totals.time_s))
        price = spec.price_per_hour_usd
        cost = f"{price.value * time_s / 3600 * 1e6:.2f}" if price else "-"
        table.add_row(escape(spec.name), _f(time_s, "s"), f"{base / time_s:.2f}x",
                      _f(est.totals.energy_j, "J"), cost, str(est.confidence))
    out.print(table)
