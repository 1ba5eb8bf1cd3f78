"""Values going into and coming out of the store: checks with clear errors, JSON encoding."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from perfcast.store.errors import StoreError

_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RUN_ID_RULE = "1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_run_id(run_id: object) -> None:
    if not isinstance(run_id, str) or _RUN_ID_RE.fullmatch(run_id) is None:
        raise StoreError(f"invalid run id {run_id!r}: use {_RUN_ID_RULE}")


def check_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise StoreError(f"{what} must be a non-empty string, got {value!r}")


def check_choice(value: object, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise StoreError(f"invalid {what} {value!r}; expected one of: {', '.join(allowed)}")


def to_float(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StoreError(f"{what} must be finite, got {number}")
    return number


def opt_float(value: object, what: str) -> float | None:
    return None if value is None else to_float(value, what)


def opt_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise StoreError(f"n must be a non-negative integer or None, got {value!r}")
    return int(value)


def samples_json(samples: Sequence[float] | None) -> str | None:
    if samples is None:
        return None
    if isinstance(samples, str | bytes) or not isinstance(samples, Sequence):
        raise StoreError(f"samples must be a sequence of seconds, got {type(samples).__name__}")
    values = [to_float(value, f"samples[{i}]") for i, value in enumerate(samples)]
    return json.dumps(values, separators=(",", ":"))


def json_object(value: object, what: str) -> str:
    if not isinstance(value, Mapping):
        raise StoreError(f"{what} must be a dict of JSON values, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise StoreError(f"{what} key {key!r} must be a string")
        try:
            json.dumps(item, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{what}[{key!r}] = {item!r} is not JSON-serializable "
                             f"({exc})") from None
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
