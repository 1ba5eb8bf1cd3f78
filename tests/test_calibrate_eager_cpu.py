"""Which implementation PyTorch eager runs a convolution with, checked against what torch
actually dispatches, and the separate shape models that split gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conv_points import conv_point, depthwise_points
from perfcast.calibrate import CalibrationPoint, fit_profile
from perfcast.calibrate.eager_cpu import NATIVE_MAX_INPUT, runs_native
from perfcast.calibrate.model import CalibratedTime
from perfcast.calibrate.shape_model import NATIVE, POINTWISE, model_name, point_shape
from perfcast.estimate.roofline import estimate_kernel
from perfcast.frontends.torch_export import capture
from perfcast.hardware.detect import detect_local
from perfcast.ir import Category
from perfcast.passes import Kernel, partition
from perfcast.passes.kernel_shape import ConvGeometry, MatrixShape

OVERHEAD_S = 3e-6

# (in channels, out channels, image side, kernel, stride, dilation, groups, batch, threads)
CASES = [
    (40, 40, 22, 3, 1, 1, 1, 1, 1),  # 19,360 input elements: ATen's own kernel
    (40, 40, 23, 3, 1, 1, 1, 1, 1),  # 21,160: oneDNN
    (8, 8, 8, 3, 1, 1, 1, 2, 1),  # a second image: oneDNN
    (8, 8, 8, 3, 1, 1, 1, 1, 2),  # two threads do not help a small 3x3 conv
    (64, 64, 28, 1, 1, 1, 1, 1, 1),  # 1x1 on one thread: ATen's own at any input size
    (64, 64, 28, 1, 1, 1, 1, 8, 1),
    (8, 8, 8, 1, 1, 1, 1, 16, 1),  # ... up to 15 images
    (64, 64, 28, 1, 1, 1, 1, 1, 2),  # 1x1 on two threads, large input: oneDNN
    (8, 8, 8, 1, 1, 1, 1, 1, 2),  # ... small input: ATen's own
    (64, 64, 28, 1, 2, 1, 1, 1, 1),  # strided 1x1, large input: oneDNN
    (8, 8, 8, 1, 2, 1, 1, 1, 1),
    (8, 8, 8, 5, 1, 1, 1, 1, 1),  # windows over 3x3: oneDNN
    (8, 8, 8, 3, 1, 1, 2, 1, 1),  # grouped: oneDNN
    (8, 8, 8, 3, 1, 2, 1, 1, 1),  # dilated, small: ATen's slow_conv_dilated2d
]


class _Conv(torch.nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, dilation: int,
                 groups: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups,
                                    dilation=dilation, padding=dilation * (kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _dispatched_natively(module: torch.nn.Module, x: torch.Tensor, threads: int) -> bool:
    """Whether torch ran the convolution with its own kernels, from the profiled ops."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode(), torch.profiler.profile() as prof:
            module(x)
    finally:
        torch.set_num_threads(before)
    names = {e.name for e in prof.events()}
    assert any("conv" in n and n != "aten::conv2d" for n in names), names
    return "aten::mkldnn_convolution" not in names


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_runs_native_matches_what_torch_dispatches(case):
    """The captured convolution's call facts, run through the rule, give the kernel torch
    actually ran (read from the profiler)."""
    cin, cout, side, kernel, stride, dilation, groups, batch, threads = case
    module = _Conv(cin, cout, kernel, stride, dilation, groups).eval()
    x = torch.randn(batch, cin, side, side)
    conv = next(k for k in partition(capture(module, (x,)).graph, "eager")
                if k.shape is not None)
    call = conv.shape.call
    assert call == ConvGeometry(batch, batch * cin * side * side, (kernel, kernel), stride > 1,
                            dilation > 1, groups)
    assert runs_native(call, threads, "float32") == _dispatched_natively(module, x, threads)


def test_runs_native_flags_each_point_of_a_batch_sweep_and_leaves_other_dtypes_alone():
    images = np.array([1, 2, 16])
    call = ConvGeometry(images, images * 8 * 8 * 8, (1, 1), False, False, 1)
    np.testing.assert_array_equal(runs_native(call, 1, "float32"), [True, True, False])
    np.testing.assert_array_equal(runs_native(call, 2, "float32"), [True, False, False])
    assert runs_native(call, 1, "bfloat16") is False
    big = ConvGeometry(1, NATIVE_MAX_INPUT + 1, (3, 3), False, False, 1)
    assert runs_native(big, 1, "float32") is False


def _conv_points() -> list[CalibrationPoint]:
    """A machine where ATen's own kernels run 3x3 convs at 30 GFLOP/s, oneDNN at 90."""
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, OVERHEAD_S)]
    for c, side in itertools.product((8, 12, 16, 24, 32, 48, 64, 96), (10, 14, 20, 26, 32)):
        params = {"shape": f"{c}-{c}-{side}-3-1-1", "batch": 1}
        native = runs_native(point_shape("conv", params).call, 1, "float32")
        points.append(conv_point(params, 1, 30e9 if native else 90e9, OVERHEAD_S))
    return [*points, *depthwise_points(1, OVERHEAD_S)]


def test_native_and_onednn_convolutions_fit_and_use_models_of_their_own():
    """Each implementation's points fit their own model; a batch sweep whose first point
    runs natively and the others with oneDNN takes each point's rate from its model."""
    profile = fit_profile(_conv_points(), hardware_key="t", fingerprint="f", environment={},
                          perfcast_version="0")
    assert set(profile.shape) == {("conv", "float32", 1), ("conv" + NATIVE, "float32", 1)}
    images = np.array([1, 2, 4])
    side, c = 16, 40  # 10,240 input elements per image: native alone, oneDNN from two
    shape = MatrixShape(1, images * side * side, c, c * 9, window=9,
                        call=ConvGeometry(images, images * c * side * side, (3, 3), False, False,
                                          1))
    names = model_name("conv", shape, threads=1, dtype="float32")
    np.testing.assert_array_equal(names, ["conv" + NATIVE, "conv", "conv"])
    flops = 2.0 * shape.m * shape.n * shape.k
    kernel = Kernel("k", (), Category.CONV, flops, 4.0 * shape.m * 2 * c, "float32", "m",
                    shape)
    est = estimate_kernel(kernel, detect_local(), CalibratedTime(profile, 1))
    busy = np.asarray(est.time_s) - np.asarray(est.overhead_s)
    np.testing.assert_allclose(busy, flops / np.array([30e9, 90e9, 90e9]), rtol=0.1)


def test_pointwise_name_carries_the_native_suffix():
    shape = point_shape("conv", {"shape": "64-64-28-1-1-1", "batch": 1})
    assert model_name("conv", shape, threads=1, dtype="float32") == POINTWISE + NATIVE
    assert model_name("conv", shape, threads=2, dtype="float32") == POINTWISE
