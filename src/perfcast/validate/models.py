"""``perfcast validate models``: predicted vs measured forward latency on this machine.

For each model, batch and thread count: capture once, estimate PyTorch eager latency on
the local CPU with the machine's calibration profile (and without it, THEORETICAL, to
show the gain), time the real eager forward with the harness, and report the absolute
percentage errors. Predictions and measurements go to the store, so accuracy is
tracked over time like performance.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfcast import __version__
from perfcast.bench.stats import StopRule
from perfcast.bench.timer import measure
from perfcast.calibrate.profile import Profile
from perfcast.calibrate.reference import (
    DRIFT_WARNING,
    Reference,
    drift,
    mean_reference,
    measure_reference,
    reference_to_dict,
    worst_drift,
)
from perfcast.hardware.detect import scale_to_threads
from perfcast.store import Store

WITHIN = 0.10  # an APE at most this counts as "within ±10%" (float rounding tolerated)
MODEL_RULE = StopRule(target_rel_ci=0.02, min_samples=5, budget_s=2.0)  # per case and round
DEFAULT_ROUNDS = 3


@dataclass(frozen=True)
class ModelResult:
    """One model at one batch and thread count."""

    name: str
    batch: int
    threads: int
    predicted_s: float
    measured_s: float
    confidence: str
    theoretical_s: float
    by_category_s: dict[str, float] = field(default_factory=dict)
    spread: float = 0.0  # slowest round median / fastest - 1: the measurement noise

    @property
    def ape(self) -> float:
        return abs(self.predicted_s - self.measured_s) / self.measured_s

    @property
    def theoretical_ape(self) -> float:
        return abs(self.theoretical_s - self.measured_s) / self.measured_s

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "batch": self.batch, "threads": self.threads,
                "predicted_s": self.predicted_s, "measured_s": self.measured_s,
                "ape": self.ape, "confidence": self.confidence,
                "theoretical_s": self.theoretical_s, "theoretical_ape": self.theoretical_ape,
                "predicted_by_category_s": self.by_category_s, "spread": self.spread}


def error_summary(apes: Sequence[float]) -> dict[str, float | None]:
    """MAPE, median APE and the share within ±10% of a list of APEs."""
    if not apes:
        return {"mape": None, "median_ape": None, "within_10pct": None}
    return {"mape": statistics.fmean(apes), "median_ape": statistics.median(apes),
            "within_10pct": sum(a <= WITHIN + 1e-12 for a in apes) / len(apes)}


def noise_summary(spreads: Sequence[float], rounds: int) -> dict[str, float | int | None]:
    """Rounds per case, the median round-to-round spread and the share of cases over 10%."""
    if not spreads or rounds < 2:
        return {"rounds": rounds, "median_spread": None, "over_10pct": None}
    return {"rounds": rounds, "median_spread": statistics.median(spreads),
            "over_10pct": sum(s > WITHIN for s in spreads) / len(spreads)}


@dataclass
class ModelValidation:
    """Every model result plus error summaries (calibrated, theoretical, by confidence)."""

    results: list[ModelResult]
    profile_version: str | None
    failures: dict[str, str] = field(default_factory=dict)
    rounds: int = 1
    reference_s: Reference = field(default_factory=dict)  # timed around this validation
    calibration_reference_s: Reference = field(default_factory=dict)  # the profile's

    def machine(self) -> dict[str, Any]:
        """The reference kernels now and at calibration, and the machine's drift since
        (``now / then - 1``: positive when it runs slower now); see calibrate.reference."""
        change = drift(self.reference_s, self.calibration_reference_s)
        return {"reference_s": reference_to_dict(self.reference_s),
                "calibration_reference_s": reference_to_dict(self.calibration_reference_s),
                "drift": reference_to_dict(change) if change else None,
                "worst_drift": worst_drift(change) if change else None}

    def to_dict(self) -> dict[str, Any]:
        by_conf: dict[str, list[float]] = {}
        for r in self.results:
            by_conf.setdefault(r.confidence, []).append(r.ape)
        return {"models": [r.to_dict() for r in self.results],
                **error_summary([r.ape for r in self.results]),
                "theoretical": error_summary([r.theoretical_ape for r in self.results]),
                "by_confidence": {c: error_summary(a) for c, a in by_conf.items()},
                "noise": noise_summary([r.spread for r in self.results], self.rounds),
                "machine": self.machine(), "profile": self.profile_version,
                "failures": self.failures}


Builder = Callable[[int], tuple[Any, tuple]]
Progress = Callable[[str], None]


def validate_models(models: dict[str, Builder], *, batches: Sequence[int] = (1, 8),
                    threads: Sequence[int] = (1, 2), profile: Profile | None,
                    foreign_profile: bool = False, store: Store | None = None,
                    rule: StopRule = MODEL_RULE, rounds: int = DEFAULT_ROUNDS,
                    progress: Progress | None = None) -> ModelValidation:
    """Predict and measure every model × batch × thread count; a failing model is reported.

    Every case is timed once per round, rounds one after another, so a burst of load on
    a shared machine hits one round of a case, not all of them. A case's measured
    latency is its fastest round's median (load only ever slows a run down); the spread
    of its round medians is reported as its measurement noise.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    from perfcast.hardware import load_spec

    local = load_spec("local")
    cases, failures = _prepare_cases(models, batches, threads, profile, foreign_profile,
                                     local, progress)
    medians: list[list[float]] = [[] for _ in cases]
    used = sorted({c.threads for c in cases})
    before = measure_reference(used)
    for r in range(rounds):
        for case, timed in zip(cases, medians, strict=True):
            if progress is not None:
                progress(f"round {r + 1}/{rounds}: {case.label} threads={case.threads}")
            timed.append(_time(case, rule))
    results = [ModelResult(c.name, c.batch, c.threads, c.predicted_s, min(timed),
                           c.confidence, c.theoretical_s, c.by_category_s,
                           max(timed) / min(timed) - 1.0)
               for c, timed in zip(cases, medians, strict=True)]
    validation = ModelValidation(results, _profile_label(profile), failures, rounds,
                                 mean_reference(before, measure_reference(used)),
                                 profile.reference if profile is not None else {})
    if store is not None:
        _record(store, validation)
    return validation


