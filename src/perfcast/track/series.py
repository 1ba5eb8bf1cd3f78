"""Histories from the store, one series per (kind, target, params, environment).

- ``time``: every ``ok`` result's median (seconds; the median of its samples when the median
  was not stored) with its stored 95% CI, one point per result, ordered by the start of its
  run. Runs from different environments (fingerprints) are separate series and never mixed.
- ``accuracy``: the absolute percentage error ``|predicted - measured| / measured`` of every
  prediction with a measurement, ordered by time, one series per (target, params, hardware,
  run environment when the prediction belongs to a run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from perfcast.store import Store
from perfcast.store.records import EnvironmentRow, RunRow

UNITS = {"time": "s", "accuracy": "APE"}


@dataclass(frozen=True)
class Point:
    """One run's value in a series, with what identifies where it came from."""

    value: float
    ci_low: float | None
    ci_high: float | None
    time: str
    run_id: str | None
    commit: str | None
    version: str | None = None

    @property
    def when(self) -> datetime:
        return parse_time(self.time)


@dataclass
class Series:
    """The history of one (kind, target, params, environment), oldest point first."""

    kind: str
    target: str
    params: dict[str, Any]
    environment: str
    environment_id: int | None
    points: list[Point] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Unique, readable name: ``kind:target[params]@environment``."""
        return f"{self.kind}:{self.label}@{self.environment}"

    @property
    def label(self) -> str:
        """``target[k=v,...]``, or the target alone without params."""
        inner = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.target}[{inner}]" if inner else self.target

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def values(self) -> np.ndarray:
        return np.array([p.value for p in self.points], dtype=np.float64)


def parse_time(text: str) -> datetime:
    """A stored ISO time (``...Z``) as an aware UTC datetime."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def matches(target: str, patterns: Sequence[str]) -> bool:
    """Whether ``target`` is selected: a glob, a suite name, or a pair target without @role."""
    if not patterns:
        return True
    return any(fnmatchcase(target, p) or target.startswith(p + ":")
               or fnmatchcase(target, p + "@*") for p in patterns)


def load_series(store: Store, targets: Sequence[str] = (),
                kinds: Iterable[str] = ("time", "accuracy")) -> list[Series]:
    """Every series of the selected ``kinds`` whose target matches ``targets`` (all if empty)."""
    kinds = set(kinds)
    runs = {run.id: run for run in store.runs(limit=None)}
    out: list[Series] = []
    if "time" in kinds:
        out += _time_series(store, runs, targets)
    if "accuracy" in kinds:
        out += _accuracy_series(store, runs, targets)
    return sorted(out, key=lambda s: s.key)


def _time_series(store: Store, runs: dict[str, RunRow], targets: Sequence[str]) -> list[Series]:
    environments: dict[int, EnvironmentRow] = {}
    groups: dict[tuple[str, str, int | None], tuple[Series, list[tuple[Any, ...]]]] = {}
    for row in store.results():
        if row.status != "ok" or not matches(row.target, targets):
            continue
        value = row.median_s
        if value is None and row.samples:
            value = float(np.median(row.samples))
        if value is None or value <= 0:
            continue
        run = runs[row.run_id]
        key = (row.target, json.dumps(row.params, sort_keys=True), run.environment_id)
        if key not in groups:
            label = _environment_label(store, environments, run.environment_id)
            groups[key] = (Series("time", row.target, row.params, label, run.environment_id), [])
        point = Point(value, row.ci_low_s, row.ci_high_s, run.started_at, run.id,
                      run.git_commit)
        groups[key][1].append((run.started_at, row.created_at, row.id, point))
    return [_ordered(series, rows) for series, rows in groups.values()]


def _accuracy_series(store: Store, runs: dict[str, RunRow],
                     targets: Sequence[str]) -> list[Series]:
    groups: dict[tuple[str, str, str, int | None], tuple[Series, list[tuple[Any, ...]]]] = {}
    for pred in store.predictions():
        if pred.measured_s is None or pred.measured_s <= 0 or not matches(pred.target, targets):
            continue
        run = runs.get(pred.run_id) if pred.run_id else None
        env_id = run.environment_id if run is not None else None
        key = (pred.target, json.dumps(pred.params, sort_keys=True), pred.hardware, env_id)
        if key not in groups:
            label = pred.hardware if env_id is None else f"{pred.hardware} env#{env_id}"
            groups[key] = (Series("accuracy", pred.target, pred.params, label, env_id), [])
        ape = abs(pred.predicted_s - pred.measured_s) / pred.measured_s
        point = Point(ape, None, None, pred.created_at, pred.run_id,
                      run.git_commit if run is not None else None, pred.estimator_version)
        groups[key][1].append((pred.created_at, pred.created_at, pred.id, point))
    return [_ordered(series, rows) for series, rows in groups.values()]


def _ordered(series: Series, rows: list[tuple[Any, ...]]) -> Series:
    series.points = [row[-1] for row in sorted(rows, key=lambda r: r[:-1])]
    return series


def _environment_label(store: Store, cache: dict[int, EnvironmentRow],
                       env_id: int | None) -> str:
    if env_id is None:
        return "unknown environment"
    if env_id not in cache:
        cache[env_id] = store.environment(env_id)
    env = cache[env_id]
    return f"{env.hardware_key} env#{env.id} {env.fingerprint[:8]}"
