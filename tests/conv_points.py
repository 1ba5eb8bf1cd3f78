"""Synthetic convolution calibration points shared by the shape-model tests."""

from __future__ import annotations

from typing import Any

from perfcast.calibrate import CalibrationPoint
from perfcast.calibrate.shape_model import point_shape


def conv_point(params: dict[str, Any], threads: int, rate: float,
               overhead_s: float) -> CalibrationPoint:
    """A conv microbenchmark with ``params`` timed at ``rate`` FLOP/s plus the overhead."""
    s = point_shape("conv", params)
    assert s is not None
    flops = 2.0 * s.m * s.n * s.k
    return CalibrationPoint("conv", "float32", threads, flops, 4.0 * s.m * (s.n + s.k),
                            overhead_s + flops / rate, params)


def depthwise_points(threads: int, overhead_s: float) -> list[CalibrationPoint]:
    """Depthwise 3x3 convs streaming at 30 GB/s: the conv memory curve shape models read."""
    points = []
    for side in (10, 20, 40, 80, 120):
        nbytes = 8.0 * 32 * side * side
        points.append(CalibrationPoint("conv", "float32", threads, 18.0 * 32 * side * side,
                                       nbytes, overhead_s + nbytes / 30e9,
                                       {"shape": f"32-32-{side}-3-1-32"}))
    return points
