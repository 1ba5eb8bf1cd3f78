"""Whole-network calibration: the fit recovers known factors, profiles carry it, the
estimator applies it, and the synthetic networks share no weight shape with validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perfcast.calibrate import (
    CalibrationPoint,
    Profile,
    ProfileError,
    apply_profile,
    fit_profile,
)
from perfcast.calibrate.composite import (
    GROUPS,
    MIN_NETS,
    CompositeFit,
    CompositeRow,
    fit_composite,
    group_of,
)
from perfcast.estimate.roofline import estimate_kernel
from perfcast.hardware.detect import detect_local
from perfcast.ir import Category
from perfcast.passes import Kernel

TRUE_SCALE = {"gemm": 1.3, "gemm_low": 2.0, "gemv": 0.6, "conv": 1.8, "conv_low": 1.0,
              "attention": 1.0, "memory": 1.5}
MICRO_OVERHEAD, TRUE_OVERHEAD = 1e-6, 6e-6


def rows(n: int = 30, noise: float = 0.0, seed: int = 1) -> list[CompositeRow]:
    """Networks whose measured time follows TRUE_SCALE and TRUE_OVERHEAD exactly."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        busy = {g: float(rng.uniform(0, 2e-3)) * (rng.random() < 0.7) for g in GROUPS}
        kernels = int(rng.integers(5, 200))
        measured = sum(TRUE_SCALE[g] * b for g, b in busy.items()) + kernels * TRUE_OVERHEAD
        measured *= 1 + noise * rng.standard_normal()
        out.append(CompositeRow(f"net{i}", 1, measured, busy, kernels, MICRO_OVERHEAD))
    return out


def test_fit_recovers_known_factors_and_overhead() -> None:
    fit = fit_composite(rows(), prior_weight=0.0)
    for g, v in TRUE_SCALE.items():
        assert fit.scale[g] == pytest.approx(v, rel=1e-6)
    assert fit.overhead_s == pytest.approx(TRUE_OVERHEAD, rel=1e-6)
    assert fit.rel_rmse == pytest.approx(0.0, abs=1e-9) and fit.micro_rel_rmse > 0.2


def test_fit_with_noise_and_prior_stays_close() -> None:
    fit = fit_composite(rows(n=60, noise=0.03))
    for g, v in TRUE_SCALE.items():
        assert fit.scale[g] == pytest.approx(v, rel=0.2)
    assert fit.overhead_s == pytest.approx(TRUE_OVERHEAD, rel=0.25)
    assert fit.rel_rmse < 0.1


def test_unexercised_group_keeps_factor_one_and_too_few_nets_refused() -> None:
    sample = [dataclasses.replace(r, busy_s={**r.busy_s, "attention": 0.0}) for r in rows()]
    assert fit_composite(sample).scale["attention"] == 1.0
    with pytest.raises(ValueError, match=f"at least {MIN_NETS} measured networks"):
        fit_composite(rows(n=MIN_NETS - 1))


def test_group_by_category_and_intensity() -> None:
    assert group_of("gemm", 1e9, 1e6) == "gemm"
    assert group_of("gemm", 1e6, 1e6) == "gemm_low"  # small batch: 1 FLOP per byte
    assert group_of("gemm", 5e5, 1e6) == "gemv"  # one row: streams the weights
    assert group_of("conv", 2e6, 1e6) == "conv_low"
    assert group_of("attention", 1.0, 1e6) == "attention"
    assert group_of("elementwise", 1e9, 1e6) == "memory"
    assert list(group_of("gemm", np.array([1e9, 1e6, 1e5]), np.array([1e6, 1e6, 1e6]))) == [
        "gemm", "gemm_low", "gemv"]


def micro_points() -> list[CalibrationPoint]:
    """Single-thread points: overheads, a GEMM rate ramp and a flat 20 GB/s stream."""
    points = [CalibrationPoint("overhead", "float32", 1, 0, 0, s) for s in (1e-6, 1.2e-6)]
    for flops in np.logspace(5, 11, 13):
        rate = 100e9 * flops / (flops + 1e7)
        points.append(CalibrationPoint("gemm", "float32", 1, flops, flops / 50,
                                       1e-6 + flops / rate))
    for nbytes in np.logspace(14, 28, 15, base=2):
        points.append(CalibrationPoint("elementwise", "float32", 1, nbytes / 8, nbytes,
                                       1e-6 + nbytes / 20e9))
    return points


def profile_with(fit: CompositeFit | None) -> Profile:
    profile = fit_profile(micro_points(), hardware_key="k", fingerprint="f",
                          environment={}, perfcast_version="0")
    return dataclasses.replace(profile, composite={} if fit is None else {1: fit})


