"""Typed errors of the service layer; the HTTP API and the MCP server map them to answers.

Every error names the input ``field`` at fault and a human ``reason``; ``to_dict`` is the
JSON body the API sends (``{"error", "field", "reason", ...}``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class ServiceError(Exception):
    """Base class: bad input named by ``field`` with a ``reason``."""

    kind = "bad_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "field": self.field, "reason": self.reason}


class BadInput(ServiceError):
    """A value of the right type that cannot be used (out of range, malformed, a path)."""


class NotFound(ServiceError):
    """A name or id that does not exist; ``allowed`` lists valid ones when they are few."""

    kind = "not_found"

    def __init__(self, field: str, value: object, allowed: Sequence[str] = (),
                 suggestions: Sequence[str] = ()) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(field, f"unknown {field} {value!r}{hint}")
        self.value = value
        self.allowed = list(allowed)
        self.suggestions = list(suggestions)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["value"] = self.value if isinstance(self.value, str | int | float) else str(self.value)
        if self.allowed:
            out["allowed"] = self.allowed
        return out


class TooLarge(ServiceError):
    """An upload or request over its size limit."""

    kind = "too_large"


class Unavailable(ServiceError):
    """A feature whose optional dependency is missing (e.g. onnx for ONNX uploads)."""

    kind = "unavailable"


# A catalog name or alias: letters, digits, spaces and . _ + - ( ), never a path.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+()\-]{0,99}")


def check_name(field: str, value: str) -> str:
    """``value`` if it can be a catalog name; a path or odd characters are BadInput."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise BadInput(field, f"{value!r} is not a catalog name: names use letters, digits, "
                              "spaces and . _ + - ( ) only; paths are not accepted")
    return value