@dataclass
class _Case:
    """A built model at one batch and thread count, with its predictions."""

    name: str
    batch: int
    threads: int
    model: Any
    inputs: tuple
    predicted_s: float
    confidence: str
    theoretical_s: float
    by_category_s: dict[str, float]

    @property
    def label(self) -> str:
        return f"{self.name} batch={self.batch}"


def _prepare_cases(models: dict[str, Builder], batches: Sequence[int],
                   threads: Sequence[int], profile: Profile | None, foreign: bool,
                   local: Any, progress: Progress | None) -> tuple[list[_Case], dict[str, str]]:
    """Build, capture and predict every case; models that fail are reported, not raised."""
    from perfcast.estimate.analyze import estimate_prepared, prepare

    cases: list[_Case] = []
    failures: dict[str, str] = {}
    for name, build in models.items():
        for batch in batches:
            label = f"{name} batch={batch}"
            if progress is not None:
                progress(f"capturing {label}")
            try:
                model, inputs = build(batch)
                prepared = prepare(model, inputs, dtype="float32", name=name)
            except Exception as exc:  # a model that cannot be built or captured: keep going
                failures[label] = f"{type(exc).__name__}: {exc}"
                continue
            for t in threads:
                predicted, confidence, by_cat = _predict(prepared, local, profile, t, foreign,
                                                         estimate_prepared)
                theoretical = estimate_prepared(prepared,
                                                scale_to_threads(local, t)).totals.time_s
                cases.append(_Case(name, batch, t, model, inputs, predicted, confidence,
                                   float(theoretical), by_cat))
    return cases, failures


def _time(case: _Case, rule: StopRule) -> float:
    """Median forward latency of one case, timed once."""
    import torch

    with torch.inference_mode():
        return measure(case.model, *case.inputs, threads=case.threads, rule=rule,
                       name=f"{case.label} threads={case.threads}").median_s


def _predict(prepared: Any, local: Any, profile: Profile | None, threads: int, foreign: bool,
             estimate: Callable[..., Any]) -> tuple[float, str, dict[str, float]]:
    if profile is None:
        est = estimate(prepared, scale_to_threads(local, threads))
    else:
        from perfcast.calibrate.model import apply_profile

        spec, efficiency = apply_profile(local, profile, threads, foreign=foreign)
        est = estimate(prepared, spec, efficiency=efficiency)
    by_category: dict[str, float] = {}
    for k in est.kernels:
        category = str(k.kernel.category) if k.kernel.category else "unknown"
        by_category[category] = by_category.get(category, 0.0) + float(k.time_s)
    return float(est.totals.time_s), str(est.confidence), by_category


