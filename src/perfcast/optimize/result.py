"""What :func:`perfcast.optimize` returns: one result per candidate and the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perfcast.bench import Comparison, Stats
from perfcast.optimize.check import NumericError
from perfcast.optimize.rank import Prediction

SCHEMA_VERSION = 1
# measured: built, within tolerance, timed. rejected: outputs beyond tolerance (or of another
# structure). failed: building or running raised. skipped: not applicable here, not
# promising, or out of budget; ``reason`` says which.
STATUSES = ("measured", "rejected", "failed", "skipped")


@dataclass
class CandidateResult:
    """One candidate's outcome."""

    name: str
    description: str
    status: str
    precision: str
    reason: str | None = None
    rank: int | None = None  # position in the measuring order (1 = eager)
    prediction: Prediction | None = None
    build_s: float | None = None  # building plus the first call (compilation happens there)
    memory_bytes: int | None = None  # peak memory added by building and one call
    error: NumericError | None = None
    stats: Stats | None = None  # the candidate's pooled timing samples
    comparison: Comparison | None = None  # against eager, timed in alternating rounds
    final: Stats | None = None  # finalists only: timed against each other in one window
    notes: list[str] = field(default_factory=list)
    chosen: bool = False

    @property
    def speedup(self) -> float | None:
        """Eager median / candidate median from the paired rounds (eager: 1)."""
        if self.name == "eager" and self.status == "measured":
            return 1.0
        return self.comparison.speedup if self.comparison else None

    def to_dict(self) -> dict[str, Any]:
        c, s = self.comparison, self.stats
        return {
            "name": self.name, "description": self.description, "status": self.status,
            "chosen": self.chosen, "reason": self.reason, "rank": self.rank,
            "precision": self.precision,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "measured_s": s.median if s else None,
            "measured_ci95_s": list(s.ci95) if s else None,
            "samples": s.n if s else 0,
            "speedup": self.speedup,
            "speedup_ci95": [1 / c.ratio_ci95[1], 1 / c.ratio_ci95[0]] if c else None,
            "verdict": c.verdict.value if c else None,
            "p_value": c.p_value if c else None,
            "final_s": self.final.median if self.final else None,
            "memory_bytes": self.memory_bytes, "build_s": self.build_s,
            "error": self.error.to_dict() if self.error else None,
            "notes": list(self.notes),
        }


@dataclass
class OptimizeReport:
    """All candidates (measuring order first, then the skipped ones), the choice and how
    the run went. ``forward()`` runs the chosen candidate on the example inputs."""

    model: str
    device: str
    hardware: str
    threads: int
    budget_s: float
    elapsed_s: float
    candidates: list[CandidateResult]
    chosen: str
    reference: Stats | None  # eager's samples pooled over every pairing
    forward: Callable[[], Any] | None = field(default=None, repr=False)
    estimator: str = ""
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def candidate(self, name: str) -> CandidateResult:
        """The result of candidate ``name``; KeyError naming the known ones."""
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; candidates: "
                       f"{', '.join(c.name for c in self.candidates)}")

    @property
    def best(self) -> CandidateResult:
        return self.candidate(self.chosen)

    @property
    def speedup(self) -> float:
        """The chosen candidate's measured speedup over eager (1 when eager is chosen)."""
        return self.best.speedup or 1.0

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON object (see docs/optimize.md)."""
        return {
            "schema_version": SCHEMA_VERSION, "model": self.model, "device": self.device,
            "hardware": self.hardware, "threads": self.threads, "budget_s": self.budget_s,
            "elapsed_s": self.elapsed_s, "chosen": self.chosen, "speedup": self.speedup,
            "reference_s": self.reference.median if self.reference else None,
            "estimator": self.estimator, "run_id": self.run_id, "notes": list(self.notes),
            "candidates": [c.to_dict() for c in self.candidates],
        }
