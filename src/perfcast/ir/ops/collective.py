"""Collectives over a group of ``group_size`` devices (attribute).

Shapes are per device. FLOPs count the reduction adds; bytes count the local
tensor read and the result written (the traffic on links is costed by the
communication model, not here).
"""

from __future__ import annotations

from perfcast.ir.ops._util import same_as_input
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim


def _group(attrs) -> int:
    return int(attrs.get("group_size", 1))



def _gathered(ins, attrs):
    x = ins[0]
    return [((x.shape[0] * _group(attrs), *x.shape[1:]), x.dtype)]


def _scattered(ins, attrs):
    x = ins[0]
    return [((x.shape[0] // _group(attrs), *x.shape[1:]), x.dtype)]


def _reduce_flops(ins, outs, attrs) -> Dim:
    g = _group(attrs)
    return ins[0].numel * (g - 1) // g if g > 1 else 0


def _zero(ins, outs, attrs) -> Dim:
    return 0


define("all_reduce", Category.COLLECTIVE, same_as_input, _reduce_flops)
define("all_gather", Category.COLLECTIVE, _gathered, _zero)
define("reduce_scatter", Category.COLLECTIVE, _scattered, _reduce_flops)
define(["all_to_all", "send", "recv"], Category.COLLECTIVE, same_as_input, _zero)
