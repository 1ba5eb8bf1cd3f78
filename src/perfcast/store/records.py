"""Rows returned by :class:`perfcast.store.Store`: plain frozen dataclasses, JSON decoded."""

from __future__ import annotations

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
