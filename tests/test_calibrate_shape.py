"""Shape-aware calibration: GEMM dimensions of kernels, the shape model and its fit,
per-element costs of elementwise ops, and estimates made with them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conv_points import conv_point, depthwise_points
from perfcast.calibrate import CalibrationPoint, Curve, Profile, ProfileError, fit_profile
from perfcast.calibrate.model import CalibratedTime
from perfcast.calibrate.shape_model import (
    BLOCKS,
    MIN_POINTS,
    ShapeModel,
    ShapeSample,
    channel_padding,
    fit_shape_model,
    point_shape,
    streams,
)
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.roofline import estimate_kernel
from perfcast.frontends.torch_export import capture
from perfcast.hardware.detect import detect_local
from perfcast.ir import Category
from perfcast.passes import Kernel, partition
from perfcast.passes.kernel_shape import ConvGeometry, MatrixShape

# The curve a known machine follows: tiles half full at M=6, N=12, K=20, 90 GFLOP/s
# with all tiles full, and packing worth 1.5x the streaming time of the operands.
TRUE = {"rate": 90e9, "half_m": 6.0, "half_n": 12.0, "half_k": 20.0, "memory_weight": 1.5}
OVERHEAD_S = 3e-6
BANDWIDTH = Curve((1e5, 2e6, 3e7, 3e8), (80e9, 60e9, 25e9, 15e9), 4, 0.0)


def true_seconds(m, n, k, flops, nbytes):
    fill = (m / (m + TRUE["half_m"])) * (n / (n + TRUE["half_n"])) * (k / (k + TRUE["half_k"]))
    return OVERHEAD_S + flops / (TRUE["rate"] * fill) \
        + TRUE["memory_weight"] * nbytes / BANDWIDTH(nbytes)


def gemm_samples(rng: np.random.Generator, count: int) -> list[ShapeSample]:
    samples = []
    for _ in range(count):
        m, n, k = (float(round(x)) for x in np.exp(rng.uniform(np.log(2), np.log(4000), 3)))
        flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
        noise = 1 + rng.uniform(-0.02, 0.02)
        samples.append(ShapeSample(1, m, n, k, flops, nbytes,
                                   true_seconds(m, n, k, flops, nbytes) * noise))
    return samples


# --- GEMM dimensions of kernels ---------------------------------------------------------


class _Layers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(48, 80)
        self.conv = torch.nn.Conv2d(6, 10, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(10, 10, 3, padding=1, groups=10)

    def forward(self, x, img, a, b):
        y = self.fc(x)  # [2, 5, 48] -> [2, 5, 80]
        z = torch.bmm(a, b)  # [3, 7, 9] @ [3, 9, 11]
        c = self.dw(self.conv(img))  # [2, 6, 16, 16] -> [2, 10, 8, 8]
        return torch.tanh(y), z, c


def test_matrix_shapes_of_linear_bmm_and_convolutions_are_the_implicit_gemms():
    inputs = (torch.randn(2, 5, 48), torch.randn(2, 6, 16, 16), torch.randn(3, 7, 9),
              torch.randn(3, 9, 11))
    graph = capture(_Layers().eval(), inputs).graph
    kernels = partition(graph, "eager")
    shapes = {k.nodes[0].kind + ("-dw" if k.shape and k.shape.depthwise else ""): k.shape
              for k in kernels if k.shape is not None}
    linear = next(s for kind, s in shapes.items() if kind in ("linear", "addmm", "matmul"))
    assert (linear.batch, linear.m, linear.n, linear.k) == (1, 10, 80, 48)
    assert shapes["bmm"] == MatrixShape(3, 7, 11, 9)
    conv = next(s for kind, s in shapes.items() if "conv" in kind and not kind.endswith("-dw"))
    assert conv == MatrixShape(1, 2 * 8 * 8, 10, 6 * 9, window=9,
                               call=ConvGeometry(2, 2 * 6 * 16 * 16, (3, 3), True, False, 1))
    dw = next(s for kind, s in shapes.items() if kind.endswith("-dw"))
    assert dw == MatrixShape(1, 2 * 8 * 8, 10, 9, depthwise=True, window=9,
                             call=ConvGeometry(2, 2 * 10 * 8 * 8, (3, 3), False, False, 10))
    # 2*M*N*K*batch is the FLOP count without bias (convs here have a bias: + outputs).
    bmm = next(k for k in kernels if k.nodes[0].kind == "bmm")
    assert bmm.flops == 2 * 3 * 7 * 11 * 9
    tanh = next(k for k in kernels if k.nodes[0].kind == "tanh")
    assert tanh.elements == (("tanh", 2 * 5 * 80),)


def test_point_shape_reads_microbenchmark_parameters():
    assert point_shape("gemm", {"m": 6, "nk": "2560x640"}) == MatrixShape(1, 6, 2560, 640)
    assert point_shape("gemm", {"n": 96}) == MatrixShape(1, 96, 96, 96)
    assert point_shape("gemm", {"batch": 12, "n": 64}) == MatrixShape(12, 64, 64, 64)
    # 40 -> 80 channels, 3x3, stride 2 on 28x28: 14x14 outputs, K = 40 * 9.
    assert point_shape("conv", {"shape": "40-80-28-3-2-1", "batch": 2}) == \
        MatrixShape(1, 2 * 14 * 14, 80, 360, window=9,
                    call=ConvGeometry(2, 2 * 40 * 28 * 28, (3, 3), True, False, 1))
    # 96 -> 96 channels in 8 groups: eight 784 x 12 x 108 products.
    assert point_shape("conv", {"shape": "96-96-28-3-1-8", "batch": 1}) == \
        MatrixShape(8, 784, 12, 108, window=9,
                    call=ConvGeometry(1, 96 * 28 * 28, (3, 3), False, False, 8))
    dw = point_shape("conv", {"shape": "32-32-28-3-1-32", "batch": 1})
    assert dw is not None and dw.depthwise and streams("conv", dw)
    assert streams("gemm", MatrixShape(1, 1, 640, 640))
    assert not streams("gemm", MatrixShape(1, 2, 640, 640))
    np.testing.assert_array_equal(streams("gemm", MatrixShape(1, np.array([1, 8]), 64, 64)),
                                  [True, False])


# --- the shape model --------------------------------------------------------------------


def test_fit_shape_model_recovers_a_known_machine():
    samples = gemm_samples(np.random.default_rng(3), 80)
    model = fit_shape_model(samples, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH)
    assert model.rel_rmse < 0.03
    # Times at shapes it never saw, GEMV-like to large, within 5%.
    for m, n, k in [(3, 3000, 700), (64, 768, 3072), (512, 512, 512), (8, 50000, 768)]:
        flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
        arithmetic, memory = model.busy_s(m, n, k, flops, nbytes, BANDWIDTH)
        assert OVERHEAD_S + arithmetic + memory == pytest.approx(
            true_seconds(m, n, k, flops, nbytes), rel=0.05)
    assert model.rate == pytest.approx(TRUE["rate"], rel=0.1)
    assert model.memory_weight == pytest.approx(TRUE["memory_weight"], rel=0.2)


def test_fit_recovers_how_packing_depends_on_the_weight_shape():
    """A machine whose packing costs (N / K) ** 0.2 times more: fitted with the aspect
    term, the exponent comes back and an unseen N-long weight is timed within 5%; the
    fit without it cannot follow both shapes."""
    rng = np.random.default_rng(5)
    samples = []
    for _ in range(80):
        m, n, k = (float(round(x)) for x in np.exp(rng.uniform(np.log([2, 64, 64]),
                                                                np.log([4000, 40000, 40000]))))
        flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
        packing = (n / k) ** 0.2 - 1  # the extra over TRUE's memory weight
        seconds = true_seconds(m, n, k, flops, nbytes) \
            + packing * TRUE["memory_weight"] * nbytes / BANDWIDTH(nbytes)
        samples.append(ShapeSample(1, m, n, k, flops, nbytes, seconds))
    model = fit_shape_model(samples, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH,
                            fit_aspect=True)
    assert model.aspect == pytest.approx(0.2, abs=0.03)
    m, n, k = 8, 30000, 1000  # few rows against an N-long 120 MB weight
    flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
    truth = true_seconds(m, n, k, flops, nbytes) \
        + ((n / k) ** 0.2 - 1) * TRUE["memory_weight"] * nbytes / BANDWIDTH(nbytes)
    assert OVERHEAD_S + sum(model.busy_s(m, n, k, flops, nbytes, BANDWIDTH)) == \
        pytest.approx(truth, rel=0.05)
    plain = fit_shape_model(samples, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH)
    assert plain.aspect == 0.0 and plain.rel_rmse > 2 * model.rel_rmse
    with pytest.raises(ValueError, match="aspect must be within"):
        ShapeModel(1.0, 1, 1, 1, 1, 0.1, 1.0, (1, 1, 1), (2, 2, 2), 8, 0.0, aspect=0.9)


def conv_samples(rng: np.random.Generator, count: int, block: int) -> list[ShapeSample]:
    """3x3 convolutions on a machine that computes whole blocks of ``block`` channels."""
    samples = []
    for _ in range(count):
        c_in, c_out = (int(x) for x in rng.integers(3, 200, 2))
        m = float(round(np.exp(rng.uniform(np.log(50), np.log(20000)))))
        n, k = float(c_out), float(9 * c_in)
        flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
        seconds = true_seconds(m, n, k, flops * channel_padding(n, k, 9, block), nbytes)
        samples.append(ShapeSample(1, m, n, k, flops, nbytes,
                                   seconds * (1 + rng.uniform(-0.02, 0.02)), window=9))
    return samples


def test_channel_padding_rounds_output_channels_and_wide_inputs_up_to_the_block():
    assert channel_padding(20, 32 * 9, 9, 16) == pytest.approx(32 / 20)
    assert channel_padding(3, 32 * 9, 9, 16) == pytest.approx(16 / 3)
    assert channel_padding(16, 3 * 9, 9, 16) == 1.0  # an RGB input is not padded
    assert channel_padding(32, 20 * 9, 9, 16) == pytest.approx(32 / 20)
    assert channel_padding(20, 20 * 9, 9, 8) == pytest.approx((24 / 20) ** 2)
    assert channel_padding(20, 20, 1, 1) == 1.0
    np.testing.assert_allclose(channel_padding(np.array([16, 24]), 288, 9, 16), [1.0, 4 / 3])


@pytest.mark.parametrize("block", [1, 16])
def test_fit_finds_the_channel_block_of_a_known_machine(block):
    model = fit_shape_model(conv_samples(np.random.default_rng(6), 120, block),
                            overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH, blocks=BLOCKS)
    assert model.block == block
    assert model.rel_rmse < 0.03
    # 20 output channels cost as much as 32 with a 16-channel block, 20/32 of it without.
    for c_out in (20, 32):
        m, n, k = 4096.0, float(c_out), 9 * 32.0
        flops, nbytes = 2 * m * n * k, 4 * (m * k + k * n + m * n)
        arithmetic, memory = model.busy_s(m, n, k, flops, nbytes, BANDWIDTH, window=9)
        truth = true_seconds(m, n, k, flops * channel_padding(n, k, 9, block), nbytes)
        assert OVERHEAD_S + arithmetic + memory == pytest.approx(truth, rel=0.05)
    assert ShapeModel.from_dict(model.to_dict()) == model


def test_fit_keeps_tile_sizes_and_rate_within_what_was_measured():
    """Timings that never fill a tile (rate still rising at the largest N measured) do
    not let the fit claim a tile far larger than any shape, at a rate far above any."""
    samples = []
    for m, n, k in itertools.product((64, 256, 1024), (16, 32, 64, 128), (64, 256)):
        flops = 2.0 * m * n * k
        samples.append(ShapeSample(1, m, n, k, flops, 4.0 * (m * k + k * n + m * n),
                                   OVERHEAD_S + flops / (1e9 * n)))  # rate grows with N
    model = fit_shape_model(samples, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH)
    assert model.half_n <= 2 * 128 and model.half_m <= 2 * 1024 and model.half_k <= 2 * 256
    assert model.rate <= 4 * 128e9
    tiny = [ShapeSample(1, m, n, 2, 4.0 * m * n, 4.0 * (2 * m + 2 * n + m * n),
                        OVERHEAD_S + 4.0 * m * n / 1e9) for m in (1, 2, 3) for n in (1, 2, 3)]
    assert fit_shape_model(tiny, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH).half_k <= 4


def test_shape_model_confidence_follows_the_measured_range():
    model = fit_shape_model(gemm_samples(np.random.default_rng(4), 30), overhead_s=OVERHEAD_S,
                            bandwidth=BANDWIDTH)
    lo, hi = model.lo, model.hi
    assert model.confidence(lo[0] * 1.01, hi[1] / 1.01, lo[2] * 1.01) is Confidence.CALIBRATED
    assert model.confidence(lo[0], hi[1] * 2, lo[2]) is Confidence.INTERPOLATED
    assert model.confidence(lo[0], hi[1] * 100, lo[2]) is Confidence.THEORETICAL


def test_shape_model_refuses_too_few_points_and_bad_values():
    samples = gemm_samples(np.random.default_rng(5), MIN_POINTS - 1)
    with pytest.raises(ValueError, match=f"at least {MIN_POINTS} measured shapes"):
        fit_shape_model(samples, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH)
    bad = [*gemm_samples(np.random.default_rng(5), MIN_POINTS), ShapeSample(1, 0, 4, 4, 1, 1, 1)]
    with pytest.raises(ValueError, match="finite, positive"):
        fit_shape_model(bad, overhead_s=OVERHEAD_S, bandwidth=BANDWIDTH)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        ShapeModel(-1.0, 1, 1, 1, 1, 0.1, 1.0, (1, 1, 1), (2, 2, 2), 8, 0.0)
    with pytest.raises(ValueError, match="missing fields: rate"):
        ShapeModel.from_dict({"half_m": 1})
    with pytest.raises(ValueError, match=r"block must be one of \[1, 8, 16\], got 3"):
        ShapeModel(1.0, 1, 1, 1, 1, 0.1, 1.0, (1, 1, 1), (2, 2, 2), 8, 0.0, block=3)


# --- profiles with shape models and element costs -----------------------------------------


def _points() -> list[CalibrationPoint]:
    rng = np.random.default_rng(11)
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, OVERHEAD_S)]
    for s in gemm_samples(rng, 40):
        nk = f"{int(s.n)}x{int(s.k)}"
        points.append(CalibrationPoint("gemm", "float32", 1, s.flops, s.bytes, s.seconds,
                                       {"m": int(s.m), "nk": nk}))
    for n in np.geomspace(16, 1 << 17, 16).astype(int):  # GEMVs: the gemm memory curve
        nbytes = 4.0 * (n * 640 + n + 640)
        points.append(CalibrationPoint("gemm", "float32", 1, 2.0 * n * 640, nbytes,
                                       OVERHEAD_S + nbytes / BANDWIDTH(nbytes),
                                       {"m": 1, "nk": f"{n}x640"}))
    for mib in (1, 4, 16, 64, 256):
        nbytes = 2.0 * mib * (1 << 20)
        points.append(CalibrationPoint("data_movement", "float32", 1, 0, nbytes,
                                       OVERHEAD_S + nbytes / BANDWIDTH(nbytes), {"mib": mib}))
    for numel in (1 << 14, 1 << 16, 1 << 18, 1 << 22):
        for op, ns in (("add", None), ("tanh", 2.5e-9)):
            nbytes = (3 if op == "add" else 2) * 4.0 * numel
            busy = nbytes / 50e9 if ns is None else max(numel * ns, nbytes / 50e9)
            points.append(CalibrationPoint("elementwise", "float32", 1, numel, nbytes,
                                           OVERHEAD_S + busy, {"op": op, "numel": numel}))
    return points


@pytest.fixture(scope="module")
def shaped() -> Profile:
    return fit_profile(_points(), hardware_key="test-cpu", fingerprint="f",
                       environment={}, perfcast_version="0")


def test_profile_fits_a_gemm_shape_model_and_a_tanh_cost_and_saves_them(shaped, tmp_path):
    assert set(shaped.shape) == {("gemm", "float32", 1)}
    assert shaped.shape[("gemm", "float32", 1)].n_points == 40  # the GEMVs are not in it
    assert ("gemm", "float32", 1) in shaped.memory  # ...they are the gemm memory curve
    assert shaped.element_cost == {("tanh", "float32", 1): pytest.approx(2.5e-9, rel=0.01)}
    path = tmp_path / "p.yaml"
    shaped.save(path)
    assert Profile.load(path) == shaped


def test_profile_refuses_a_bad_element_cost(shaped):
    data = shaped.to_dict()
    data["element_cost"] = {"tanh/float32/1": -1.0}
    with pytest.raises(ProfileError, match="element_cost 'tanh/float32/1' must be finite"):
        Profile.from_dict(data)
    data["element_cost"] = {"tanh/float32": 1e-9}
    with pytest.raises(ProfileError, match="not 'name/dtype/threads'"):
        Profile.from_dict(data)


def test_estimates_use_the_shape_model_for_gemms_and_the_curve_for_gemvs(shaped):
    hw = detect_local()
    eff = CalibratedTime(shaped, 1)
    model = shaped.shape[("gemm", "float32", 1)]
    m, n, k = 64, 768, 3072
    flops, nbytes = 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n)
    gemm = Kernel("k", (), Category.GEMM, flops, nbytes, "float32", "m", MatrixShape(1, m, n, k))
    est = estimate_kernel(gemm, hw, eff)
    arithmetic, memory = model.busy_s(m, n, k, flops, nbytes, shaped.memory[
        ("gemm", "float32", 1)])
    assert est.time_s - est.overhead_s == pytest.approx(arithmetic + memory, rel=1e-9)
    assert est.time_s - est.overhead_s == pytest.approx(
        true_seconds(m, n, k, flops, nbytes) - OVERHEAD_S, rel=0.1)
    # Same work as a GEMV: the gemm memory curve, not the shape model.
    gemv_bytes = 4.0 * (n * k + n + k)
    gemv = Kernel("k", (), Category.GEMM, 2.0 * n * k, gemv_bytes, "float32", "m",
                  MatrixShape(1, 1, n, k))
    gemv_est = estimate_kernel(gemv, hw, eff)
    assert gemv_est.time_s - gemv_est.overhead_s == pytest.approx(
        gemv_bytes / BANDWIDTH(gemv_bytes), rel=0.1)


def test_profile_fits_pooling_costs_per_element_read():
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, OVERHEAD_S)]
    for channels in (16, 64, 256):
        numel = channels * 56 * 56
        points.append(CalibrationPoint(
            "reduction", "float32", 1, numel, 5.0 * numel, OVERHEAD_S + numel * 5.5e-9,
            {"op": "max_pool2d", "window": "2", "channels": channels, "size": 56}))
        points.append(CalibrationPoint("reduction", "float32", 1, numel, 4.0 * numel,
                                       OVERHEAD_S + 4.0 * numel / 40e9,
                                       {"kind": "last-dim", "numel": numel}))
    profile = fit_profile(points, hardware_key="t", fingerprint="f", environment={},
                          perfcast_version="0")
    assert profile.element_cost == {("max_pool2d", "float32", 1): pytest.approx(5.5e-9)}
    assert profile.memory[("reduction", "float32", 1)](1e6) == pytest.approx(40e9, rel=0.01)
    numel = 64 * 112 * 112
    pool = Kernel("k", (), Category.REDUCTION, numel, 5.0 * numel, "float32", "m",
                  elements=(("max_pool2d", numel),))
    est = estimate_kernel(pool, detect_local(), CalibratedTime(profile, 1))
    assert est.time_s - est.overhead_s == pytest.approx(numel * 5.5e-9)


def test_pooling_kernels_count_the_elements_they_read():
    model = torch.nn.Sequential(torch.nn.MaxPool2d(3, 2, 1), torch.nn.AvgPool2d(2)).eval()
    graph = capture(model, (torch.randn(2, 4, 16, 16),)).graph
    elements = [k.elements for k in partition(graph, "eager")]
    assert elements == [(("max_pool2d", 2 * 4 * 16 * 16),), (("avg_pool2d", 2 * 4 * 8 * 8),)]


def test_estimates_charge_tanh_its_per_element_cost(shaped):
    hw = detect_local()
    numel = 1 << 16
    tanh = Kernel("k", (), Category.ELEMENTWISE, numel, 8.0 * numel, "float32", "m",
                  elements=(("tanh", numel),))
    add = Kernel("k", (), Category.ELEMENTWISE, numel, 12.0 * numel, "float32", "m",
                 elements=(("add", numel),))
    eff = CalibratedTime(shaped, 1)
    t_tanh = estimate_kernel(tanh, hw, eff)
    t_add = estimate_kernel(add, hw, eff)
    assert t_tanh.time_s - t_tanh.overhead_s == pytest.approx(numel * 2.5e-9, rel=0.02)
    assert t_add.time_s - t_add.overhead_s == pytest.approx(12.0 * numel / 50e9, rel=0.1)


def test_profile_fits_a_fixed_cost_per_call_beside_the_per_element_cost(tmp_path):
    """GELU-like: 5 us per call beyond dispatch plus 0.6 ns per element, one noisy size."""
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, OVERHEAD_S)]
    for numel in np.geomspace(1 << 14, 1 << 19, 9).astype(int):
        busy = 5e-6 + 0.6e-9 * numel
        if numel == 1 << 14:
            busy *= 1.8  # one point slowed down by a neighbour: the robust line ignores it
        points.append(CalibrationPoint("elementwise", "float32", 1, numel, 8.0 * numel,
                                       OVERHEAD_S + busy, {"op": "gelu", "numel": int(numel)}))
    profile = fit_profile(points, hardware_key="t", fingerprint="f", environment={},
                          perfcast_version="0")
    key = ("gelu", "float32", 1)
    assert profile.element_cost[key] == pytest.approx(0.6e-9, rel=0.02)
    assert profile.element_fixed_s[key] == pytest.approx(5e-6, rel=0.05)
    gelu = Kernel("k", (), Category.ELEMENTWISE, 8.0 * 768, 8.0 * 768, "float32", "m",
                  elements=(("gelu", 768),))
    est = estimate_kernel(gelu, detect_local(), CalibratedTime(profile, 1))
    assert est.time_s - est.overhead_s == pytest.approx(5e-6 + 0.6e-9 * 768, rel=0.05)
    path = tmp_path / "p.json"
    profile.save(path)
    assert Profile.load(path).element_fixed_s == profile.element_fixed_s
    data = profile.to_dict()
    data["element_fixed_s"] = {"gelu/float32/1": -1e-6}
    with pytest.raises(ProfileError, match="element_fixed_s 'gelu/float32/1' must be finite "
                                           "and >= 0"):
        Profile.from_dict(data)
    del data["element_fixed_s"]  # profiles written before fixed costs existed
    assert Profile.from_dict(data).element_fixed_s == {}


def test_pointwise_convolutions_get_a_shape_model_of_their_own():
    """On two threads (PyTorch runs these convolutions with oneDNN) 1x1 and windowed
    convolutions fit models of their own, and a shape no point had takes its model's
    rate."""
    from perfcast.calibrate.shape_model import POINTWISE, model_name

    def name(shape: str) -> str | np.ndarray:
        return model_name("conv", point_shape("conv", {"shape": shape, "batch": 2}),
                          threads=2, dtype="float32")

    assert name("96-192-14-1-1-1") == POINTWISE
    assert name("96-192-14-3-1-1") == "conv"
    assert name("32-32-28-1-1-32") == "conv"  # depthwise: streamed, never shape-modelled
    assert model_name("gemm", MatrixShape(1, 8, 8, 8), threads=1, dtype="float32") == "gemm"
    points = [CalibrationPoint("overhead", "float32", 2, 0, 0, OVERHEAD_S)]
    for window, rate in ((1, 40e9), (3, 90e9)):  # 1x1 convs at under half the 3x3 rate
        for c, size in itertools.product((16, 24, 40, 64, 96, 128, 200, 256), (20, 36)):
            points.append(conv_point({"shape": f"{c}-{c}-{size}-{window}-1-1", "batch": 2}, 2,
                                     rate, OVERHEAD_S))
    points += depthwise_points(2, OVERHEAD_S)
    profile = fit_profile(points, hardware_key="t", fingerprint="f", environment={},
                          perfcast_version="0")
    assert set(profile.shape) == {("conv", "float32", 2), (POINTWISE, "float32", 2)}
    eff = CalibratedTime(profile, 2)
    for window, rate in ((1, 40e9), (3, 90e9)):
        shape = point_shape("conv", {"shape": f"48-48-30-{window}-1-1", "batch": 2})
        flops = 2.0 * shape.m * shape.n * shape.k  # 48 channels at 30x30: no point had it
        conv = Kernel("k", (), Category.CONV, flops, 4.0 * shape.m * 2 * 48, "float32", "m",
                      shape)
        est = estimate_kernel(conv, detect_local(), eff)
        assert est.time_s - est.overhead_s == pytest.approx(flops / rate, rel=0.1)


def test_confidence_is_that_of_the_curve_setting_the_time():
    """Attention measured compute-bound over a FLOP range, memory-bound only on tiny
    inputs: a compute-bound attention kernel with bytes far outside the memory points is
    CALIBRATED by its compute curve; a memory-bound one out there stays THEORETICAL."""
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, OVERHEAD_S)]
    for flops in np.geomspace(1e7, 1e10, 8):  # 100 FLOP/byte: compute-bound
        points.append(CalibrationPoint("attention", "float32", 1, flops, flops / 100,
                                       OVERHEAD_S + flops / 50e9))
    for nbytes in np.geomspace(1e4, 4e4, 4):  # 1 FLOP/byte: memory-bound, tiny
        points.append(CalibrationPoint("attention", "float32", 1, nbytes, nbytes,
                                       OVERHEAD_S + nbytes / 10e9))
    profile = fit_profile(points, hardware_key="t", fingerprint="f", environment={},
                          perfcast_version="0")
    model, hw = CalibratedTime(profile, 1), detect_local()
    compute_bound = Kernel("k", (), Category.ATTENTION, 1e9, 1e7, "float32", "m")
    memory_bound = Kernel("k", (), Category.ATTENTION, 1e6, 1e8, "float32", "m")
    assert model.time(compute_bound, hw).confidence is Confidence.CALIBRATED
    assert model.time(memory_bound, hw).confidence is Confidence.THEORETICAL
