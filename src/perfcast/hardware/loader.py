"""Read one hardware YAML file into a validated spec, with one-line-per-problem errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from perfcast.hardware.errors import CatalogError
from perfcast.hardware.spec import HardwareSpec

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML loader that also reads exponent floats without a dot or sign (``989.4e12``).

    PyYAML follows YAML 1.1, where ``1e12`` and ``989.4e12`` are strings; YAML 1.2 (and
    every datasheet-style number in the catalog) treats them as floats.
    """


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path) -> Any:
    """Parse ``path`` with :class:`SpecLoader`; syntax errors become CatalogError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(path, [f"cannot read file: {exc.strerror or exc}"]) from None
    except ValueError as exc:  # a NUL byte in the path, or bytes that are not UTF-8
        raise CatalogError(path, [f"cannot read file: {str(exc)[:200]}"]) from None
    try:
        return yaml.load(text, Loader=SpecLoader)  # SpecLoader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        reason = exc.problem or exc.context or "malformed YAML"
        raise CatalogError(path, [f"YAML syntax error at {where}: {reason}"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError(path, [f"YAML error: {exc}"]) from None


def _loc(parts: tuple[int | str, ...]) -> str:
    out: list[str] = []
    for part in parts:
        if part == "[key]":
            out[-1:] = [f"{out[-1] if out else ''} (key)"]
        else:
            out.append(str(part))
    return ".".join(out)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per pydantic problem: ``field.path: reason (got value)``."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        path = _loc(err["loc"])
        got = ""
        if err["type"] not in {"missing", "value_error"} and "input" in err:
            shown = repr(err["input"])
            got = f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        lines.append(f"{path}: {msg}{got}" if path else f"{msg}{got}")
    return lines


def load_spec_file(path: str | Path) -> HardwareSpec:
    """Load and validate one spec YAML; ``name`` must equal the file stem."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        got = type(data).__name__
        raise CatalogError(path, [f"expected a mapping at the top level, got {got}"])
    try:
        return HardwareSpec.model_validate(data, context={"stem": path.stem})
    except ValidationError as exc:
        raise CatalogError(path, format_validation_error(exc)) from None
