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
from perfcast.hardware.detect import scale_to_threads
from perfcast.store import Store

WITHIN = 0.10  # an APE at most this counts as "within ±10%" (float rounding tolerated)
MODEL_RULE = StopRule(target_rel_ci=0.02, min_samples=5, budget_s=3.0)


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
                "predicted_by_category_s": self.by_category_s}


def error_summary(apes: Sequence[float]) -> dict[str, float | None]:
    """MAPE, median APE and the share within ±10% of a list of APEs."""
    if not apes:
        return {"mape": None, "median_ape": None, "within_10pct": None}
    return {"mape": statistics.fmean(apes), "median_ape": statistics.median(apes),
            "within_10pct": sum(a <= WITHIN + 1e-12 for a in apes) / len(apes)}


@dataclass
class ModelValidation:
    """Every model result plus error summaries (calibrated, theoretical, by confidence)."""

    results: list[ModelResult]
    profile_version: str | None
    failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        by_conf: dict[str, list[float]] = {}
        for r in self.results:
            by_conf.setdefault(r.confidence, []).append(r.ape)
        return {"models": [r.to_dict() for r in self.results],
                **error_summary([r.ape for r in self.results]),
                "theoretical": error_summary([r.theoretical_ape for r in self.results]),
                "by_confidence": {c: error_summary(a) for c, a in by_conf.items()},
                "profile": self.profile_version, "failures": self.failures}


Builder = Callable[[int], tuple[Any, tuple]]
Progress = Callable[[str], None]


def validate_models(models: dict[str, Builder], *, batches: Sequence[int] = (1, 8),
                    threads: Sequence[int] = (1, 2), profile: Profile | None,
                    foreign_profile: bool = False, store: Store | None = None,
                    rule: StopRule = MODEL_RULE,
                    progress: Progress | None = None) -> ModelValidation:
    """Predict and measure every model × batch × thread count; a failing model is reported."""
    import torch

    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.hardware import load_spec

    local = load_spec("local")
    results: list[ModelResult] = []
    failures: dict[str, str] = {}
    for name, build in models.items():
        for batch in batches:
            label = f"{name} batch={batch}"
            try:
                model, inputs = build(batch)
                prepared = prepare(model, inputs, dtype="float32", name=name)
            except Exception as exc:  # a model that cannot be built or captured: keep going
                failures[label] = f"{type(exc).__name__}: {exc}"
                continue
            for t in threads:
                if progress is not None:
                    progress(f"{label} threads={t}")
                predicted, confidence, by_cat = _predict(prepared, local, profile, t,
                                                         foreign_profile, estimate_prepared)
                theoretical = estimate_prepared(prepared,
                                                scale_to_threads(local, t)).totals.time_s
                with torch.inference_mode():
                    measured = measure(model, *inputs, threads=t, rule=rule, name=label)
                results.append(ModelResult(name, batch, t, float(predicted),
                                           measured.median_s, confidence, float(theoretical),
                                           by_cat))
    validation = ModelValidation(results, _profile_label(profile), failures)
    if store is not None:
        _record(store, validation)
    return validation


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
                             data={"theoretical_s": r.theoretical_s,
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
             "| model | batch | threads | measured ms | predicted ms | APE | confidence "
             "| theoretical ms | APE |", "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for m in d["models"]:
        lines.append(f"| {m['name']} | {m['batch']} | {m['threads']} | "
                     f"{m['measured_s'] * 1e3:.2f} | {m['predicted_s'] * 1e3:.2f} | "
                     f"{m['ape']:.1%} | {m['confidence']} | {m['theoretical_s'] * 1e3:.2f} | "
                     f"{m['theoretical_ape']:.1%} |")
    lines += ["", "| estimate | MAPE | median APE | within ±10% |", "|---|---:|---:|---:|"]
    for label, s in (("calibrated", d), ("THEORETICAL", d["theoretical"]),
                     *((f"confidence {c}", s) for c, s in d["by_confidence"].items())):
        if s["mape"] is not None:
            lines.append(f"| {label} | {s['mape']:.1%} | {s['median_ape']:.1%} | "
                         f"{s['within_10pct']:.0%} |")
    for label, error in d["failures"].items():
        lines.append(f"\nfailed: {label}: {error}")
    return "\n".join(lines) + "\n"
