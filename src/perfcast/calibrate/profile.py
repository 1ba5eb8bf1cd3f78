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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from perfcast.calibrate.composite import CompositeFit
from perfcast.calibrate.curve import Curve, fit_curve
from perfcast.ir.dtypes import canonical

PROFILE_SCHEMA = 2
COMPUTE_CATEGORIES = ("gemm", "conv", "attention")
MEMORY_CATEGORIES = ("elementwise", "reduction", "norm", "data_movement", "embedding")
OVERHEAD = "overhead"
POOLED = "*"  # memory curve of all memory-bound points of one (dtype, threads)
CATEGORIES = (*COMPUTE_CATEGORIES, *MEMORY_CATEGORIES, OVERHEAD)
FIELDS = ("schema", "hardware_key", "fingerprint", "environment", "perfcast_version",
          "created_at", "overhead_s", "compute", "memory", "composite")

CurveKey = tuple[str, str, int]


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
    overhead_s: dict[int, float]  # threads -> fixed per-kernel cost
    compute: dict[CurveKey, Curve]  # (category, dtype, threads) -> FLOP/s vs FLOPs
    memory: dict[CurveKey, Curve]  # (category or "*", dtype, threads) -> bytes/s vs bytes
    composite: dict[int, CompositeFit] = field(default_factory=dict)  # threads -> fit

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
            "composite": {str(t): f.to_dict() for t, f in sorted(self.composite.items())},
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
            composite=_composite_from_dict(d["composite"]),
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
    """Fit a profile: median overhead per thread count, then one curve per key.

    Matrix categories get a compute curve from their compute-heavy points and a memory
    curve of their own from their streaming points (intensity <= MEMORY_BOUND_INTENSITY).
    """
    if not points:
        raise ValueError("no calibration points")
    overhead_s = _overheads(points)
    matrix = [p for p in points if p.category in COMPUTE_CATEGORIES]
    streaming = [p for p in matrix if 0 < p.flops <= MEMORY_BOUND_INTENSITY * p.bytes]
    compute = [p for p in matrix if p not in streaming]
    memory = [p for p in points if p.category in MEMORY_CATEGORIES]
    pooled = [(POOLED, p) for p in memory]
    return Profile(
        schema=PROFILE_SCHEMA,
        hardware_key=hardware_key,
        fingerprint=fingerprint,
        environment=environment,
        perfcast_version=perfcast_version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        overhead_s=overhead_s,
        compute=_fit_curves([(p.category, p) for p in compute], "flops", overhead_s),
        memory=_fit_curves([*((p.category, p) for p in [*memory, *streaming]), *pooled],
                           "bytes", overhead_s),
    )


def _overheads(points: Sequence[CalibrationPoint]) -> dict[int, float]:
    """Median seconds of the overhead points per thread count; every count needs some."""
    seconds: dict[int, list[float]] = defaultdict(list)
    for p in points:
        if p.category == OVERHEAD:
            seconds[p.threads].append(p.seconds)
    lacking = sorted({p.threads for p in points} - set(seconds))
    if lacking:
        raise ValueError(f"no overhead points for threads {lacking}: run the launch-overhead "
                         "benchmark at every thread count that has other points")
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
    if not isinstance(d, dict):
        raise ProfileError(f"profile {section} must be a mapping of curves")
    curves = {}
    for text, curve in d.items():
        parts = str(text).split("/")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ProfileError(f"profile {section} key {text!r} is not 'category/dtype/threads'")
        try:
            curves[(parts[0], parts[1], int(parts[2]))] = Curve.from_dict(curve)
        except ValueError as exc:
            raise ProfileError(f"profile {section} curve {text!r}: {exc}") from None
    return curves


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
