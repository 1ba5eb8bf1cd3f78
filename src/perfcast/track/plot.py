"""One PNG per series: the history with each point's 95% CI as a band, the fitted levels, and
the reported changes marked (red: regression, green: improvement; dashed: unconfirmed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from perfcast.track.report import SeriesReport

_COLORS = {"regression": "#c62828", "improvement": "#2e7d32"}


def plot_path(directory: Path, report: SeriesReport) -> Path:
    """A file name that is readable and unique per series key."""
    s = report.series
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{s.kind}-{s.label}").strip("_")[:80]
    digest = hashlib.sha1(s.key.encode()).hexdigest()[:8]
    return directory / f"{stem}-{digest}.png"


def plot_series(report: SeriesReport, path: Path) -> Path:
    """Draw ``report`` into ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series, detection = report.series, report.detection
    scale, unit = (1e3, "ms") if series.kind == "time" else (100.0, "APE %")
    x = list(range(len(series.points)))
    y = [p.value * scale for p in series.points]
    fig, ax = plt.subplots(figsize=(8, 4))
    try:
        lows = [(p.ci_low if p.ci_low is not None else p.value) * scale for p in series.points]
        highs = [(p.ci_high if p.ci_high is not None else p.value) * scale
                 for p in series.points]
        if any(p.ci_low is not None for p in series.points):
            ax.fill_between(x, lows, highs, color="#90caf9", alpha=0.5, lw=0,
                            label="95% CI per run")
        ax.plot(x, y, "o-", color="#1565c0", ms=3, lw=0.8,
                label="median per run" if series.kind == "time" else "error per validation")
        for i, seg in enumerate(detection.segments):
            ax.plot([seg.start, seg.end - 1], [seg.first * scale, seg.last * scale],
                    color="black", lw=1.5, alpha=0.7, label="fitted level" if i == 0 else None)
        for reported in report.changes:
            c = reported.change
            color = _COLORS[reported.direction]
            style = "-" if c.confirmed else "--"
            if c.kind == "drift":
                ax.axvspan(c.index, c.settled, color=color, alpha=0.12)
            ax.axvline(c.index - 0.5, color=color, ls=style, lw=1.2)
            ax.annotate(f"{c.effect:+.1%} {reported.severity}" if series.kind == "time"
                        else f"{c.effect * 100:+.1f} pt {reported.severity}",
                        (c.index - 0.5, 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=8, color=color)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="run (oldest → newest)" if series.kind == "time"
               else "validation (oldest → newest)", ylabel=unit,
               title=f"{series.label} @ {series.environment}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
