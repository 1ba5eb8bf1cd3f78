"""Calibration profiles: rate curves per op category fitted on one machine, saved to disk.

A profile holds, per thread count, the fixed per-kernel cost (eager dispatch) and, per
(category, dtype, threads), how fast compute-bound categories run vs FLOPs and how fast
memory-bound categories run vs bytes; and, per thread count, the whole-network
correction fitted on synthetic networks (:mod:`perfcast.calibrate.composite`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml
from scipy.stats import theilslopes

from perfcast.calibrate.composite import CompositeFit
from perfcast.calibrate.curve import BUSY_FLOOR, Curve, fit_curve
from perfcast.calibrate.reference import Reference, reference_from_dict, reference_to_dict
from perfcast.calibrate.shape_model import (
    BLOCKS,
    MIN_POINTS,
    ShapeModel,
    ShapeSample,
    fit_shape_model,
    model_name,
    point_shape,
    streams,
)
from perfcast.ir import MATRIX_CATEGORIES, Category
from perfcast.ir.dtypes import canonical

PROFILE_SCHEMA = 3
# "gemm", "conv", "attention" (declaration order)
COMPUTE_CATEGORIES = tuple(str(c) for c in Category if c in MATRIX_CATEGORIES)
MEMORY_CATEGORIES = ("elementwise", "reduction", "norm", "data_movement", "embedding")
OVERHEAD = "overhead"  # dispatch of one op called directly: subtracted before fitting
LAYER_OVERHEAD = "layer_overhead"  # one eager layer (module call + op): charged per kernel
POOLED = "*"  # memory curve of all memory-bound points of one (dtype, threads)
CATEGORIES = (*COMPUTE_CATEGORIES, *MEMORY_CATEGORIES, OVERHEAD, LAYER_OVERHEAD)
FIELDS = ("schema", "hardware_key", "fingerprint", "environment", "perfcast_version",
          "created_at", "overhead_s", "compute", "memory", "shape", "element_cost", "composite")
# Elementwise ops that stream at the bandwidth their bytes allow: their points fit the
# elementwise memory curve; every other measured op gets a per-element cost instead.
STREAMING_ELEMENTWISE = frozenset({"add", "mul"})
# Windowed pooling ops, costed per element read (their CPU kernels are far slower than
# their bytes suggest).
POOL_OPS = frozenset({"max_pool2d", "avg_pool2d"})
# A costly elementwise op's per-element cost is read off sizes that fit in cache.
ELEMENT_COST_MAX_NUMEL = 1 << 19

CurveKey = tuple[str, str, int]
_T = TypeVar("_T")


class ProfileError(ValueError):
    """A profile file that cannot be read: missing, malformed or of another schema."""


@dataclass(frozen=True)
class CalibrationPoint:
    """One measured microbenchmark case; ``dtype`` is stored in canonical form."""

    category: str
    dtype: str
    threads: int
    flops: float
    bytes: float
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown calibration category {self.category!r}; "
                             f"allowed: {', '.join(CATEGORIES)}")
        object.__setattr__(self, "dtype", canonical(self.dtype))
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        for name in ("flops", "bytes"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not (np.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"seconds must be finite and > 0, got {self.seconds}")


@dataclass(frozen=True)
class Profile:
    """Rate curves and per-kernel overheads of one machine and environment."""

    schema: int
    hardware_key: str
    fingerprint: str
    environment: dict[str, Any]
    perfcast_version: str
    created_at: str  # UTC, ISO 8601
    overhead_s: dict[int, float]  # threads -> fixed per-kernel cost of an eager layer
    compute: dict[CurveKey, Curve]  # (category, dtype, threads) -> FLOP/s vs FLOPs
    memory: dict[CurveKey, Curve]  # (category or "*", dtype, threads) -> bytes/s vs bytes
    # (gemm | conv, dtype, threads) -> busy seconds vs M, N, K and bytes
    shape: dict[CurveKey, ShapeModel] = field(default_factory=dict)
    # (elementwise op kind, dtype, threads) -> seconds per output element
    element_cost: dict[CurveKey, float] = field(default_factory=dict)
    # (the same keys) -> seconds per call beyond the dispatch overhead (GELU's is 5 us)
    element_fixed_s: dict[CurveKey, float] = field(default_factory=dict)
    composite: dict[int, CompositeFit] = field(default_factory=dict)  # threads -> fit
    # threads -> reference kernel -> seconds, timed around the calibration (reference.py)
    reference: Reference = field(default_factory=dict)

    def threads_available(self) -> list[int]:
        """Every thread count the profile has an overhead or a curve for, ascending."""
        keys = (*self.compute, *self.memory)
        return sorted({*self.overhead_s, *(threads for _, _, threads in keys)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; curve keys become ``"category/dtype/threads"`` strings."""
        return {
            "schema": self.schema,
            "hardware_key": self.hardware_key,
            "fingerprint": self.fingerprint,
            "environment": self.environment,
            "perfcast_version": self.perfcast_version,
            "created_at": self.created_at,
            "overhead_s": {str(t): v for t, v in sorted(self.overhead_s.items())},
            "compute": _curves_to_dict(self.compute),
            "memory": _curves_to_dict(self.memory),
            "shape": {_key_str(k): m.to_dict() for k, m in sorted(self.shape.items())},
            "element_cost": {_key_str(k): c for k, c in sorted(self.element_cost.items())},
            "element_fixed_s": {_key_str(k): c
                                for k, c in sorted(self.element_fixed_s.items())},
            "composite": {str(t): f.to_dict() for t, f in sorted(self.composite.items())},
            "reference": reference_to_dict(self.reference),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Profile:
        """Inverse of :meth:`to_dict`; raises ProfileError on a bad schema or field."""
        if not isinstance(d, dict):
            raise ProfileError(f"a profile must be a mapping, got {type(d).__name__}")
        if "schema" in d and d["schema"] != PROFILE_SCHEMA:
            raise ProfileError(f"profile schema {d['schema']}, "
                               f"this perfcast reads {PROFILE_SCHEMA}")
        missing = [k for k in FIELDS if k not in d]
        if missing:
            raise ProfileError(f"profile is missing fields: {', '.join(missing)}")
        if not isinstance(d["environment"], dict):
            raise ProfileError("profile environment must be a mapping")
        return cls(
            schema=PROFILE_SCHEMA,
            hardware_key=str(d["hardware_key"]),
            fingerprint=str(d["fingerprint"]),
            environment=d["environment"],
            perfcast_version=str(d["perfcast_version"]),
            created_at=str(d["created_at"]),
            overhead_s=_overheads_from_dict(d["overhead_s"]),
            compute=_curves_from_dict("compute", d["compute"]),
            memory=_curves_from_dict("memory", d["memory"]),
            shape=_shape_models_from_dict(d["shape"]),
            element_cost=_element_costs_from_dict(d["element_cost"]),
            element_fixed_s=_element_costs_from_dict(d.get("element_fixed_s", {}),
                                                     "element_fixed_s", positive=False),
            composite=_composite_from_dict(d["composite"]),
            reference=_reference_from_dict(d.get("reference", {})),
        )

    def save(self, path: Path) -> None:
        """Write as JSON or YAML (by suffix), atomically: a failed save leaves no partial file."""
        path = Path(path)
        text = _dump(self.to_dict(), _format(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Profile:
        """Read a profile saved by :meth:`save`; ProfileError names the path and the reason."""
        path = Path(path)
        fmt = _format(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ProfileError(f"{path}: no such profile file") from None
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read: {exc}") from None
        try:
            data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ProfileError(f"{path}: not valid {fmt.upper()}: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ProfileError(f"{path}: {exc}") from None


# A matrix op (GEMV, depthwise conv) with fewer FLOPs per byte than this streams its
# operands: its points fit the category's memory curve, not its compute curve.
MEMORY_BOUND_INTENSITY = 4.0


def fit_profile(points: Sequence[CalibrationPoint], *, hardware_key: str, fingerprint: str,
                environment: dict[str, Any], perfcast_version: str) -> Profile:
    """Fit a profile: median overhead per thread count, curves, shape models, op costs.

    GEMM and convolution points fit a shape model per (category, dtype, threads), and a
    compute curve (for kernels without known dimensions); GEMVs and depthwise
    convolutions, which stream their operands, fit the category's memory curve instead,
    as do attention points at intensity <= MEMORY_BOUND_INTENSITY. Costly elementwise
    ops (not STREAMING_ELEMENTWISE) and pooling get a per-element cost, not a curve.
    """
    if not points:
        raise ValueError("no calibration points")
    overhead_s = _overheads(points, OVERHEAD)  # what the microbenchmarks' timings include
    layer_s = _overheads(points, LAYER_OVERHEAD) if any(
        p.category == LAYER_OVERHEAD for p in points) else overhead_s
    matrix = [p for p in points if p.category in COMPUTE_CATEGORIES]
    streaming = [p for p in matrix if _streams(p)]
    compute = [p for p in matrix if not _streams(p)]
    costly = [p for p in points if _costly(p)]
    memory = [p for p in points if p.category in MEMORY_CATEGORIES and not _costly(p)]
    pooled = [(POOLED, p) for p in memory]
    curves = _fit_curves([*((p.category, p) for p in [*memory, *streaming]), *pooled],
                         "bytes", overhead_s)
    element_costs = _element_costs(costly, overhead_s)
    return Profile(
        schema=PROFILE_SCHEMA,
        hardware_key=hardware_key,
        fingerprint=fingerprint,
        environment=environment,
        perfcast_version=perfcast_version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        overhead_s=layer_s,
        compute=_fit_curves([(p.category, p) for p in compute], "flops", overhead_s),
        memory=curves,
        shape=_fit_shape_models(compute, overhead_s, curves),
        element_cost={key: cost for key, (cost, _) in element_costs.items()},
        element_fixed_s={key: fixed for key, (_, fixed) in element_costs.items()},
    )


def stream_curve(curves: dict[CurveKey, Curve], category: str, dtype: str,
                 threads: int) -> Curve | None:
    """The curve a shape model's memory term reads: the category's own streaming curve
    (GEMVs for gemm, depthwise convolutions for conv) at ``threads``, else the pooled
    memory curve of ``dtype`` (None when there is neither)."""
    return curves.get((category, dtype, threads)) or curves.get((POOLED, dtype, threads))


def _costly(p: CalibrationPoint) -> bool:
    """An elementwise op not STREAMING_ELEMENTWISE, or a pooling op: costed per element."""
    op = p.params.get("op")
    return (p.category == "elementwise" and (op or "add") not in STREAMING_ELEMENTWISE) \
        or (p.category == "reduction" and op in POOL_OPS)


def _streams(p: CalibrationPoint) -> bool:
    shape = point_shape(p.category, p.params)
    if shape is not None:
        return bool(streams(p.category, shape))
    return 0 < p.flops <= MEMORY_BOUND_INTENSITY * p.bytes


def _fit_shape_models(points: Sequence[CalibrationPoint], overhead_s: dict[int, float],
                      curves: dict[CurveKey, Curve]) -> dict[CurveKey, ShapeModel]:
    groups: dict[CurveKey, list[ShapeSample]] = defaultdict(list)
    category_of: dict[CurveKey, str] = {}  # shape model key -> the points' category
    for p in points:
        shape = point_shape(p.category, p.params)
        if shape is not None:
            name = str(model_name(p.category, shape, threads=p.threads, dtype=p.dtype))
            key = (name, p.dtype, p.threads)
            category_of[key] = p.category
            groups[key].append(ShapeSample(shape.batch, shape.m, shape.n, shape.k, p.flops,
                                           p.bytes, p.seconds, shape.window))
    models = {}
    for key, samples in sorted(groups.items()):
        category = category_of[key]
        bandwidth = stream_curve(curves, category, key[1], key[2])
        if len(samples) < MIN_POINTS or bandwidth is None:
            continue  # too few shapes: kernels of this key use the compute curve
        models[key] = fit_shape_model(samples, overhead_s=overhead_s[key[2]],
                                      bandwidth=bandwidth,
                                      blocks=BLOCKS if key[0] == "conv" else (1,),
                                      fit_aspect=category == "gemm")
    return models


def _element_costs(points: Sequence[CalibrationPoint],
                   overhead_s: dict[int, float]) -> dict[CurveKey, tuple[float, float]]:
    """(seconds per element, fixed seconds per call) of each costly elementwise op (from
    its in-cache sizes) and pooling op (elements read, every size): a robust line
    (Theil-Sen) through busy time against elements."""
    samples: dict[CurveKey, list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        numel = p.params.get("numel")
        if p.params.get("op") in POOL_OPS:  # per element read, at every size measured
            numel = int(p.params["channels"]) * int(p.params["size"]) ** 2
        elif not numel or int(numel) > ELEMENT_COST_MAX_NUMEL:
            continue
        busy = max(p.seconds - overhead_s[p.threads], BUSY_FLOOR * p.seconds)
        samples[(str(p.params["op"]), p.dtype, p.threads)].append((int(numel), busy))
    return {key: _element_line(s) for key, s in sorted(samples.items())}


def _element_line(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """(slope, intercept >= 0) of busy seconds against elements; with one size, or a line
    that does not rise, the median seconds per element and no fixed cost."""
    numel, busy = (np.array(x, float) for x in zip(*samples, strict=True))
    if len(set(numel.tolist())) >= 2:
        slope, intercept, _, _ = theilslopes(busy, numel)
        if slope > 0:
            intercept = max(float(intercept), 0.0)
            return float(np.median((busy - intercept) / numel)), intercept
    return float(np.median(busy / numel)), 0.0


def _overheads(points: Sequence[CalibrationPoint], category: str) -> dict[int, float]:
    """Median seconds of the ``category`` overhead points per thread count; every count
    that has other points needs some."""
    seconds: dict[int, list[float]] = defaultdict(list)
    for p in points:
        if p.category == category:
            seconds[p.threads].append(p.seconds)
    lacking = sorted({p.threads for p in points} - set(seconds))
    if lacking:
        raise ValueError(f"no {category} points for threads {lacking}: run the "
                         f"{'launch' if category == OVERHEAD else 'module'}-overhead benchmark "
                         "at every thread count that has other points")
    return {t: float(np.median(s)) for t, s in sorted(seconds.items())}


def _fit_curves(labelled: Sequence[tuple[str, CalibrationPoint]], work: str,
                overhead_s: dict[int, float]) -> dict[CurveKey, Curve]:
    """One curve per (label, dtype, threads), on ``work`` ("flops" or "bytes")."""
    groups: dict[CurveKey, list[CalibrationPoint]] = defaultdict(list)
    for label, p in labelled:
        groups[(label, p.dtype, p.threads)].append(p)
    curves = {}
    for key, group in sorted(groups.items()):
        try:
            curves[key] = fit_curve([getattr(p, work) for p in group],
                                    [p.seconds for p in group], overhead_s=overhead_s[key[2]])
        except ValueError as exc:
            raise ValueError(f"cannot fit {_key_str(key)} on {work}: {exc}") from None
    return curves


def _key_str(key: CurveKey) -> str:
    return "/".join(map(str, key))


def _curves_to_dict(curves: dict[CurveKey, Curve]) -> dict[str, Any]:
    return {_key_str(k): c.to_dict() for k, c in sorted(curves.items())}


def _curves_from_dict(section: str, d: Any) -> dict[CurveKey, Curve]:
    return _keyed_from_dict(d, section, f"{section} curve", "curves", Curve.from_dict)


def _overheads_from_dict(d: Any) -> dict[int, float]:
    if not isinstance(d, dict):
        raise ProfileError("profile overhead_s must be a mapping of threads to seconds")
    try:
        overheads = {int(t): float(s) for t, s in d.items()}
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"profile overhead_s has a non-numeric entry: {exc}") from None
    bad = {t: s for t, s in overheads.items() if not (np.isfinite(s) and s > 0)}
    if bad:
        raise ProfileError(f"profile overhead_s must be finite and > 0, got {bad}")
    return overheads


def _reference_from_dict(d: Any) -> Reference:
    try:
        return reference_from_dict(d)
    except ValueError as exc:
        raise ProfileError(f"profile {exc}") from None


def _shape_models_from_dict(d: Any) -> dict[CurveKey, ShapeModel]:
    return _keyed_from_dict(d, "shape", "shape model", "shape models", ShapeModel.from_dict)


def _keyed_from_dict(d: Any, section: str, item: str, items: str,
                     parse: Callable[[Any], _T]) -> dict[CurveKey, _T]:
    """A profile section keyed 'name/dtype/threads', each value read by ``parse``."""
    if not isinstance(d, dict):
        raise ProfileError(f"profile {section} must be a mapping of {items}")
    parsed = {}
    for text, value in d.items():
        key = _parse_key(section, text)
        try:
            parsed[key] = parse(value)
        except ValueError as exc:
            raise ProfileError(f"profile {item} {text!r}: {exc}") from None
    return parsed


def _element_costs_from_dict(d: Any, section: str = "element_cost", *,
                             positive: bool = True) -> dict[CurveKey, float]:
    if not isinstance(d, dict):
        raise ProfileError(f"profile {section} must be a mapping of op costs")
    costs = {}
    for text, cost in d.items():
        key = _parse_key(section, text)
        try:
            value = float(cost)
        except (TypeError, ValueError):
            raise ProfileError(f"profile {section} {text!r} is not a number: "
                               f"{cost!r}") from None
        if not (np.isfinite(value) and (value > 0 if positive else value >= 0)):
            raise ProfileError(f"profile {section} {text!r} must be finite and "
                               f"{'> 0' if positive else '>= 0'}, got {value}")
        costs[key] = value
    return costs


def _parse_key(section: str, text: Any) -> CurveKey:
    parts = str(text).split("/")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ProfileError(f"profile {section} key {text!r} is not 'name/dtype/threads'")
    return parts[0], parts[1], int(parts[2])


def _composite_from_dict(d: Any) -> dict[int, CompositeFit]:
    if not isinstance(d, dict):
        raise ProfileError("profile composite must be a mapping of threads to fits")
    fits = {}
    for t, fit in d.items():
        if not str(t).isdigit():
            raise ProfileError(f"profile composite key {t!r} is not a thread count")
        try:
            fits[int(t)] = CompositeFit.from_dict(fit)
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"profile composite for {t} threads: {exc}") from None
    return fits


def _format(path: Path) -> str:
    """'json' or 'yaml' from the suffix of ``path``."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ProfileError(f"{path}: profile files end in .json, .yaml or .yml, "
                       f"got {suffix or 'none'!r}")


def _dump(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)
