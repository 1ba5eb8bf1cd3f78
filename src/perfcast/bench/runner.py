"""Run benchmark cases into the results store: check, time, energy, profile, judge pairs.

Every case result is committed to the store as soon as it is measured, so a run that
dies keeps what it finished. Artifacts go to the run's directory: ``log.txt``,
``report.md``, ``results.json`` and, with profiling, ``traces/``.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from perfcast.bench.benchmark import Benchmark, Case
from perfcast.bench.environment import Environment, capture_environment
from perfcast.bench.expectations import ExpectationBook, default_dir, expectation_from
from perfcast.bench.nvtx import nvtx_range
from perfcast.bench.stats import Comparison, StopRule, compare
from perfcast.bench.timer import Measurement, measure
from perfcast.ir.cost import Cost
from perfcast.store import Store

PROFILERS = ("torch",)
TIMED = ("ok", "unstable")  # statuses of a case that was timed
# A timed case is "unstable" when the 95% CI of its median is wider than +-UNSTABLE_HALF_CI
# of it (and wider than the rule's target), or when the 1-minute load average exceeded the
# cores this process may use by LOAD_SLACK while it ran: other work was competing.
UNSTABLE_HALF_CI = 0.25
LOAD_SLACK = 1.0


class ExitCode:
    """Exit codes of ``perfcast bench run`` (and compare)."""

    OK = 0
    ERROR = 1  # a benchmark failed (raised, or its check() failed)
    BAD_INPUT = 2  # unknown target, invalid parameter, unusable database
    REGRESSION = 3  # an expectation was missed
    NOTHING_RAN = 4  # no case was timed (all skipped, or nothing selected)


@dataclass(frozen=True)
class RunOptions:
    """How cases are timed and what else a run records."""

    rule: StopRule = field(default_factory=StopRule)
    threads: int | None = None
    cold_cache: bool = False
    cuda_graph: bool = False
    profile: str | None = None
    update_expectations: bool = False
    expectations_dir: Path | None = None


@dataclass
class CaseResult:
    """One implementation of one case: timed, failed or skipped."""

    case: Case
    role: str | None
    status: str
    measurement: Measurement | None = None
    error: str | None = None
    work: Cost | None = None
    energy_j: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.case.id} {self.role}" if self.role else self.case.id

    @property
    def store_target(self) -> str:
        """Target name in the store: pairs keep their sides apart as ``suite:name@role``."""
        name = self.case.target.name
        return f"{name}@{self.role}" if self.role else name

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        out: dict[str, Any] = {"target": self.case.target.name, "params": self.case.params,
                               "status": self.status,
                               "median_s": m.median_s if m else None,
                               "ci95_s": list(m.ci95_s) if m else None,
                               "n": m.n if m else 0}
        if self.role:
            out["role"] = self.role
        if self.error:
            out["error"] = self.error
        if self.energy_j is not None:
            out["energy_j"] = self.energy_j
        return out


@dataclass
class PairOutcome:
    """A baseline/optimized comparison and its expectation verdict."""

    case: Case
    comparison: Comparison
    verdict: str  # "met" | "missed" | "no expectation" | "updated"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.case.target.name, "params": self.case.params,
                "speedup": self.comparison.speedup, "comparison": self.comparison.to_dict(),
                "expectation": self.verdict, "message": self.message}


@dataclass
class RunReport:
    """Everything a run produced; :attr:`exit_code` summarizes it."""

    run_id: str
    run_dir: Path
    environment: Environment
    results: list[CaseResult] = field(default_factory=list)
    pairs: list[PairOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(r.status == "failed" for r in self.results):
            return ExitCode.ERROR
        if any(p.verdict == "missed" for p in self.pairs):
            return ExitCode.REGRESSION
        if not any(r.status in TIMED for r in self.results):
            return ExitCode.NOTHING_RAN
        return ExitCode.OK

    @property
    def status(self) -> str:
        """The run's status in the store."""
        return {ExitCode.ERROR: "failed", ExitCode.REGRESSION: "regression"}.get(
            self.exit_code, "complete")

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "hardware": self.environment.hardware_key(),
                "exit_code": self.exit_code,
                "results": [r.to_dict() for r in self.results],
                "pairs": [p.to_dict() for p in self.pairs], "notes": self.notes}


Callback = Callable[[CaseResult], None]


