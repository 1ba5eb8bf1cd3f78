"""Rows returned by :class:`perfcast.store.Store`: plain frozen dataclasses, JSON decoded."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EnvironmentRow:
    """One measured environment (hardware + software), identified by its fingerprint."""

    id: int
    fingerprint: str
    hardware_key: str
    data: dict[str, Any]
    created_at: str


@dataclass(frozen=True, slots=True)
class RunRow:
    """One invocation of the harness; ``n_results`` counts its stored results."""

    id: str
    started_at: str
    finished_at: str | None
    status: str
    command: str
    git_commit: str | None
    environment_id: int | None
    host: str
    pid: int
    meta: dict[str, Any]
    n_results: int


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One measured (target, params) point of a run.

    ``run_started_at`` and ``git_commit`` are filled only by queries that join the run
    (:meth:`Store.history`); elsewhere they are None.
    """

    id: int
    run_id: str
    target: str
    params: dict[str, Any]
    status: str
    median_s: float | None
    ci_low_s: float | None
    ci_high_s: float | None
    n: int | None
    stats: dict[str, Any] | None
    samples: list[float] | None
    error: str | None
    energy_j: float | None
    extra: dict[str, Any]
    created_at: str
    run_started_at: str | None = None
    git_commit: str | None = None


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """A predicted time for (target, params) on a hardware, with the measurement if known."""

    id: int
    run_id: str | None
    target: str
    params: dict[str, Any]
    hardware: str
    predicted_s: float
    measured_s: float | None
    confidence: str | None
    estimator_version: str | None
    data: dict[str, Any]
    created_at: str


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One version of a named calibration profile for a hardware key."""

    id: int
    environment_id: int | None
    hardware_key: str
    name: str
    version: int
    data: dict[str, Any]
    created_at: str


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(id=row["id"], started_at=row["started_at"], finished_at=row["finished_at"],
                  status=row["status"], command=row["command"], git_commit=row["git_commit"],
                  environment_id=row["environment_id"], host=row["host"], pid=row["pid"],
                  meta=json.loads(row["meta"]), n_results=row["n_results"])


def result_row(row: sqlite3.Row, *, joined: bool = False) -> ResultRow:
    return ResultRow(
        id=row["id"], run_id=row["run_id"], target=row["target"],
        params=json.loads(row["params"]), status=row["status"], median_s=row["median_s"],
        ci_low_s=row["ci_low_s"], ci_high_s=row["ci_high_s"], n=row["n"],
        stats=_loads(row["stats"]), samples=_loads(row["samples"]), error=row["error"],
        energy_j=row["energy_j"], extra=json.loads(row["extra"]), created_at=row["created_at"],
        run_started_at=row["run_started_at"] if joined else None,
        git_commit=row["git_commit"] if joined else None,
    )


def prediction_row(row: sqlite3.Row) -> PredictionRow:
    return PredictionRow(
        id=row["id"], run_id=row["run_id"], target=row["target"],
        params=json.loads(row["params"]), hardware=row["hardware"],
        predicted_s=row["predicted_s"], measured_s=row["measured_s"],
        confidence=row["confidence"], estimator_version=row["estimator_version"],
        data=json.loads(row["data"]), created_at=row["created_at"],
    )


def profile_row(row: sqlite3.Row) -> ProfileRow:
    return ProfileRow(id=row["id"], environment_id=row["environment_id"],
                      hardware_key=row["hardware_key"], name=row["name"],
                      version=row["version"], data=json.loads(row["data"]),
                      created_at=row["created_at"])
