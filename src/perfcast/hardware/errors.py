"""Errors raised by the hardware package; all are ``ValueError`` subclasses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class HardwareError(ValueError):
    """Base class for every hardware catalog, spec or detection error."""


class UnknownHardwareError(HardwareError):
    """A name or alias that is not in the catalog."""

    def __init__(self, name: str, suggestions: Sequence[str], total: int) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = f"did you mean {', '.join(self.suggestions)}? " if self.suggestions else ""
        shown = name if len(name) <= 100 else f"{name[:60]}...({len(name)} characters)"
        super().__init__(f"unknown hardware {shown!r}: {hint}(perfcast hw list shows all "
                         f"{total})")


class CatalogError(HardwareError):
    """A hardware YAML file that cannot be parsed or fails validation."""

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid hardware spec {self.path}:\n{lines}")


class UnsupportedPrecisionError(HardwareError):
    """A device has no peak figure for the requested precision."""

    def __init__(self, device: str, dtype: str, available: Sequence[str]) -> None:
        self.device = device
        self.dtype = dtype
        self.available = list(available)
        have = ", ".join(self.available) or "none"
        super().__init__(f"{device} has no {dtype} peak in its spec (available: {have})")