def run_cases(cases: Sequence[Case], *, store: Store, command: str,
              options: RunOptions | None = None, run_id: str | None = None,
              on_result: Callback | None = None) -> RunReport:
    """Run ``cases`` as one run in ``store``; each result is committed when it is done."""
    options = options or RunOptions()
    if options.profile is not None and options.profile not in PROFILERS:
        raise ValueError(f"profile {options.profile!r} runs outside this process; "
                         f"in-process profilers: {', '.join(PROFILERS)}")
    env = capture_environment(threads=options.threads)
    env_id = store.environment_id(env.fingerprint(), env.hardware_key(), env.to_dict())
    run_id = store.begin_run(command=command, environment_id=env_id, run_id=run_id,
                             git_commit=env.software.get("git_commit"),
                             meta={"threads": options.threads, "profile": options.profile,
                                   "rule": _rule_dict(options.rule), "cases": len(cases)})
    run_dir = store.run_dir(run_id, create=True)
    report = RunReport(run_id, run_dir, env)
    book = ExpectationBook.load(options.expectations_dir or default_dir(), env.hardware_key())
    with (run_dir / "log.txt").open("a") as log:
        _log(log, f"run {run_id} on {env.hardware_key()}: {len(cases)} case(s), {command}")
        for case in cases:
            sides = []
            for role, cls in case.target.impls.items():
                result = _run_side(case, role, cls, options, run_dir, log)
                extra = {**result.extra, **_work_dict(result.work)}
                _store(store, run_id, result, extra)
                report.results.append(result)
                sides.append(result)
                if on_result is not None:
                    on_result(result)
            if case.target.is_pair and all(r.status in TIMED for r in sides):
                report.pairs.append(_judge(case, sides, book, run_id, options, log))
        if options.update_expectations and book.entries:
            book.save()
            report.notes.append(f"expectations written to {book.path}")
        _log(log, f"finished with exit code {report.exit_code}")
    store.finish_run(run_id, report.status)
    _write_artifacts(store, report)
    return report


def _run_side(case: Case, role: str | None, cls: type[Benchmark], options: RunOptions,
              run_dir: Path, log: TextIO) -> CaseResult:
    label = f"{case.id} {role}" if role else case.id
    reason = cls.skip_reason(**case.params)
    if reason:
        _log(log, f"skip {label}: {reason}")
        return CaseResult(case, role, "skipped", error=reason)
    bench = cls()
    stage = "setup"
    try:
        with nvtx_range(case.id, "setup"):
            bench.setup(**case.params)
        stage = "check"
        with nvtx_range(case.id, "check"):
            bench.check()
        stage = "timing"
        result = _time(case, role, bench, options)
        if options.profile == "torch":
            stage = "profiling"
            result.extra["profile"] = _profile(case, role, bench, run_dir)
    except Exception as exc:  # a benchmark's own code failed: report it, keep running
        _log(log, f"FAILED {label} in {stage}:\n{traceback.format_exc()}")
        return CaseResult(case, role, "failed", error=f"{label}: {stage} failed: "
                          f"{type(exc).__name__}: {exc}".strip())
    finally:
        _teardown(bench, case, log)
    _log(log, f"{result.status} {label}: median {result.measurement.median_s:.6g} s, "
              f"n={result.measurement.n}, {result.measurement.stop_reason}"
              + (f"; {result.error}" if result.error else ""))
    return result


