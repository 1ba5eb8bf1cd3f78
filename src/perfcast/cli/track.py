"""``perfcast track``: change points in the stored history of every target, for people and CI.

Exit codes: 0 no regression at or above ``--fail-on`` (or no ``--fail-on``), 1 the analysis
failed, 2 bad input, 3 a regression at or above ``--fail-on``, 4 no data to analyze.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.errors import fail
from perfcast.cli.store import DbOption, open_store

_AGE = re.compile(r"(\d+)([hdw])")
_AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


class Severity(StrEnum):
    minor = "minor"
    moderate = "moderate"
    severe = "severe"


class Kind(StrEnum):
    all = "all"
    time = "time"
    accuracy = "accuracy"


def track(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Targets, suites or globs (e.g. micro 'micro:gemm*' validate:*); default: all.")]
    = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Report only changes at or after a date (2025-06-01), an age (7d, "
                        "12h, 2w) or a run id; detection still uses the whole history.")]
    = None,
    fail_on: Annotated[Severity | None, typer.Option(
        "--fail-on", help="Exit 3 if a regression of this severity or worse is reported.")]
    = None,
    confirmed_only: Annotated[bool, typer.Option(
        "--confirmed-only", help="--fail-on ignores changes seen only in the newest runs.")]
    = False,
    kind: Annotated[Kind, typer.Option(
        "--kind", help="Timing series, prediction-accuracy series, or both.")] = Kind.all,
    thresholds: Annotated[Path | None, typer.Option(
        "--thresholds", help="YAML/TOML file of severity thresholds and per-target glob "
                             "rules (see docs/track.md).")] = None,
    minor: Annotated[float | None, typer.Option(
        "--minor", min=0.0, help="Smallest relative timing change reported (default 0.05).")]
    = None,
    moderate: Annotated[float | None, typer.Option(
        "--moderate", min=0.0, help="Relative timing change that is moderate (default 0.10).")]
    = None,
    severe: Annotated[float | None, typer.Option(
        "--severe", min=0.0, help="Relative timing change that is severe (default 0.25).")]
    = None,
    alpha: Annotated[float, typer.Option(
        "--alpha", min=1e-9, max=0.5, help="Significance level of every test.")] = 0.001,
    plot_dir: Annotated[Path | None, typer.Option(
        "--plot-dir", help="Write one PNG per series here (history, CI band, changes).")]
    = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help='Print {"since", "summary", "series": [{"key", "target", "params", '
                       '"environment", "changes": [...]}], "exit_code"}.')] = False,
) -> None:
    """Change points in the history of each target and environment: where a timing (or a
    prediction's error) moved, by how much, and how sure that is; see exit codes."""
    from perfcast.bench.runner import ExitCode
    from perfcast.track import DetectorConfig, ThresholdBook, ThresholdError

    try:
        book = ThresholdBook.load(thresholds) if thresholds else ThresholdBook()
        book = book.with_time_defaults(minor=minor, moderate=moderate, severe=severe)
    except ThresholdError as exc:
        fail(str(exc))
    config = DetectorConfig(alpha=alpha)
    kinds = ("time", "accuracy") if kind == Kind.all else (kind.value,)
    store = open_store(db)
    try:
        since_at = _since(store, since) if since else None
        report = _analyze(store, targets or [], since_at, book, config, kinds, plot_dir)
    finally:
        store.close()
    failing = report.failing(fail_on.value, confirmed_only=confirmed_only) if fail_on else []
    code = (ExitCode.NOTHING_RAN if not report.series
            else ExitCode.REGRESSION if failing else ExitCode.OK)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "exit_code": code}, indent=2))
    else:
        _print(report, since, config)
    if not report.series:
        Console(stderr=True, highlight=False).print(
            f"no data: {_nothing(targets or [], since)} in {escape(str(db or 'the store'))}")
    elif failing:
        Console(stderr=True, highlight=False).print(
            f"[red]{len(failing)} regression(s) at or above {fail_on}[/red]")
    if code != ExitCode.OK:
        raise typer.Exit(code)