def _profile_label(profile: Profile | None) -> str | None:
    return None if profile is None else f"{profile.hardware_key} {profile.created_at}"


def _record(store: Store, validation: ModelValidation) -> None:
    for r in validation.results:
        store.add_prediction(target=f"validate:{r.name}", params={"batch": r.batch,
                                                                   "threads": r.threads},
                             hardware="local", predicted_s=r.predicted_s,
                             measured_s=r.measured_s, confidence=r.confidence,
                             estimator_version=__version__,
                             data={"theoretical_s": r.theoretical_s, "spread": r.spread,
                                   "profile": validation.profile_version,
                                   "predicted_by_category_s": r.by_category_s})


def write_report(validation: ModelValidation, directory: Path) -> Path:
    """Markdown report and a predicted-vs-measured plot in ``directory``; returns the .md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    d = validation.to_dict()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for key, label in (("theoretical_s", "THEORETICAL"), ("predicted_s", "calibrated")):
        ax.scatter([m["measured_s"] * 1e3 for m in d["models"]],
                   [m[key] * 1e3 for m in d["models"]], label=label, s=18)
    lo = min(min(m["measured_s"], m["predicted_s"], m["theoretical_s"]) for m in d["models"])
    hi = max(max(m["measured_s"], m["predicted_s"], m["theoretical_s"]) for m in d["models"])
    ax.plot([lo * 1e3, hi * 1e3], [lo * 1e3, hi * 1e3], "k--", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="measured (ms)", ylabel="predicted (ms)",
           title="perfcast validate models")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "predicted_vs_measured.png", dpi=120)
    plt.close(fig)
    path = directory / "validation.md"
    path.write_text(render_markdown(validation))
    return path


def render_markdown(validation: ModelValidation) -> str:
    """The validation table and its error summaries as Markdown."""
    d = validation.to_dict()
    lines = ["# perfcast validate models", "",
             f"profile: {d['profile'] or 'none (THEORETICAL)'}", "",
             "| model | batch | threads | measured ms | spread | predicted ms | APE | confidence "
             "| theoretical ms | APE |", "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for m in d["models"]:
        lines.append(f"| {m['name']} | {m['batch']} | {m['threads']} | "
                     f"{m['measured_s'] * 1e3:.2f} | {m['spread']:.0%} | "
                     f"{m['predicted_s'] * 1e3:.2f} | "
                     f"{m['ape']:.1%} | {m['confidence']} | {m['theoretical_s'] * 1e3:.2f} | "
                     f"{m['theoretical_ape']:.1%} |")
    lines += ["", "| estimate | MAPE | median APE | within ±10% |", "|---|---:|---:|---:|"]
    for label, s in (("calibrated", d), ("THEORETICAL", d["theoretical"]),
                     *((f"confidence {c}", s) for c, s in d["by_confidence"].items())):
        if s["mape"] is not None:
            lines.append(f"| {label} | {s['mape']:.1%} | {s['median_ape']:.1%} | "
                         f"{s['within_10pct']:.0%} |")
    noise = d["noise"]
    if noise["median_spread"] is not None:
        lines += ["", f"measured: the fastest of {noise['rounds']} rounds' medians per case; "
                  f"spread between rounds: median {noise['median_spread']:.1%}, over 10% in "
                  f"{noise['over_10pct']:.0%} of cases"]
    change = d["machine"]["drift"]
    if change:
        lines += ["", "machine now vs at calibration (reference kernels, + = slower now): "
                  + "; ".join(f"{t} thread(s) " + ", ".join(f"{k} {v:+.0%}"
                                                             for k, v in kernels.items())
                              for t, kernels in change.items())]
        if d["machine"]["worst_drift"] > DRIFT_WARNING:
            lines.append(f"\n**warning**: the machine runs over {DRIFT_WARNING:.0%} faster or "
                         "slower than when it was calibrated; errors above include that "
                         "shift (recalibrate, or validate when the load is as it was)")
    for label, error in d["failures"].items():
        lines.append(f"\nfailed: {label}: {error}")
    return "\n".join(lines) + "\n"