def machine_load() -> tuple[float, int]:
    """(1-minute load average, cores this process may use)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return os.getloadavg()[0], cores or 1


def instability(m: Measurement, rule: StopRule, load: float, cores: int) -> str | None:
    """Why a measurement is not to be trusted (None when it is): CI or machine load."""
    lo, hi = m.ci95_s
    half = (hi - lo) / 2 / m.median_s if m.median_s > 0 else float("inf")
    reasons = []
    if half > max(UNSTABLE_HALF_CI, rule.target_rel_ci):
        reasons.append(f"95% CI ±{half:.0%} of the median (bound ±{UNSTABLE_HALF_CI:.0%}, "
                       f"target {rule.target_rel_ci:.0%} wide)")
    if load > cores + LOAD_SLACK:
        reasons.append(f"machine loaded: load average {load:.2f} on {cores} core(s)")
    return "unstable: " + "; ".join(reasons) if reasons else None


def _time(case: Case, role: str | None, bench: Benchmark, options: RunOptions) -> CaseResult:
    from perfcast.bench.energy import energy_meters, measure_energy

    meters, unavailable = energy_meters(bench.device)
    load_before = machine_load()[0]
    with measure_energy(meters) as span:
        m = measure(bench.run, device=bench.device, rule=options.rule, threads=options.threads,
                    cold_cache=options.cold_cache, cuda_graph=options.cuda_graph, name=case.id)
    load, cores = machine_load()
    why = instability(m, options.rule, max(load, load_before), cores)
    result = CaseResult(case, role, "unstable" if why else "ok", measurement=m,
                        work=bench.work(), error=why)
    result.extra["measurement"] = m.to_dict()
    result.extra["load"] = {"load_average": max(load, load_before), "cores": cores}
    total = span.reading.total_j
    if total is not None:
        calls = m.warmup_calls + m.n * m.number
        result.energy_j = total
        result.extra["energy"] = {"joules": span.reading.joules, "seconds": span.reading.seconds,
                                  "per_call_j": total / calls}
    else:
        result.extra["energy"] = {"unavailable": unavailable}
    return result


def _profile(case: Case, role: str | None, bench: Benchmark, run_dir: Path) -> dict[str, Any]:
    from perfcast.bench.profilers import torch_profile

    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", case.id + (f"@{role}" if role else ""))
    with nvtx_range(case.id, "profile"):
        profile = torch_profile(bench.run, trace_path=run_dir / "traces" / f"{stem}.json",
                                device=bench.device, nvtx_name=case.id)
    summary = run_dir / "traces" / f"{stem}.txt"
    summary.write_text(profile.table())
    return {"trace": str(profile.trace_path), "summary": str(summary),
            "top": [asdict(r) for r in profile.rows[:10]]}


def _teardown(bench: Benchmark, case: Case, log: TextIO) -> None:
    try:
        with nvtx_range(case.id, "teardown"):
            bench.teardown()
    except Exception as exc:  # a failing teardown must not hide the result
        _log(log, f"teardown of {case.id} raised {type(exc).__name__}: {exc}")


def _judge(case: Case, sides: list[CaseResult], book: ExpectationBook, run_id: str,
           options: RunOptions, log: TextIO) -> PairOutcome:
    by_role = {r.role: r for r in sides}
    base, opt = by_role["baseline"].measurement, by_role["optimized"].measurement
    assert base is not None and opt is not None
    comparison = compare(base.stats, opt.stats)
    by_role["optimized"].extra["comparison"] = comparison.to_dict()
    expectation = book.get(case.id)
    if options.update_expectations:
        book.entries[case.id] = expectation_from(comparison, run_id)
        outcome = PairOutcome(case, comparison, "updated",
                              f"expectation set: {book.entries[case.id].to_dict()}")
    elif expectation is None:
        outcome = PairOutcome(case, comparison, "no expectation",
                              f"speedup {comparison.speedup:.2f}x; no expectation for this "
                              "hardware (--update-expectations records one)")
    else:
        met, message = expectation.judge(comparison)
        outcome = PairOutcome(case, comparison, "met" if met else "missed", message)
    _log(log, f"pair {case.id}: {outcome.verdict}: {outcome.message}")
    return outcome


def _store(store: Store, run_id: str, result: CaseResult, extra: dict[str, Any]) -> None:
    m = result.measurement
    store.add_result(run_id, target=result.store_target, params=result.case.params,
                     status=result.status, median_s=m.median_s if m else None,
                     ci_low_s=m.ci95_s[0] if m else None, ci_high_s=m.ci95_s[1] if m else None,
                     n=m.n if m else None, stats=_stats_summary(m) if m else None,
                     samples=list(m.samples) if m else None, error=result.error,
                     energy_j=result.energy_j, extra=extra)


def _stats_summary(m: Measurement) -> dict[str, Any]:
    summary = m.stats.to_dict()
    summary.pop("samples", None)
    return summary


def _work_dict(work: Cost | None) -> dict[str, Any]:
    return {} if work is None else {"work": {"flops": work.flops, "bytes": work.bytes}}


def _rule_dict(rule: StopRule) -> dict[str, Any]:
    return {"target_rel_ci": rule.target_rel_ci, "min_samples": rule.min_samples,
            "max_samples": rule.max_samples, "budget_s": rule.budget_s}


def _log(log: TextIO, line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    log.write(f"{stamp} {line}\n")
    log.flush()


def _write_artifacts(store: Store, report: RunReport) -> None:
    from perfcast.bench.report import render_run

    (report.run_dir / "results.json").write_text(json.dumps(report.to_dict(), indent=2))
    (report.run_dir / "report.md").write_text(render_run(store, report.run_id, "markdown"))