def _analyze(store: Any, targets: list[str], since: datetime | None, book: Any, config: Any,
             kinds: tuple[str, ...], plot_dir: Path | None) -> Any:
    """The track report, plots written; an unexpected failure exits 1 with its reason."""
    from perfcast.bench.runner import ExitCode
    from perfcast.store import StoreError
    from perfcast.track import ThresholdError, track
    from perfcast.track.plot import plot_path, plot_series

    try:
        report = track(store, targets, since=since, book=book, config=config, kinds=kinds)
    except (StoreError, ThresholdError) as exc:
        fail(str(exc))
    if plot_dir is not None:
        try:
            for series in report.series:
                series.plot = str(plot_series(series, plot_path(plot_dir, series)))
        except (OSError, ValueError, RuntimeError) as exc:
            Console(stderr=True, highlight=False).print(
                f"[red]error:[/red] plotting into {escape(str(plot_dir))} failed: "
                f"{escape(str(exc))}")
            raise typer.Exit(ExitCode.ERROR) from None
    return report


def _since(store: Any, text: str) -> datetime:
    """``--since`` as a UTC time: an age (7d), an ISO date/time, or the start of a run."""
    from perfcast.store import StoreError

    age = _AGE.fullmatch(text.strip())
    if age:
        return datetime.now(UTC) - timedelta(**{_AGE_UNITS[age[2]]: int(age[1])})
    try:
        when = datetime.fromisoformat(text)
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        run = store.run(text)
    except StoreError as exc:
        fail(f"--since {text!r} is not a date (YYYY-MM-DD[THH:MM]), an age (7d, 12h, 2w) "
             f"or a run id: {exc}")
    return datetime.fromisoformat(run.started_at)


def _nothing(targets: list[str], since: str | None) -> str:
    what = f"no history for {', '.join(targets)}" if targets else "no stored history"
    return what + (f" since {since}" if since else "")


def _print(report: Any, since: str | None, config: Any) -> None:
    from perfcast.bench.stats import format_seconds
    from perfcast.track import min_points

    console = Console(highlight=False)
    if not report.series:
        return
    table = Table(box=box.SIMPLE_HEAD, title="change points")
    for column in ("series", "where", "before → after", "Δ [95% CI]", "p", "verdict"):
        table.add_column(column, justify="right" if column == "p" else "left",
                         overflow="fold")
    for s, c in report.changes():
        ch = c.change
        show = format_seconds if s.series.kind == "time" else (lambda v: f"{v:.1%}")
        lo, hi = (_delta(v, s.series.kind) for v in ch.effect_ci95)
        color = "red" if c.direction == "regression" else "green"
        verdict = f"[{color}]{c.direction} {c.severity}[/{color}]"
        if ch.kind == "drift":
            verdict += f" (drift over runs {ch.index}–{ch.settled})"
        if not ch.confirmed:
            verdict += " (unconfirmed: newest runs only)"
        table.add_row(escape(f"{s.series.label} @ {s.series.environment}"), escape(_where(c)),
                      f"{show(ch.before)} → {show(ch.after)}",
                      f"{_delta(ch.effect, s.series.kind)} [{lo}, {hi}]", f"{ch.p_value:.1g}",
                      verdict)
    summary = report.summary()
    if summary["changes"]:
        console.print(table)
    else:
        console.print(f"no change points in {summary['series']} series"
                      + (f" since {escape(since)}" if since else ""))
    short = [s.series.label for s in report.series if s.detection.note]
    if short:
        console.print(f"{len(short)} series too short to judge (a change needs "
                      f"{min_points(config)} points): {escape(', '.join(short[:5]))}"
                      + (" …" if len(short) > 5 else ""))
    for s in report.series:
        if s.plot:
            console.print(f"plot: {escape(s.plot)}")


def _where(change: Any) -> str:
    """The run (and commit or estimator version) where the change first shows."""
    point = change.point
    where = point.run_id or point.time[:19]
    label = point.commit[:10] if point.commit else (
        f"estimator {point.version}" if point.version else None)
    return f"{where} ({label})" if label else where


def _delta(effect: float, kind: str) -> str:
    return f"{effect:+.1%}" if kind == "time" else f"{effect * 100:+.1f} pt"
