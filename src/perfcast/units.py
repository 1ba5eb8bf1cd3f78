"""Formatting of quantities for people: SI prefixes, binary sizes."""

from __future__ import annotations

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))  # fmt: skip


def si(value: float | None, unit: str) -> str:
    """``989.4e12, "FLOP/s"`` -> ``989.4 TFLOP/s``; ``0`` -> ``0 s``; None -> ``-``."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), _PREFIXES[-1])
    return f"{value / scale:.4g} {prefix}{unit}"


def binary_bytes(n: float | None) -> str:
    """On-chip sizes in binary units, as vendors quote them: ``50 MiB``, ``256 KiB``."""
    if n is None:
        return "-"
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n:g} B"
