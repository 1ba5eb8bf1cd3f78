"""Expectations of baseline/optimized pairs, one YAML file per hardware.

Recorded expectations keep half of the measured gain (a measured 3.0x becomes "at least
2.0x"): timings of one build move by tens of percent between processes on shared
machines, and an expectation exists to catch an optimization that stopped working.

An expectation says how much faster the optimized side must be (``min_speedup``) or how
much slower it may be at most (``max_regression``, a fraction). A pair misses it only
when the confidence interval of the measured speedup lies entirely on the wrong side,
so noise alone does not fail a run. Files change only when asked
(``perfcast bench run --update-expectations``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from perfcast.bench.stats import Comparison, Verdict

ENV_VAR = "PERFCAST_EXPECTATIONS"
DEFAULT_DIR = Path("benchmarks") / "expectations"
GAIN_KEPT = 0.5  # a new min_speedup keeps half the gain of the measured CI's lower bound
REGRESSION_ALLOWANCE = 0.05  # a pair that is not faster may be this much slower on top


class ExpectationError(ValueError):
    """An expectations file is malformed."""


@dataclass(frozen=True)
class Expectation:
    """What a pair must show on one hardware."""

    min_speedup: float | None = None
    max_regression: float | None = None
    measured: str = ""

    def judge(self, comparison: Comparison) -> tuple[bool, str]:
        """(met, reason) for a measured comparison of optimized against baseline."""
        lo, hi = (1.0 / comparison.ratio_ci95[1], 1.0 / comparison.ratio_ci95[0])
        shown = f"{comparison.speedup:.2f}x (95% CI {lo:.2f}-{hi:.2f})"
        if self.min_speedup is not None and hi < self.min_speedup:
            return False, f"speedup {shown} is below the expected {self.min_speedup:.2f}x"
        if self.max_regression is not None and 1.0 / hi > 1.0 + self.max_regression:
            return False, (f"optimized is {1.0 / hi - 1.0:.1%} slower at best, more than the "
                           f"allowed {self.max_regression:.1%}")
        return True, f"speedup {shown} meets the expectation"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.min_speedup is not None:
            out["min_speedup"] = self.min_speedup
        if self.max_regression is not None:
            out["max_regression"] = self.max_regression
        if self.measured:
            out["measured"] = self.measured
        return out


def expectation_from(comparison: Comparison, run_id: str) -> Expectation:
    """The expectation a measured comparison supports, with a margin for noise."""
    lo, hi = 1.0 / comparison.ratio_ci95[1], 1.0 / comparison.ratio_ci95[0]
    measured = f"{comparison.speedup:.2f}x (95% CI {lo:.2f}-{hi:.2f}) in run {run_id}"
    if comparison.verdict == Verdict.FASTER and lo > 1.0:
        floor = math.floor((1.0 + (lo - 1.0) * GAIN_KEPT) * 100) / 100
        return Expectation(min_speedup=floor, measured=measured)
    worst = max(0.0, 1.0 / lo - 1.0) + REGRESSION_ALLOWANCE
    return Expectation(max_regression=math.ceil(worst * 1000) / 1000, measured=measured)


def default_dir() -> Path:
    """``$PERFCAST_EXPECTATIONS`` or ``benchmarks/expectations`` under the working directory."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


@dataclass
class ExpectationBook:
    """The expectations of one hardware, read from and written to ``<dir>/<hardware>.yaml``."""

    path: Path
    hardware_key: str
    entries: dict[str, Expectation]

    @classmethod
    def load(cls, directory: Path, hardware_key: str) -> ExpectationBook:
        path = directory / f"{hardware_key}.yaml"
        if not path.exists():
            return cls(path, hardware_key, {})
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ExpectationError(f"{path} is not valid YAML: {exc}") from None
        raw = data.get("expectations", {}) if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise ExpectationError(f"{path}: top level must be a mapping with 'expectations'")
        return cls(path, hardware_key, {k: _parse(path, k, v) for k, v in raw.items()})

    def get(self, case_id: str) -> Expectation | None:
        return self.entries.get(case_id)

    def save(self) -> None:
        """Write the book, sorted by case, creating the directory when needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"hardware": self.hardware_key,
                "expectations": {k: self.entries[k].to_dict() for k in sorted(self.entries)}}
        header = (f"# Expectations of perfcast benchmark pairs on {self.hardware_key}.\n"
                  "# Written by `perfcast bench run --update-expectations`; edit by hand "
                  "to tighten or relax.\n")
        tmp = self.path.with_suffix(".yaml.tmp")
        tmp.write_text(header + yaml.safe_dump(body, sort_keys=False))
        tmp.replace(self.path)


def _parse(path: Path, case_id: str, value: object) -> Expectation:
    if not isinstance(value, dict):
        raise ExpectationError(f"{path}: expectation of {case_id!r} must be a mapping")
    unknown = set(value) - {"min_speedup", "max_regression", "measured"}
    if unknown:
        raise ExpectationError(f"{path}: {case_id!r} has unknown keys {sorted(unknown)}; "
                               "allowed: min_speedup, max_regression, measured")
    for key in ("min_speedup", "max_regression"):
        number = value.get(key)
        if number is not None and (not isinstance(number, int | float) or number < 0):
            raise ExpectationError(f"{path}: {case_id!r} {key} must be a number >= 0, "
                                   f"got {number!r}")
    return Expectation(value.get("min_speedup"), value.get("max_regression"),
                       str(value.get("measured", "")))
