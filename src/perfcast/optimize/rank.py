"""Order candidates before measuring: the estimator's prediction first, a heuristic after.

A candidate with an :class:`~perfcast.optimize.candidates.EstimateSpec` is captured
(once per dtype and model transform) and estimated for its fusion target on the hardware;
its predicted speedup is eager's predicted time over its own. The estimator cannot tell
the others apart from eager (layouts, quantized kernels, other runtimes): they are ranked
after every predicted candidate, by a heuristic that is no speedup claim: the share of
eager's predicted time spent in the op categories the candidate changes (``touches``;
``"*"`` = all of it). Ties keep the enumeration order.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfcast.optimize.candidates import Candidate, EstimateSpec

NOT_PROMISING = 0.9  # predicted speedups below this are not measured (unless asked to)


@dataclass(frozen=True)
class Prediction:
    """What the ranking knows about a candidate before measuring it."""

    latency_s: float | None  # the estimator's time; None when it cannot predict
    speedup: float | None  # predicted eager time / predicted candidate time
    basis: str  # how it was obtained, in words
    confidence: str | None = None  # the estimator's confidence level
    share: float | None = None  # heuristic: eager time share in the touched categories

    @property
    def predicted(self) -> bool:
        return self.latency_s is not None

    @property
    def theoretical(self) -> bool:
        """Uncalibrated for this machine: too far off to rank measured candidates by."""
        return self.confidence == "THEORETICAL"

    def to_dict(self) -> dict[str, Any]:
        return {"latency_s": self.latency_s, "speedup": self.speedup, "basis": self.basis,
                "confidence": self.confidence, "heuristic_share": self.share}


def predict(model: Any, inputs: tuple, candidates: Sequence[Candidate], *, hardware: Any,
            efficiency: Any = None, name: str = "model",
            progress: Callable[[str], None] | None = None) -> dict[str, Prediction]:
    """A :class:`Prediction` for every candidate; estimator failures become unknowns."""
    from perfcast.estimate.analyze import estimate_prepared, prepare

    if hardware is None:
        return {c.name: _unknown(c, None, "no hardware spec for this device: no estimate")
                for c in candidates}
    prepared: dict[tuple, Any] = {}
    estimates: dict[tuple, Any] = {}
    failures: dict[tuple, str] = {}

    def estimate(spec: Any) -> Any:
        capture_key = (spec.dtype, spec.transform)
        key = (*capture_key, spec.target)
        if key in estimates or key in failures:
            return estimates.get(key)
        try:
            if capture_key not in prepared:
                if progress is not None:
                    progress(f"capturing for the estimator (dtype {spec.dtype or 'model'})")
                captured = (spec.transform(model) if spec.transform
                            else copy.deepcopy(model) if spec.dtype else model)  # .to(dtype)
                prepared[capture_key] = prepare(captured, inputs, dtype=spec.dtype, name=name)
            estimates[key] = estimate_prepared(prepared[capture_key], hardware,
                                               target=spec.target, efficiency=efficiency)
        except Exception as exc:  # a model the estimator cannot capture: rank it unknown
            failures[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        return estimates.get(key)

    eager = estimate(EstimateSpec("eager"))
    eager_s = _time(eager) if eager is not None else None
    shares = _category_shares(eager) if eager is not None else None
    out: dict[str, Prediction] = {}
    for cand in candidates:
        spec = cand.estimate
        est = estimate(spec) if spec is not None else None
        if est is None:
            why = (failures.get((spec.dtype, spec.transform, spec.target))
                   if spec is not None else None)
            out[cand.name] = _unknown(cand, shares, f"estimator failed: {why}" if why else None)
            continue
        latency = _time(est)
        basis = f"estimator: target={spec.target}, dtype={est.dtype}"
        basis += f" on {est.hardware}" + (f" ({spec.note})" if spec.note else "")
        out[cand.name] = Prediction(latency, eager_s / latency if eager_s and latency else None,
                                    basis, str(est.confidence))
    return out


def _unknown(cand: Candidate, shares: dict[str, float] | None, why: str | None) -> Prediction:
    share = None
    if shares is not None and cand.touches:
        share = 1.0 if "*" in cand.touches else sum(shares.get(c, 0.0) for c in cand.touches)
    basis = why or "the estimator does not model this change"
    if share is not None:
        basis += f"; heuristic: {share:.0%} of eager's predicted time is in " + (
            "the whole model" if "*" in cand.touches else "/".join(cand.touches) + " ops")
    return Prediction(None, None, basis, None, share)


def _time(estimate: Any) -> float:
    return float(np.max(estimate.totals.time_s))


def _category_shares(estimate: Any) -> dict[str, float]:
    total = _time(estimate)
    shares: dict[str, float] = {}
    for k in estimate.kernels:
        if k.kernel.category is not None:
            cat = str(k.kernel.category)
            shares[cat] = shares.get(cat, 0.0) + float(np.max(k.time_s)) / total
    return shares


def rank(candidates: Sequence[Candidate], predictions: dict[str, Prediction]) -> list[Candidate]:
    """Candidates in the order to measure them: eager first, then predicted ones by
    predicted time, then unknown or THEORETICAL ones by heuristic share (largest first)."""
    order = {c.name: i for i, c in enumerate(candidates)}

    def key(c: Candidate) -> tuple:
        p = predictions[c.name]
        if c.name == "eager":
            return (0, 0.0, order[c.name])
        if p.predicted and not p.theoretical:
            return (1, p.latency_s, order[c.name])
        share = p.share if p.share is not None else -math.inf
        return (2, -share, order[c.name])

    return sorted(candidates, key=key)


def promising(prediction: Prediction) -> bool:
    """Worth measuring: unknown, THEORETICAL, or predicted at least
    :data:`NOT_PROMISING` x eager."""
    return (prediction.speedup is None or prediction.theoretical
            or prediction.speedup >= NOT_PROMISING)
