"""NVTX ranges with one naming scheme, ``perfcast/<case>/<phase>``, so Nsight timelines read alike.

Ranges are real only when a CUDA device is present or an NVTX tool (Nsight) is attached
(``NVTX_INJECTION64_PATH`` set); otherwise :func:`nvtx_range` is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

PHASES = ("setup", "check", "warmup", "timed", "profile", "teardown")


def range_name(case: str, phase: str) -> str:
    """The NVTX range name for ``phase`` of benchmark case ``case``."""
    if phase not in PHASES:
        raise ValueError(f"unknown NVTX phase {phase!r}; allowed: {', '.join(PHASES)}")
    return f"perfcast/{case}/{phase}"


@cache
def _nvtx_module() -> Any | None:
    """The ``nvtx`` package when ranges would be seen by anyone, else None."""
    import sys

    attached = bool(os.environ.get("NVTX_INJECTION64_PATH"))
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available()
    if not (attached or cuda):
        return None
    try:
        import nvtx
    except ImportError:
        return None
    return nvtx


def enabled() -> bool:
    """Whether NVTX ranges are emitted in this process."""
    return _nvtx_module() is not None


@contextmanager
def nvtx_range(case: str, phase: str) -> Iterator[None]:
    """Mark ``phase`` of ``case`` on the Nsight timeline (no-op without CUDA or a tool)."""
    name = range_name(case, phase)
    module = _nvtx_module()
    if module is None:
        yield
        return
    module.push_range(name, domain="perfcast")
    try:
        yield
    finally:
        module.pop_range(domain="perfcast")
