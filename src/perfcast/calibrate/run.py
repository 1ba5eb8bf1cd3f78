"""``perfcast calibrate``: measure the calibration families on this machine and fit a profile.

Two stages share the budget: microbenchmarks (single ops, sizes chosen where the rate
changes fastest) fit the shape models, costs and rate curves; then synthetic networks,
predicted with them and measured whole, check the result (the per-group correction
fitted there is stored, not applied). Every
measurement is committed to the store as it is taken (one run); the profile is fitted
and written only when sampling ends, atomically, to the store and to a portable JSON
file. A calibration interrupted halfway leaves its run marked failed and no profile:
nothing half-written is ever used.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfcast import __version__
from perfcast.bench.benchmark import Case, load_builtin_suites, targets
from perfcast.bench.environment import capture_environment
from perfcast.bench.stats import StopRule
from perfcast.bench.timer import measure, measure_benchmark
from perfcast.calibrate.composite import MIN_NETS, CompositeFit, CompositeRow, fit_composite
from perfcast.calibrate.profile import (
    LAYER_OVERHEAD,
    OVERHEAD,
    CalibrationPoint,
    Profile,
    fit_profile,
)
from perfcast.calibrate.quality import FIT_KEY, fit_record
from perfcast.calibrate.reference import (
    Reference,
    drift,
    mean_reference,
    measure_reference,
)
from perfcast.calibrate.sampler import INITIAL_POINTS, Family, families, next_size
from perfcast.store import Store

PROFILE_NAME = "cpu"
POINT_RULE = StopRule(target_rel_ci=0.03, min_samples=5, budget_s=0.25)
NET_RULE = StopRule(target_rel_ci=0.03, min_samples=5, budget_s=1.0)
OVERHEAD_TARGET = "micro:launch-overhead"
LAYER_TARGET = "micro:module-overhead"
COMPOSITE_TARGET = "calibrate:composite"
REFERENCE_TARGET = "calibrate:reference"
COMPOSITE_SHARE = 0.25  # of the budget, for the whole-network check
COMPOSITE_SEED = 0


@dataclass
class CalibrationResult:
    """What a calibration produced."""

    run_id: str
    profile: Profile
    profile_path: Path
    version: int
    points: list[CalibrationPoint] = field(default_factory=list)
    elapsed_s: float = 0.0
    composite_rows: list[CompositeRow] = field(default_factory=list)
    # how much slower (+) the reference kernels ran at the end than at the start
    reference_change: Reference = field(default_factory=dict)
    poor_fits: list[str] = field(default_factory=list)  # fits above POOR_FIT_RMSE
    default: bool = True  # whether ``--profile latest`` picks it (quality.py)


Progress = Callable[[str, float], None]  # (what was measured, fraction of budget used)


def default_threads() -> list[int]:
    """1 and every core this process may use."""
    return sorted({1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1})


def profile_path(store: Store, hardware_key: str) -> Path:
    """Where a store keeps the portable copy of a machine's latest profile."""
    return store.path.parent / "profiles" / f"{hardware_key}.json"


