"""Service functions over the results store: benchmark runs, history, validation, system.

Each takes the database path (None: ``$PERFCAST_DB`` or ``.perfcast/perfcast.db``), opens
the store for the call and returns JSON-able data equal to the CLI's ``--json`` output
where a CLI command exists. Errors are :mod:`perfcast.app.errors` types.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import json
import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from perfcast.app.errors import BadInput, NotFound, Unavailable, check_name

MAX_CASES = 200
Progress = Callable[[float, str], None]
# Optional features and the distributions they need (beside perfcast's own requirements).
FEATURES = {
    "server": ("fastapi", "uvicorn", "python-multipart"),
    "mcp": ("mcp",),
    "model analysis": ("torch",),
    "onnx upload": ("onnx",),
    "onnxruntime benchmarks": ("onnxruntime",),
}


@contextmanager
def _store(db: str | Path | None) -> Iterator[Any]:
    from perfcast.store import Store, StoreError, default_db_path

    try:
        store = Store(db or default_db_path())
    except StoreError as exc:
        raise Unavailable("db", str(exc)) from None
    try:
        yield store
    finally:
        store.close()


def _run(store: Any, field: str, run_id: str) -> Any:
    """The run ``run_id``; NotFound naming the closest ids."""
    from perfcast.store import StoreError

    try:
        return store.run(run_id)
    except StoreError:
        ids = [r.id for r in store.runs(limit=None)]
        close = difflib.get_close_matches(run_id, ids, n=3, cutoff=0.5)
        raise NotFound(field, run_id, allowed=ids[:20], suggestions=close) from None


# -- runs --------------------------------------------------------------------------------


def list_runs(db: str | Path | None = None, *, limit: int = 20, target: str | None = None,
              status: str | None = None) -> list[dict[str, Any]]:
    """The latest runs, newest first (``perfcast bench runs --json``)."""
    from perfcast.store import RUN_STATUSES

    if status is not None and status not in RUN_STATUSES:
        raise NotFound("status", status, allowed=list(RUN_STATUSES))
    with _store(db) as store:
        return [asdict(r) for r in store.runs(limit=limit, target=target, status=status)]


def show_run(db: str | Path | None, run_id: str) -> dict[str, Any]:
    """One run with its environment and results (``perfcast bench report RUN -f json``)."""
    from perfcast.bench.report import run_document

    with _store(db) as store:
        _run(store, "run_id", run_id)
        return run_document(store, run_id)


def compare_runs(db: str | Path | None, run_a: str, run_b: str, *, min_effect: float = 0.03,
                 allow_environment_change: bool = False) -> dict[str, Any]:
    """Run B against run A per target (``perfcast bench compare A B --json``)."""
    from perfcast.bench.compare import RunCompareError
    from perfcast.bench.compare import compare_runs as compare

    if not 0.0 <= min_effect <= 1.0:
        raise BadInput("min_effect", f"must be from 0 to 1, got {min_effect!r}")
    with _store(db) as store:
        _run(store, "a", run_a)
        _run(store, "b", run_b)
        try:
            result = compare(store, run_a, run_b, min_effect=min_effect,
                             allow_environment_change=allow_environment_change)
        except RunCompareError as exc:
            raise BadInput("b", str(exc)) from None
        return result.to_dict()


def history_targets(db: str | Path | None = None) -> list[str]:
    """Every target with at least one ok result, sorted."""
    with _store(db) as store:
        return sorted({r.target for r in store.results() if r.status == "ok"})


def history(db: str | Path | None, target: str, *, params: Mapping[str, Any] | None = None,
            limit: int = 100) -> dict[str, Any]:
    """Medians with 95% CI of ``target`` run after run, one series per (params, environment).

    ``params`` keeps only results with exactly these parameters; ``limit`` keeps the
    newest points of each series.
    """
    with _store(db) as store:
        rows = [r for r in store.results(target=target) if r.status == "ok"]
        if not rows:
            known = sorted({r.target for r in store.results() if r.status == "ok"})
            raise NotFound("target", target, allowed=known,
                           suggestions=difflib.get_close_matches(target, known, n=3))
        if params is not None:
            wanted = json.dumps(dict(params), sort_keys=True)
            rows = [r for r in rows if json.dumps(r.params, sort_keys=True) == wanted]
        runs = {run_id: store.run(run_id) for run_id in {r.run_id for r in rows}}
        envs = {run.environment_id: store.environment(run.environment_id).hardware_key
                for run in runs.values() if run.environment_id is not None}
    series: dict[tuple[str, int | None], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (runs[r.run_id].started_at, r.created_at)):
        run = runs[r.run_id]
        key = (json.dumps(r.params, sort_keys=True), run.environment_id)
        entry = series.setdefault(key, {"params": r.params, "environment_id": run.environment_id,
                                        "hardware": envs.get(run.environment_id),
                                        "points": []})
        entry["points"].append({
            "run_id": r.run_id, "started_at": run.started_at, "git_commit": run.git_commit,
            "median_s": r.median_s, "ci_low_s": r.ci_low_s, "ci_high_s": r.ci_high_s,
            "n": r.n, "energy_j": r.energy_j})
    for entry in series.values():
        entry["points"] = entry["points"][-limit:]
    return {"target": target, "series": list(series.values())}


def bench_targets() -> list[dict[str, Any]]:
    """The built-in benchmark targets (``perfcast bench list --json``)."""
    from perfcast.bench.benchmark import load_builtin_suites, select

    load_builtin_suites()
    targets = list({c.target.name: c.target for c in select([])}.values())
    return [{"target": t.name, "kind": "pair" if t.is_pair else "single",
             "device": t.first.device, "cases": len(t.cases()),
             "params": {k: list(v) for k, v in t.params.items()}, "tags": list(t.tags),
             "description": t.description} for t in targets]


def check_benchmarks(targets: Sequence[str], *,
                     params: Mapping[str, Sequence[str]] | None = None,
                     tags: Sequence[str] = (), budget_s: float = 2.0, target_ci: float = 0.02,
                     min_samples: int = 10) -> tuple[list[Any], Any]:
    """Validate a benchmark selection (fast): the cases and the stop rule."""
    from perfcast.bench.benchmark import BenchmarkError, load_builtin_suites, select
    from perfcast.bench.stats import StopRule

    if not targets:
        raise BadInput("targets", "name at least one suite, target or glob (e.g. micro:gemm)")
    load_builtin_suites()
    try:
        cases = select(list(targets), params={k: [str(v) for v in vs]
                                              for k, vs in (params or {}).items()},
                       tags=list(tags))
    except BenchmarkError as exc:
        raise BadInput("targets", str(exc)) from None
    try:
        rule = StopRule(target_rel_ci=target_ci, min_samples=min_samples, budget_s=budget_s)
    except ValueError as exc:
        raise BadInput("options", str(exc)) from None
    if not cases:
        raise BadInput("targets", "no benchmark case selected")
    if len(cases) > MAX_CASES:
        raise BadInput("targets", f"{len(cases)} cases selected; at most {MAX_CASES} per run")
    return cases, rule


def run_benchmarks(db: str | Path | None, targets: Sequence[str], *,
                   params: Mapping[str, Sequence[str]] | None = None,
                   tags: Sequence[str] = (), threads: int | None = None,
                   budget_s: float = 2.0, target_ci: float = 0.02, min_samples: int = 10,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Time the selected registered benchmarks as one stored run (``perfcast bench run
    --json``); ``progress(fraction, label)`` after each finished case side."""
    from perfcast.bench.runner import RunOptions, run_cases
    from perfcast.store import StoreError

    cases, rule = check_benchmarks(targets, params=params, tags=tags, budget_s=budget_s,
                                   target_ci=target_ci, min_samples=min_samples)
    sides = sum(len(c.target.impls) for c in cases)
    done: list[str] = []

    def advance(result: Any) -> None:
        done.append(result.label)
        if progress is not None:
            progress(len(done) / sides, result.label)

    command = "perfcast serve: run " + " ".join(targets)
    with _store(db) as store:
        try:
            report = run_cases(cases, store=store, command=command,
                               options=RunOptions(rule=rule, threads=threads),
                               on_result=advance)
        except (StoreError, ValueError) as exc:
            raise BadInput("options", str(exc)) from None
        return report.to_dict()