def test_estimator_does_not_apply_whole_network_factors() -> None:
    """The per-group factors stay a check on synthetic networks: they did not carry over
    to unseen models (docs/calibrate.md), so estimates use the microbenchmark fit alone."""
    fit = CompositeFit({**{g: 1.0 for g in GROUPS}, "gemm": 2.0}, 7e-6, 10, 0.05, 0.3)
    local = detect_local()
    gemm = Kernel("k", (), Category.GEMM, 1e9, 1e6, "float32", "m")
    add = Kernel("k", (), Category.ELEMENTWISE, 1e5, 1e6, "float32", "m")
    base_spec, base_eff = apply_profile(local, profile_with(None), 1)
    spec, eff = apply_profile(local, profile_with(fit), 1)
    assert spec.launch_overhead_s.value == base_spec.launch_overhead_s.value
    for k in (gemm, add):
        same = estimate_kernel(k, base_spec, base_eff).time_s
        assert estimate_kernel(k, spec, eff).time_s == same


def test_profile_round_trip_and_bad_composite(tmp_path) -> None:
    fit = CompositeFit(dict(TRUE_SCALE), 6e-6, 24, 0.08, 0.4)
    profile = profile_with(fit)
    path = tmp_path / "p.json"
    profile.save(path)
    assert Profile.load(path).composite == {1: fit}
    bad = profile.to_dict()
    bad["composite"] = {"1": {**fit.to_dict(), "scale": {"gemm": -1.0}}}
    with pytest.raises(ProfileError, match=r"composite for 1 threads: .*finite and > 0"):
        Profile.from_dict(bad)
    bad["composite"] = {"one": fit.to_dict()}
    with pytest.raises(ProfileError, match="'one' is not a thread count"):
        Profile.from_dict(bad)


def _matrix_weight_shapes(model) -> set[tuple[int, ...]]:
    return {tuple(p.shape) for p in model.parameters() if p.dim() >= 2}


def test_synthetic_networks_share_no_weight_shape_with_validation_models() -> None:
    """Calibration and validation shapes are disjoint: no Linear/conv/embedding weight
    shape of a synthetic network appears in a validation model."""
    from perfcast.calibrate.synthetic import synthetic_nets
    from perfcast.validate.zoo import ZOO

    calibration = set().union(*(_matrix_weight_shapes(n.build()[0]) for n in synthetic_nets()))
    validation = set().union(*(_matrix_weight_shapes(z.build(1)[0]) for z in ZOO.values()))
    assert calibration and validation
    assert calibration.isdisjoint(validation), sorted(calibration & validation)


def test_microbenchmark_weights_share_no_shape_with_validation_models() -> None:
    """No linear-layer weight [N, K] a calibration family can time, at any size it can
    reach, is a weight of a validation model."""
    from perfcast.calibrate.sampler import families
    from perfcast.validate.zoo import ZOO

    validation = set().union(*(_matrix_weight_shapes(z.build(1)[0]) for z in ZOO.values()))
    calibration = set()
    for family in families():
        if family.target == "micro:gemm-skinny":
            for size in range(family.lo, family.hi + 1):
                n, k = (int(d) for d in family.make(size, "float32")["nk"].split("x"))
                calibration.add((n, k))
    assert len(calibration) > 1000
    assert calibration.isdisjoint(validation), sorted(calibration & validation)[:10]


def _conv_layers(model, inputs) -> set[tuple[int, ...]]:
    """(c_in, c_out, input side, kernel, stride, groups) of every Conv2d a forward runs."""
    import torch

    seen: set[tuple[int, ...]] = set()

    def record(module, args) -> None:
        seen.add((module.in_channels, module.out_channels, args[0].shape[-1],
                  module.kernel_size[0], module.stride[0], module.groups))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model(*inputs)
    for h in hooks:
        h.remove()
    return seen


def test_microbenchmark_convolutions_are_not_validation_layers() -> None:
    """No convolution a calibration family can time, at any size it can reach, is a layer
    of a validation model (same channels, input size, kernel, stride and groups)."""
    from perfcast.bench.suites.micro import conv_shape
    from perfcast.calibrate.sampler import families
    from perfcast.validate.zoo import ZOO

    validation = set().union(*(_conv_layers(*ZOO[name].build(1)) for name in ZOO
                               if ZOO[name].kind == "cnn"))
    calibration = {conv_shape(f.make(size, "float32")["shape"]) for f in families()
                   if f.target == "micro:conv2d" for size in range(f.lo, f.hi + 1)}
    assert len(validation) > 20 and len(calibration) > 500
    assert calibration.isdisjoint(validation), sorted(calibration & validation)[:10]
