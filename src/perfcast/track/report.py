"""Run the detector over every selected series and say what changed, where, and how badly.

Lower is better in both kinds of series (seconds, absolute percentage error), so a change
upwards is a *regression* and one downwards an *improvement*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from perfcast.store import Store
from perfcast.track.changepoint import Change, Detection, DetectorConfig, detect
from perfcast.track.series import Point, Series, load_series
from perfcast.track.severity import SEVERITIES, ThresholdBook, Thresholds

SCALE = {"time": "log", "accuracy": "linear"}


@dataclass(frozen=True)
class ReportedChange:
    """A detected change with its direction, severity and the runs around it."""

    change: Change
    direction: str  # "regression" | "improvement"
    severity: str
    point: Point  # first point at (or moving to) the new level
    previous: Point | None  # last point before it

    def to_dict(self) -> dict[str, Any]:
        c = self.change
        prev = self.previous
        return {"kind": c.kind, "confirmed": c.confirmed, "direction": self.direction,
                "severity": self.severity, "index": c.index, "settled_index": c.settled,
                "before": c.before, "after": c.after, "change": c.effect,
                "change_ci95": list(c.effect_ci95), "p_value": c.p_value,
                "n_before": c.index - c.start, "n_after": c.end - c.index,
                "run_id": self.point.run_id, "git_commit": self.point.commit,
                "time": self.point.time, "estimator_version": self.point.version,
                "previous_run_id": prev.run_id if prev else None,
                "previous_git_commit": prev.commit if prev else None}


@dataclass
class SeriesReport:
    """One series, what the detector found in it, and the changes reported (after --since)."""

    series: Series
    detection: Detection
    thresholds: Thresholds
    changes: list[ReportedChange] = field(default_factory=list)
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        s, d = self.series, self.detection
        return {"key": s.key, "kind": s.kind, "target": s.target, "params": s.params,
                "environment": s.environment, "environment_id": s.environment_id,
                "unit": s.unit, "n_points": d.n, "noise": d.noise, "threshold": d.threshold,
                "thresholds": {"minor": self.thresholds.minor,
                               "moderate": self.thresholds.moderate,
                               "severe": self.thresholds.severe,
                               "noise_factor": self.thresholds.noise_factor},
                "latest": s.points[-1].value, "note": d.note,
                "changes": [c.to_dict() for c in self.changes], "plot": self.plot}


@dataclass
class TrackReport:
    """All series analyzed; ``since`` limits which changes were reported."""

    series: list[SeriesReport]
    since: datetime | None = None

    def changes(self) -> list[tuple[SeriesReport, ReportedChange]]:
        return [(s, c) for s in self.series for c in s.changes]

    def failing(self, fail_on: str, *, confirmed_only: bool = False
                ) -> list[tuple[SeriesReport, ReportedChange]]:
        """Regressions at or above severity ``fail_on``."""
        if fail_on not in SEVERITIES:
            raise ValueError(f"fail_on must be one of {', '.join(SEVERITIES)}, got {fail_on!r}")
        floor = SEVERITIES.index(fail_on)
        return [(s, c) for s, c in self.changes()
                if c.direction == "regression" and SEVERITIES.index(c.severity) >= floor
                and (c.change.confirmed or not confirmed_only)]

    def summary(self) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {
            d: dict.fromkeys(SEVERITIES, 0) for d in ("regression", "improvement")}
        for _, c in self.changes():
            counts[c.direction][c.severity] += 1
        return {"series": len(self.series), "changes": len(self.changes()),
                "regressions": counts["regression"], "improvements": counts["improvement"],
                "too_short": sum(s.detection.note is not None for s in self.series)}

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None,
                "summary": self.summary(), "series": [s.to_dict() for s in self.series]}


def track(store: Store, targets: Sequence[str] = (), *, since: datetime | None = None,
          book: ThresholdBook | None = None, config: DetectorConfig | None = None,
          kinds: Sequence[str] = ("time", "accuracy")) -> TrackReport:
    """Detect changes in every selected series of ``store``.

    Detection uses each series' whole history; ``since`` keeps only series with a point at or
    after it, and only the changes whose first changed point is at or after it.
    """
    book = book or ThresholdBook()
    config = config or DetectorConfig()
    reports = []
    for series in load_series(store, targets, kinds):
        if since is not None and series.points[-1].when < since:
            continue
        reports.append(analyze(series, book.for_series(series.kind, series.target), config,
                               since))
    return TrackReport(reports, since)


def analyze(series: Series, thresholds: Thresholds, config: DetectorConfig,
            since: datetime | None = None) -> SeriesReport:
    """Detect and classify the changes of one series."""
    config = replace(config, noise_factor=thresholds.noise_factor)
    detection = detect(series.values(), scale=SCALE[series.kind],  # type: ignore[arg-type]
                       min_effect=thresholds.minor, config=config)
    report = SeriesReport(series, detection, thresholds)
    for change in detection.changes:
        if since is not None and series.points[change.settled].when < since:
            continue
        severity = thresholds.classify(change.magnitude)
        assert severity is not None, "the detector reports nothing below thresholds.minor"
        report.changes.append(ReportedChange(
            change, "regression" if change.effect > 0 else "improvement", severity,
            series.points[change.index],
            series.points[change.index - 1] if change.index > 0 else None))
    return report