# -- validation --------------------------------------------------------------------------


def validation_summary(db: str | Path | None = None) -> dict[str, Any]:
    """The latest ``perfcast validate models`` predictions against measurements.

    One row per (model, batch, threads): the newest stored prediction; APE summaries over
    all rows, per model and per confidence category; predicted time per op category.
    """
    from perfcast.validate.models import error_summary

    with _store(db) as store:
        rows = [p for p in store.predictions() if p.target.startswith("validate:")
                and p.measured_s]
    latest: dict[tuple[str, str, str], Any] = {}
    for p in rows:  # oldest first: later rows replace earlier ones
        latest[(p.target, json.dumps(p.params, sort_keys=True), p.hardware)] = p
    models = []
    for p in latest.values():
        ape = abs(p.predicted_s - p.measured_s) / p.measured_s
        theoretical = p.data.get("theoretical_s")
        models.append({
            "model": p.target.removeprefix("validate:"), "params": p.params,
            "hardware": p.hardware, "predicted_s": p.predicted_s, "measured_s": p.measured_s,
            "ape": ape, "confidence": p.confidence, "theoretical_s": theoretical,
            "theoretical_ape": abs(theoretical - p.measured_s) / p.measured_s
            if theoretical else None,
            "predicted_by_category_s": p.data.get("predicted_by_category_s", {}),
            "profile": p.data.get("profile"), "estimator_version": p.estimator_version,
            "created_at": p.created_at})

    def grouped(key: str) -> dict[str, Any]:
        groups: dict[str, list[float]] = {}
        for m in models:
            groups.setdefault(str(m[key]), []).append(m["ape"])
        return {k: {**error_summary(v), "count": len(v)} for k, v in sorted(groups.items())}

    by_category: dict[str, float] = {}
    for m in models:
        for cat, seconds in m["predicted_by_category_s"].items():
            by_category[cat] = by_category.get(cat, 0.0) + seconds
    return {"models": models, **error_summary([m["ape"] for m in models]),
            "count": len(models), "by_model": grouped("model"),
            "by_confidence": grouped("confidence"),
            "predicted_by_category_s": by_category}


