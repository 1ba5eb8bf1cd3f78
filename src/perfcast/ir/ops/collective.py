"""Collectives over a group of ``group_size`` devices (attribute).

Shapes are per device. FLOPs count the reduction adds; bytes count the local
tensor read and the result written (the traffic on links is costed by the
communication model, not here).
"""

from __future__ import annotations

import numpy as np

from perfcast.ir.ops._util import same_as_input
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim


def _group(attrs) -> Dim:
    """``group_size`` as an int, or an int array when it is swept (array or list)."""
    raw = attrs.get("group_size", 1)
    g = np.asarray(int(raw) if isinstance(raw, str) else raw)
    if g.dtype.kind not in "iuf" or (g.dtype.kind == "f" and not np.all(g == np.round(g))):
        raise ValueError(f"group_size must be an integer or an integer array, got {g!r}")
    if np.any(g < 1):
        raise ValueError(f"group_size must be >= 1, got {g!r}")
    return int(g) if g.ndim == 0 else g.astype(np.int64)


def _gathered(ins, attrs):
    x = ins[0]
    return [((x.shape[0] * _group(attrs), *x.shape[1:]), x.dtype)]


def _scattered(ins, attrs):
    x = ins[0]
    return [((x.shape[0] // _group(attrs), *x.shape[1:]), x.dtype)]


def _reduce_flops(ins, outs, attrs) -> Dim:
    g = _group(attrs)
    if isinstance(g, int):
        return ins[0].numel * (g - 1) // g if g > 1 else 0
    return np.where(g > 1, ins[0].numel * (g - 1) // g, 0)


def _zero(ins, outs, attrs) -> Dim:
    return 0


define("all_reduce", Category.COLLECTIVE, same_as_input, _reduce_flops)
define("all_gather", Category.COLLECTIVE, _gathered, _zero)
define("reduce_scatter", Category.COLLECTIVE, _scattered, _reduce_flops)
define(["all_to_all", "send", "recv"], Category.COLLECTIVE, same_as_input, _zero)