def calibrate(store: Store, *, budget_s: float = 600.0, threads: Sequence[int] | None = None,
              dtypes: Sequence[str] = ("float32",), output: Path | None = None,
              command: str = "perfcast calibrate", accept_poor_fit: bool = False,
              on_point: Progress | None = None) -> CalibrationResult:
    """Measure the calibration families within ``budget_s`` and store the fitted profile
    (not as the default when a fit is poor, unless ``accept_poor_fit``)."""
    if budget_s <= 0:
        raise ValueError(f"budget must be positive, got {budget_s} s")
    thread_counts = sorted(set(threads or default_threads()))
    if any(t < 1 for t in thread_counts):
        raise ValueError(f"thread counts must be >= 1, got {thread_counts}")
    load_builtin_suites()
    env = capture_environment()
    env_id = store.environment_id(env.fingerprint(), env.hardware_key(), env.to_dict())
    run_id = store.begin_run(command=command, environment_id=env_id,
                             git_commit=env.software.get("git_commit"),
                             meta={"calibration": {"budget_s": budget_s, "threads": thread_counts,
                                                   "dtypes": list(dtypes)}})
    try:
        start_ref = _reference(store, run_id, thread_counts, "start")  # outside the budget
        sampler = _Sampler(store, run_id, budget_s, on_point)
        micro_budget = budget_s * (1 - COMPOSITE_SHARE)
        for i, t in enumerate(thread_counts):
            share = (micro_budget - sampler.elapsed) / (len(thread_counts) - i)
            sampler.sweep(t, list(dtypes), sampler.elapsed + share)
        profile = fit_profile(sampler.points, hardware_key=env.hardware_key(),
                              fingerprint=env.fingerprint(), environment=env.to_dict(),
                              perfcast_version=__version__)
        rows = sampler.networks(profile, thread_counts, budget_s)
        end_ref = _reference(store, run_id, thread_counts, "end")
        profile = replace(profile, composite=fit_networks(rows),
                          reference=mean_reference(start_ref, end_ref))
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    saved = _save(store, profile, env_id, output, accept_poor_fit)
    store.finish_run(run_id, "complete")
    return CalibrationResult(run_id, profile, saved.path, saved.version, sampler.points,
                             sampler.elapsed, rows, drift(end_ref, start_ref), saved.poor,
                             saved.default)


def _reference(store: Store, run_id: str, threads: Sequence[int], at: str) -> Reference:
    """Time the reference kernels and store each timing in the run (``at``: start, end)."""
    timed = measure_reference(threads)
    for t, kernels in timed.items():
        for name, seconds in kernels.items():
            store.add_result(run_id, target=REFERENCE_TARGET,
                             params={"kernel": name, "threads": t, "at": at}, status="ok",
                             median_s=seconds, extra={"reference": at})
    return timed


def _stored_reference(results: Sequence[Any]) -> Reference:
    """The mean of a stored run's start and end reference timings ({} if it has none)."""
    by_at: dict[str, Reference] = defaultdict(dict)
    for r in results:
        if r.target == REFERENCE_TARGET and r.status == "ok":
            by_at[r.params["at"]].setdefault(int(r.params["threads"]), {})[
                r.params["kernel"]] = float(r.median_s)
    if "start" not in by_at or "end" not in by_at:
        return {}
    return mean_reference(by_at["start"], by_at["end"])


def refit(store: Store, run_id: str, *, output: Path | None = None,
          allow_incomplete: bool = False, accept_poor_fit: bool = False) -> CalibrationResult:
    """Fit a new profile version from a stored calibration run, measuring nothing.

    The microbenchmark points are read back as they were measured; the synthetic
    networks are rebuilt from their seed and predicted again with the new curves. A run
    that did not complete (killed, failed, still running) is refused unless
    ``allow_incomplete``.
    """
    start = time.perf_counter()
    run = store.run(run_id)
    if run.status != "complete" and not allow_incomplete:
        raise ValueError(f"calibration run {run_id} is {run.status}, not complete: its "
                         "measurements may stop partway through the families; refit it "
                         "anyway with --allow-incomplete")
    stored = store.results(run_id)
    results = [r for r in stored if r.status == "ok" and (r.extra or {}).get("calibration")]
    if not results:
        raise ValueError(f"run {run_id} has no calibration measurements to refit "
                         f"(its command: {run.command})")
    points = [_stored_point(r) for r in results if r.target != COMPOSITE_TARGET]
    env = store.environment(run.environment_id)
    profile = fit_profile(points, hardware_key=env.hardware_key, fingerprint=env.fingerprint,
                          environment=env.data, perfcast_version=__version__)
    rows = _stored_rows(profile, [r for r in results if r.target == COMPOSITE_TARGET])
    profile = replace(profile, composite=fit_networks(rows),
                      reference=_stored_reference(stored))
    saved = _save(store, profile, run.environment_id, output, accept_poor_fit)
    return CalibrationResult(run_id, profile, saved.path, saved.version, points,
                             time.perf_counter() - start, rows, poor_fits=saved.poor,
                             default=saved.default)


@dataclass(frozen=True)
class _Saved:
    path: Path
    version: int
    poor: list[str]
    default: bool