@lru_cache(maxsize=8)
def _reconciled(hardware: tuple[str, ...] | None) -> Any:
    from perfcast.validate.llm import load_rows, reconcile

    rows = [row for d in ("inferencemax", "mlperf") for row in load_rows(d)]
    return reconcile(rows, hardware=list(hardware) if hardware else None)


def validation_llm(hardware: Sequence[str] | None = None, *,
                   include_rows: bool = False) -> dict[str, Any]:
    """Predicted vs published LLM serving results (``perfcast validate llm --json`` on the
    bundled tables); ``include_rows`` keeps the per-row list (large)."""
    from perfcast.hardware import HardwareError

    devices = tuple(check_name("hardware", h) for h in hardware) if hardware else None
    try:
        out = _reconciled(devices).to_dict()
    except HardwareError as exc:
        raise BadInput("hardware", str(exc)) from None
    return out if include_rows else {k: v for k, v in out.items() if k != "rows"}


# -- system ------------------------------------------------------------------------------


def _dependency(requirement: str) -> dict[str, Any]:
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    try:
        installed: str | None = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    ok = installed is not None and (not req.specifier or req.specifier.contains(
        installed, prereleases=True))
    return {"name": req.name, "required": str(req.specifier) or None, "installed": installed,
            "ok": ok}


def system_info(db: str | Path | None = None) -> dict[str, Any]:
    """Versions, dependency health, optional features, the store and the catalogs."""
    import perfcast
    from perfcast.examples import list_examples
    from perfcast.frontends.llm import model_names
    from perfcast.hardware import catalog_names
    from perfcast.store import StoreError, default_db_path

    try:
        declared = importlib.metadata.requires("perfcast") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    deps = [_dependency(r.split(";")[0]) for r in declared if "extra ==" not in r]
    features = {}
    for feature, dists in FEATURES.items():
        checks = [_dependency(d) for d in dists]
        features[feature] = {"ok": all(c["ok"] for c in checks), "packages": checks}
    path = Path(db or default_db_path())
    store: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if path.exists():
        try:
            from perfcast.store import Store

            with Store(path) as s:
                store.update(ok=True, schema_version=s.schema_version,
                             runs=len(s.runs(limit=None)))
        except StoreError as exc:
            store.update(ok=False, error=str(exc))
    else:
        store["ok"] = True
    return {
        "perfcast": perfcast.__version__, "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": deps, "dependencies_ok": all(d["ok"] for d in deps),
        "features": features, "store": store,
        "catalog": {"hardware": len(catalog_names()), "llm_models": len(model_names()),
                    "examples": len(list_examples())},
        "torch_importable": importlib.util.find_spec("torch") is not None,
    }
