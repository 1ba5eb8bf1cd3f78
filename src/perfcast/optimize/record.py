"""Keep optimize runs in the results store: one run, one result per candidate, committed as
each candidate finishes, predictions beside measurements, and the report as run artifacts.

Results are stored as target ``optimize:CANDIDATE`` with params ``{"model", ...}``, so
``store.history()`` follows one candidate on one model across runs. Store statuses:
measured -> ok; rejected and failed -> failed; skipped -> skipped. ``extra`` holds the
candidate's full JSON (see docs/optimize.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from perfcast.optimize.result import CandidateResult, OptimizeReport

_STORE_STATUS = {"measured": "ok", "rejected": "failed", "failed": "failed",
                 "skipped": "skipped"}


class Recorder:
    """Writes one optimize run into ``store``."""

    def __init__(self, store: Any, *, command: str, params: Mapping[str, Any],
                 threads: int, meta: Mapping[str, Any]) -> None:
        from perfcast.bench.environment import capture_environment

        env = capture_environment(threads=threads)
        env_id = store.environment_id(env.fingerprint(), env.hardware_key(), env.to_dict())
        self.store, self.params = store, dict(params)
        self.run_id = store.begin_run(command=command, environment_id=env_id,
                                      git_commit=env.software.get("git_commit"),
                                      meta={"kind": "optimize", **meta})

    def add(self, result: CandidateResult, hardware: str | None) -> None:
        """Store one finished candidate (and its prediction, when there is one)."""
        s = result.stats
        target = f"optimize:{result.name}"
        self.store.add_result(
            self.run_id, target=target, params=self.params,
            status=_STORE_STATUS[result.status], median_s=s.median if s else None,
            ci_low_s=s.ci95[0] if s else None, ci_high_s=s.ci95[1] if s else None,
            n=s.n if s else None, samples=list(s.samples) if s else None,
            error=result.reason if result.status != "measured" else None,
            extra=result.to_dict())
        p = result.prediction
        if p is not None and p.latency_s is not None and hardware is not None:
            self.store.add_prediction(target=target, params=self.params, hardware=hardware,
                                      predicted_s=p.latency_s,
                                      measured_s=s.median if s else None,
                                      confidence=p.confidence, run_id=self.run_id,
                                      data={"basis": p.basis, "speedup": p.speedup})

    def finish(self, report: OptimizeReport) -> None:
        """Mark the run complete and write ``report.json`` and ``report.md`` beside it."""
        from perfcast.optimize.report import to_markdown

        report.run_id = self.run_id
        self.store.finish_run(self.run_id, "complete")
        run_dir = self.store.run_dir(self.run_id, create=True)
        (run_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
        (run_dir / "report.md").write_text(to_markdown(report))

    def abort(self) -> None:
        """Mark the run failed (optimize raised before finishing)."""
        self.store.finish_run(self.run_id, "failed")