def _save(store: Store, profile: Profile, env_id: int | None, output: Path | None,
          accept_poor_fit: bool) -> _Saved:
    """Store ``profile`` as a new version with its fit check and write its portable file.

    A profile with poor fits that was not accepted is written beside the default file
    (``<hardware-key>.v<version>.json``), never over it.
    """
    check = fit_record(profile, accepted=accept_poor_fit)
    version = store.save_profile(hardware_key=profile.hardware_key, name=PROFILE_NAME,
                                 data={**profile.to_dict(), FIT_KEY: check},
                                 environment_id=env_id)
    default = not check["poor"] or accept_poor_fit
    path = output or profile_path(store, profile.hardware_key)
    if not default and output is None:
        path = path.with_name(f"{profile.hardware_key}.v{version}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.save(path)
    return _Saved(path, version, check["poor"], default)


def _stored_point(result: Any) -> CalibrationPoint:
    params = {k: v for k, v in result.params.items() if k != "threads"}
    work = result.extra.get("work", {})
    return CalibrationPoint(result.extra["category"], params.get("dtype", "float32"),
                            int(result.params["threads"]), float(work.get("flops", 0.0)),
                            float(work.get("bytes", 0.0)), float(result.median_s), params)


def _stored_rows(profile: Profile, results: Sequence[Any]) -> list[CompositeRow]:
    """Stored network measurements, predicted again with ``profile``."""
    from perfcast.calibrate.synthetic import synthetic_nets
    from perfcast.estimate.analyze import prepare

    by_net: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for r in results:
        by_net[(r.params["net"], int(r.params["seed"]))].append(r)
    nets = {(n.name, seed): n for seed in {seed for _, seed in by_net}
            for n in synthetic_nets(seed)}
    rows = []
    for (name, seed), measured in sorted(by_net.items()):
        if (name, seed) not in nets:
            raise ValueError(f"stored network {name!r} (seed {seed}) is not one this "
                             "perfcast generates: refit with the perfcast that measured it")
        model, inputs = nets[(name, seed)].build()
        prepared = prepare(model, inputs, dtype="float32", name=name)
        for r in measured:
            t = int(r.params["threads"])
            busy, kernels = predict_groups(prepared, profile, t)
            rows.append(CompositeRow(name, t, float(r.median_s), busy, kernels,
                                     profile.overhead_s[t]))
    return rows


def predict_groups(prepared: Any, profile: Profile, threads: int) -> tuple[dict[str, float], int]:
    """Busy seconds per kernel group (overhead excluded) and the kernel count of a
    prepared model, predicted for this machine with ``profile``'s curves alone."""
    from perfcast.calibrate.composite import group_of
    from perfcast.calibrate.model import apply_profile
    from perfcast.estimate.analyze import estimate_prepared
    from perfcast.hardware import load_spec

    micro = replace(profile, composite={})
    spec, efficiency = apply_profile(load_spec("local"), micro, threads)
    est = estimate_prepared(prepared, spec, efficiency=efficiency)
    busy: dict[str, float] = defaultdict(float)
    for k in est.kernels:
        category = str(k.kernel.category) if k.kernel.category else None
        group = group_of(category, float(k.kernel.flops), float(k.kernel.bytes))
        busy[str(group)] += float(k.time_s) - float(k.overhead_s)
    return dict(busy), len(est.kernels)


def fit_networks(rows: Sequence[CompositeRow]) -> dict[int, CompositeFit]:
    """One whole-network fit per thread count that has enough measured networks."""
    by_threads: dict[int, list[CompositeRow]] = defaultdict(list)
    for row in rows:
        by_threads[row.threads].append(row)
    return {t: fit_composite(group) for t, group in sorted(by_threads.items())
            if len(group) >= MIN_NETS}


class _Sampler:
    """Measures cases, commits each to the store, and picks the next size per family."""

    def __init__(self, store: Store, run_id: str, budget_s: float,
                 on_point: Progress | None) -> None:
        self.store, self.run_id, self.budget_s, self.on_point = store, run_id, budget_s, on_point
        self.start = time.perf_counter()
        self.points: list[CalibrationPoint] = []
        self.registry = targets()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def sweep(self, threads: int, dtypes: list[str], until_s: float) -> None:
        """Overhead first, then a coarse pass over every family, then refinement."""
        self.measure(OVERHEAD_TARGET, OVERHEAD, {}, "float32", threads)
        self.measure(LAYER_TARGET, LAYER_OVERHEAD, {}, "float32", threads)
        seen: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        groups = [(f, d) for f in families() for d in dtypes]
        starts = [(f, d, f.initial_sizes()) for f, d in groups]
        coarse = [(f, d, sizes[i]) for i in range(INITIAL_POINTS)  # round-robin over families
                  for f, d, sizes in starts if i < len(sizes)]
        for family, dtype, size in coarse:
            if self.elapsed >= until_s:
                return
            self._measure_size(family, dtype, size, threads, seen)
        while self.elapsed < until_s:
            progressed = False
            for family, dtype in groups:
                size = next_size(seen[(family.name, dtype)])
                if size is None or self.elapsed >= until_s:
                    continue
                self._measure_size(family, dtype, size, threads, seen)
                progressed = True
            if not progressed:
                return

    def networks(self, profile: Profile, threads: Sequence[int],
                 until_s: float) -> list[CompositeRow]:
        """Predict and measure synthetic networks at every thread count until ``until_s``."""
        import torch

        from perfcast.calibrate.synthetic import synthetic_nets
        from perfcast.estimate.analyze import prepare

        rows: list[CompositeRow] = []
        for net in synthetic_nets(COMPOSITE_SEED):
            if self.elapsed >= until_s:
                break
            model, inputs = net.build()
            prepared = prepare(model, inputs, dtype="float32", name=net.name)
            for t in threads:
                busy, kernels = predict_groups(prepared, profile, t)
                with torch.inference_mode():
                    m = measure(model, *inputs, threads=t, rule=NET_RULE, name=net.name)
                row = CompositeRow(net.name, t, m.median_s, busy, kernels,
                                   profile.overhead_s[t])
                rows.append(row)
                self.store.add_result(
                    self.run_id, target=COMPOSITE_TARGET,
                    params={"net": net.name, "seed": COMPOSITE_SEED, "threads": t}, status="ok",
                    median_s=m.median_s, ci_low_s=m.ci95_s[0], ci_high_s=m.ci95_s[1], n=m.n,
                    samples=list(m.samples),
                    extra={"calibration": True, "category": "composite", "config": net.config,
                           "busy_s": row.busy_s, "kernels": row.kernels,
                           "micro_predicted_s": row.micro_predicted_s})
                if self.on_point is not None:
                    self.on_point(f"{COMPOSITE_TARGET} {net.name} threads={t}",
                                  min(self.elapsed / self.budget_s, 1.0))
        return rows

    def _measure_size(self, family: Family, dtype: str, size: int, threads: int,
                      seen: dict[tuple[str, str], list[tuple[int, float]]]) -> None:
        point = self.measure(family.target, family.category, family.make(size, dtype), dtype,
                             threads)
        if point is not None:
            work = point.flops if family.rate_of == "flops" else point.bytes
            seen[(family.name, dtype)].append((size, work / point.seconds))

    def measure(self, target_name: str, category: str, params: dict, dtype: str,
                threads: int) -> CalibrationPoint | None:
        """Time one case; store it; None when it cannot run here."""
        target = self.registry[target_name]
        cls = target.first
        case = Case(target, params)
        if cls.skip_reason(**params):
            return None
        m, work = measure_benchmark(cls(), params, threads=threads, rule=POINT_RULE,
                                    name=case.id)
        flops, nbytes = (work.flops, work.bytes) if work else (0.0, 0.0)
        self.store.add_result(self.run_id, target=target_name,
                              params={**params, "threads": threads}, status="ok",
                              median_s=m.median_s, ci_low_s=m.ci95_s[0], ci_high_s=m.ci95_s[1],
                              n=m.n, samples=list(m.samples),
                              extra={"work": {"flops": flops, "bytes": nbytes},
                                     "category": category, "calibration": True})
        point = CalibrationPoint(category, dtype, threads, flops, nbytes, m.median_s, params)
        self.points.append(point)
        if self.on_point is not None:
            self.on_point(f"{case.id} threads={threads}", min(self.elapsed / self.budget_s, 1.0))
        return point
