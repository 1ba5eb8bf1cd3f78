"""Compare two stored runs target by target: ratio of medians with its CI and a verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from perfcast.bench.environment import Environment
from perfcast.bench.stats import Comparison, Verdict, compare
from perfcast.store import Store
from perfcast.store.records import ResultRow, RunRow


class RunCompareError(ValueError):
    """The two runs cannot be compared (different environments, unknown run)."""


@dataclass(frozen=True)
class TargetComparison:
    """One target (with its params) present in both runs."""

    target: str
    params: dict[str, Any]
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"target": self.target, "params": self.params,
                "median_a_s": c.baseline_median, "median_b_s": c.candidate_median,
                "ratio": c.ratio, "ratio_ci95": list(c.ratio_ci95), "p_value": c.p_value,
                "verdict": str(c.verdict)}


@dataclass
class RunComparison:
    """Run B against run A: per-target comparisons and what only one run has."""

    run_a: RunRow
    run_b: RunRow
    rows: list[TargetComparison] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    environment_differences: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(r.comparison.verdict == verdict for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"run_a": self.run_a.id, "run_b": self.run_b.id,
                "environment_differences": self.environment_differences,
                "results": [r.to_dict() for r in self.rows],
                "only_in_a": self.only_a, "only_in_b": self.only_b,
                "summary": {str(v): self.count(v) for v in Verdict}}


def compare_runs(store: Store, run_a: str, run_b: str, *, min_effect: float = 0.03,
                 alpha: float = 0.05, allow_environment_change: bool = False) -> RunComparison:
    """Compare every ok result of ``run_b`` with the same target and params in ``run_a``.

    Runs from environments with a different fingerprint are refused unless
    ``allow_environment_change``; the differences are listed either way.
    """
    a, b = store.run(run_a), store.run(run_b)
    differences = _environment_differences(store, a, b)
    if differences and not allow_environment_change:
        raise RunCompareError(f"runs {a.id} and {b.id} come from different environments "
                              f"({'; '.join(differences)}); their timings are not comparable. "
                              "Pass --allow-environment-change to compare anyway.")
    results_a = _keyed(store.results(a.id))
    results_b = _keyed(store.results(b.id))
    out = RunComparison(a, b, environment_differences=differences)
    for key, rb in results_b.items():
        ra = results_a.get(key)
        if ra is None:
            out.only_b.append(_label(rb))
            continue
        comparison = compare(ra.samples or [], rb.samples or [], alpha=alpha,
                             min_effect=min_effect)
        out.rows.append(TargetComparison(rb.target, rb.params, comparison))
    out.only_a = [_label(r) for k, r in results_a.items() if k not in results_b]
    return out


def _environment_differences(store: Store, a: RunRow, b: RunRow) -> list[str]:
    if a.environment_id is None or b.environment_id is None:
        return ["one run has no recorded environment"]
    if a.environment_id == b.environment_id:
        return []
    env_a = Environment.from_dict(store.environment(a.environment_id).data)
    env_b = Environment.from_dict(store.environment(b.environment_id).data)
    return env_a.differences(env_b)


def _keyed(rows: list[ResultRow]) -> dict[tuple[str, str], ResultRow]:
    """The ok results with at least two samples, keyed by target and canonical params."""
    return {(r.target, json.dumps(r.params, sort_keys=True)): r for r in rows
            if r.status == "ok" and r.samples and len(r.samples) >= 2}


def _label(row: ResultRow) -> str:
    inner = ",".join(f"{k}={v}" for k, v in row.params.items())
    return f"{row.target}[{inner}]" if inner else row.target
