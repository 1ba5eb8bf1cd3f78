"""How large a change must be to count, and how severe it is: defaults and per-target rules.

Timing series use relative changes (0.10 = 10% slower or faster); accuracy series use
absolute changes of the absolute percentage error (0.05 = 5 percentage points of APE). A
thresholds file (YAML, or TOML by its ``.toml`` suffix) may replace the defaults of either
kind and add rules: glob patterns over target names, the first matching rule wins, and keys a
rule leaves out come from its kind's defaults::

    time: {minor: 0.05, moderate: 0.10, severe: 0.25, noise_factor: 1.0}
    accuracy: {minor: 0.02, moderate: 0.05, severe: 0.10}
    rules:
      - {pattern: "micro:*", minor: 0.03, moderate: 0.08}
      - {pattern: "validate:*", kind: accuracy, severe: 0.2}
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

SEVERITIES = ("minor", "moderate", "severe")
KINDS = ("time", "accuracy")
_KEYS = ("minor", "moderate", "severe", "noise_factor")


class ThresholdError(ValueError):
    """A thresholds file or option is malformed."""


@dataclass(frozen=True)
class Thresholds:
    """Smallest change of each severity; ``noise_factor`` scales the series' own noise into
    the smallest change reported (``max(minor, noise_factor * noise)``)."""

    minor: float
    moderate: float
    severe: float
    noise_factor: float = 1.0

    def __post_init__(self) -> None:
        for name in _KEYS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ThresholdError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 < self.minor <= self.moderate <= self.severe:
            raise ThresholdError(f"thresholds must satisfy 0 < minor <= moderate <= severe, "
                                 f"got minor={self.minor}, moderate={self.moderate}, "
                                 f"severe={self.severe}")

    def classify(self, magnitude: float) -> str | None:
        """``severe``, ``moderate`` or ``minor`` for a change of this size; None below minor."""
        for name in reversed(SEVERITIES):
            if magnitude >= getattr(self, name):
                return name
        return None


DEFAULTS: dict[str, Thresholds] = {
    "time": Thresholds(minor=0.05, moderate=0.10, severe=0.25),
    "accuracy": Thresholds(minor=0.02, moderate=0.05, severe=0.10),
}


@dataclass(frozen=True)
class Rule:
    """Threshold values for targets matching ``pattern`` (a glob) in series of ``kind``; the
    keys it leaves out come from the kind's defaults."""

    pattern: str
    kind: str
    values: Mapping[str, float]

    def resolve(self, base: Thresholds) -> Thresholds:
        try:
            return replace(base, **self.values)
        except ThresholdError as exc:
            raise ThresholdError(f"rule {self.pattern!r} ({self.kind}): {exc}") from None


@dataclass(frozen=True)
class ThresholdBook:
    """Defaults per series kind plus pattern rules (first match wins)."""

    defaults: Mapping[str, Thresholds] = field(default_factory=lambda: dict(DEFAULTS))
    rules: tuple[Rule, ...] = ()

    def for_series(self, kind: str, target: str) -> Thresholds:
        """The thresholds that apply to ``target``'s series of ``kind``."""
        for rule in self.rules:
            if rule.kind == kind and fnmatchcase(target, rule.pattern):
                return rule.resolve(self.defaults[kind])
        return self.defaults[kind]

    def with_time_defaults(self, **overrides: float | None) -> ThresholdBook:
        """A copy whose timing defaults take the given (non-None) values; rules still win
        for the keys they set."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        unknown = set(given) - set(_KEYS)
        if unknown:
            raise ThresholdError(f"unknown threshold(s): {', '.join(sorted(unknown))}")
        try:
            time = replace(self.defaults["time"], **given)
        except ThresholdError as exc:
            raise ThresholdError(f"timing thresholds: {exc}") from None
        book = ThresholdBook({**self.defaults, "time": time}, self.rules)
        book.check()
        return book

    def check(self) -> None:
        """Raise :class:`ThresholdError` if any rule is inconsistent with its defaults."""
        for rule in self.rules:
            rule.resolve(self.defaults[rule.kind])

    @classmethod
    def load(cls, path: Path) -> ThresholdBook:
        """Read a thresholds file (YAML, or TOML when the name ends in ``.toml``)."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ThresholdError(f"cannot read thresholds file {path}: {exc}") from None
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ThresholdError(f"{path}: not valid {_format(path)}: {exc}") from None
        try:
            return cls.from_dict(data or {})
        except ThresholdError as exc:
            raise ThresholdError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> ThresholdBook:
        """Build from the parsed file: optional ``time``/``accuracy`` tables and ``rules``."""
        if not isinstance(data, Mapping):
            raise ThresholdError(f"expected a mapping with keys time, accuracy, rules; "
                                 f"got {type(data).__name__}")
        unknown = set(data) - {*KINDS, "rules"}
        if unknown:
            raise ThresholdError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                                 f"allowed: time, accuracy, rules")
        defaults = {kind: _thresholds(data.get(kind) or {}, DEFAULTS[kind], kind)
                    for kind in KINDS}
        rules_data = data.get("rules") or []
        if not isinstance(rules_data, list):
            raise ThresholdError(f"rules must be a list, got {type(rules_data).__name__}")
        book = cls(defaults, tuple(_rule(item, i) for i, item in enumerate(rules_data)))
        book.check()
        return book


def _rule(item: Any, index: int) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(item, Mapping):
        raise ThresholdError(f"{where} must be a mapping, got {item!r}")
    pattern = item.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ThresholdError(f"{where} needs a non-empty string 'pattern' (a glob such as "
                             f"'micro:*'), got {pattern!r}")
    kind = item.get("kind", "time")
    if kind not in KINDS:
        raise ThresholdError(f"{where}.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values = {k: v for k, v in item.items() if k not in ("pattern", "kind")}
    unknown = set(values) - set(_KEYS)
    if unknown:
        raise ThresholdError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                             f"; allowed: pattern, kind, {', '.join(_KEYS)}")
    return Rule(pattern, kind, values)


def _thresholds(values: Any, base: Thresholds, where: str) -> Thresholds:
    if not isinstance(values, Mapping):
        raise ThresholdError(f"{where} must be a mapping of {', '.join(_KEYS)}, got {values!r}")
    unknown = set(values) - set(_KEYS)
    if unknown:
        raise ThresholdError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                             f"; allowed: {', '.join(_KEYS)}")
    try:
        return replace(base, **values)
    except ThresholdError as exc:
        raise ThresholdError(f"{where}: {exc}") from None


def _format(path: Path) -> str:
    return "TOML" if path.suffix == ".toml" else "YAML"

