"""Calibration fitting: curves, profiles, their files, and estimates made with them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from perfcast.calibrate import (
    PROFILE_SCHEMA,
    CalibratedTime,
    CalibrationPoint,
    Curve,
    Profile,
    ProfileError,
    apply_profile,
    check_compatible,
    fit_curve,
    fit_profile,
)
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.roofline import estimate_kernel
from perfcast.hardware.detect import detect_local
from perfcast.ir import Category
from perfcast.passes import Kernel

C, INTERP, T = Confidence.CALIBRATED, Confidence.INTERPOLATED, Confidence.THEORETICAL
MIB = 1 << 20
OVERHEAD = {1: 12e-6, 4: 20e-6}
GEMM_PEAK, GEMM_W0 = 100e9, 1e7  # gemm rate R * w / (w + w0), per thread count below 4


def gemm_rate(flops, threads: int = 1):
    return threads * GEMM_PEAK * flops / (flops + GEMM_W0)


def stream_rate(nbytes):
    """Bandwidth with cache steps: 80 GB/s in L2, 40 GB/s in the LLC, 15 GB/s from DRAM."""
    return np.where(nbytes < MIB, 80e9, np.where(nbytes < 32 * MIB, 40e9, 15e9))


def kernel(category: Category | None, flops, nbytes, dtype: str = "float32") -> Kernel:
    return Kernel("k", (), category, flops, nbytes, dtype, "m")


def synthetic_points(threads: tuple[int, ...] = (1, 4)) -> list[CalibrationPoint]:
    points = []
    for t in threads:
        ov = OVERHEAD[t]
        points += [CalibrationPoint("overhead", "float32", t, 0, 0, ov * f)
                   for f in (0.9, 1.0, 1.3)]
        for flops in np.logspace(5, 11, 25):
            points.append(CalibrationPoint("gemm", "float32", t, flops, flops / 50,
                                           ov + flops / gemm_rate(flops, t)))
        for nbytes in np.logspace(17, 30, 27, base=2):
            points.append(CalibrationPoint("elementwise", "float32", t, nbytes / 8, nbytes,
                                           ov + nbytes / float(stream_rate(nbytes))))
    return points


@pytest.fixture(scope="module")
def profile() -> Profile:
    return fit_profile(synthetic_points(), hardware_key="test-cpu-4c", fingerprint="abc123",
                       environment={"hardware": {"cpu_model": "test"}}, perfcast_version="0.1.0")


# --- curves ---------------------------------------------------------------------------


def test_fit_curve_recovers_a_known_curve():
    rng = np.random.default_rng(7)
    work = np.logspace(5, 11, 40)
    overhead = 15e-6
    noise = 1 + rng.uniform(-0.03, 0.03, work.size)  # bounded 3% multiplicative noise
    seconds = work / gemm_rate(work) * noise + overhead
    curve = fit_curve(work, seconds, overhead_s=overhead)
    probes = np.logspace(5.1, 10.9, 20)
    np.testing.assert_allclose(curve(probes), gemm_rate(probes), rtol=0.05)
    assert curve.n_points == 40
    assert 0 < curve.rel_rmse < 0.05
    assert curve(1.0) == pytest.approx(curve.rate[0], rel=1e-12)
    assert curve(1e15) == pytest.approx(curve.rate[-1], rel=1e-12)
    assert isinstance(curve(1e8), float)


def test_fit_curve_single_point_is_flat_and_floors_busy_time():
    flat = fit_curve([1e6], [1e-3])
    assert flat.work == (1e6,) and flat(1e3) == flat(1e9) == pytest.approx(1e9)
    floored = fit_curve([1e6], [1e-3], overhead_s=5e-3)  # overhead above the time measured
    assert floored(1e6) == pytest.approx(1e6 / (0.05 * 1e-3))


def test_curve_confidence_inside_near_far():
    curve = Curve((1e6, 1e8), (1e9, 2e9), 2, 0.0)
    assert [curve.confidence(w) for w in (1e6, 1e7, 1e8)] == [C, C, C]
    assert [curve.confidence(w) for w in (3e5, 3e8)] == [INTERP, INTERP]
    assert [curve.confidence(w) for w in (1e5, 1e9)] == [T, T]
    assert list(curve.confidence(np.array([1e7, 3e8, 1e9]))) == [C, INTERP, T]


def test_curve_dict_round_trip_and_validation():
    curve = Curve((1e6, 1e8), (1e9, 2e9), 2, 0.01)
    assert Curve.from_dict(json.loads(json.dumps(curve.to_dict()))) == curve
    with pytest.raises(ValueError, match="ascending"):
        Curve.from_dict({**curve.to_dict(), "work": [1e8, 1e6]})
    with pytest.raises(ValueError, match="> 0"):
        Curve.from_dict({**curve.to_dict(), "rate": [1e9, -1.0]})
    with pytest.raises(ValueError, match="2 work knots but 1 rates"):
        Curve.from_dict({**curve.to_dict(), "rate": [1e9]})
    with pytest.raises(ValueError, match="missing fields: rel_rmse"):
        Curve.from_dict({"work": [1.0], "rate": [1.0], "n_points": 1})


@pytest.mark.parametrize(("work", "seconds", "message"), [
    ([], [], "no samples"),
    ([1e6, 1e7], [1e-3], "2 values but seconds has 1"),
    ([1e6, 1e7], [1e-3, -1e-3], "seconds must be finite and > 0"),
    ([0.0, 1e7], [1e-3, 1e-2], "work must be finite and > 0"),
])
def test_fit_curve_bad_input(work, seconds, message):
    with pytest.raises(ValueError, match=message):
        fit_curve(work, seconds)


# --- profiles ---------------------------------------------------------------------------


def test_fit_profile_keys_and_overheads(profile):
    assert profile.schema == PROFILE_SCHEMA
    assert profile.overhead_s == pytest.approx(OVERHEAD)
    assert set(profile.compute) == {("gemm", "float32", 1), ("gemm", "float32", 4)}
    assert set(profile.memory) == {(c, "float32", t) for c in ("elementwise", "*")
                                   for t in (1, 4)}
    assert profile.threads_available() == [1, 4]
    elementwise = profile.memory[("elementwise", "float32", 1)]
    for nbytes in (256 << 10, 4 * MIB, 512 * MIB):  # mid-plateau sizes: exact
        assert elementwise(nbytes) == pytest.approx(float(stream_rate(nbytes)), rel=1e-9)


def test_calibrated_estimate_matches_hand_computation(profile):
    spec, model = apply_profile(detect_local(), profile, threads=1)
    assert model.overhead_s == pytest.approx(OVERHEAD[1])
    assert spec.memory_bandwidth == detect_local().memory_bandwidth

    gemm = kernel(Category.GEMM, 2e10, 8 * MIB)  # saturated region: fit ~ truth
    est = estimate_kernel(gemm, spec, model)
    hand = OVERHEAD[1] + max(2e10 / gemm_rate(2e10), 8 * MIB / 40e9)
    assert est.time_s == pytest.approx(hand, rel=0.01)
    assert est.confidence is C

    add = kernel(Category.ELEMENTWISE, 1e6, 12 * MIB)
    est = estimate_kernel(add, spec, model)
    hand = OVERHEAD[1] + max(1e6 / spec.peak_flops("fp32"), 12 * MIB / 40e9)
    assert est.time_s == pytest.approx(hand, rel=0.01)
    assert est.compute_s == 1e6 / spec.peak_flops("fp32") and est.bound == "memory"


def test_pooled_curve_and_uncalibrated_categories(profile):
    spec, model = apply_profile(detect_local(), profile, threads=1)
    norm = model.time(kernel(Category.NORM, 0, 200 * MIB), spec)  # no norm curve: pooled "*"
    assert 200 * MIB / norm.memory_s == pytest.approx(15e9)
    for category in (None, Category.COLLECTIVE):
        t = model.time(kernel(category, 1e9, 1e9), spec)  # the datasheet roofline
        assert (t.compute_s, t.memory_s, t.confidence) == (
            1e9 / spec.peak_flops("fp32"), 1e9 / spec.memory_bandwidth, T)
    conv = model.time(kernel(Category.CONV, 1e9, 1e6), spec)  # no conv curve at all
    assert conv.compute_s == 1e9 / spec.peak_flops("fp32") and conv.confidence is T


def test_vectorized_kernel_dims(profile):
    spec, model = apply_profile(detect_local(), profile, threads=1)
    flops = np.array([1e7, 1e9, 1e10])
    gemm = kernel(Category.GEMM, flops, flops / 50)
    t = model.time(gemm, spec)
    np.testing.assert_allclose(flops / t.compute_s, profile.compute[("gemm", "float32", 1)](flops))
    assert t.confidence is C
    est = estimate_kernel(gemm, spec, model)
    assert est.time_s.shape == (3,)
    far = model.time(kernel(Category.GEMM, np.array([1e9, 1e14]), np.array([1e6, 1e6])), spec)
    assert far.confidence is T  # the weakest over the array


def test_dtype_fallback_uses_float32_at_theoretical(profile):
    spec, model = apply_profile(detect_local(), profile, threads=1)
    if not spec.supports("bf16"):
        pytest.skip("this CPU lists no bf16 peak")
    t = model.time(kernel(Category.GEMM, 1e9, 1e6, "bfloat16"), spec)
    rate = profile.compute[("gemm", "float32", 1)](1e9)
    assert t.compute_s == pytest.approx(1e9 / rate)
    assert t.confidence is T


def test_thread_fallback_scales_and_lowers_confidence(profile):
    spec = detect_local()
    gemm, add = kernel(Category.GEMM, 1e9, 1e6), kernel(Category.ELEMENTWISE, 1e6, 4 * MIB)
    at_1 = CalibratedTime(profile, 1).time(gemm, spec)
    at_2 = CalibratedTime(profile, 2).time(gemm, spec)  # nearest measured: 1 thread
    at_8 = CalibratedTime(profile, 8).time(gemm, spec)  # nearest measured: 4 threads
    at_4 = CalibratedTime(profile, 4).time(gemm, spec)
    assert at_2.compute_s == pytest.approx(at_1.compute_s / 2)
    assert at_8.compute_s == pytest.approx(at_4.compute_s / 2)
    assert (at_1.confidence, at_2.confidence, at_8.confidence) == (C, INTERP, INTERP)
    mem = CalibratedTime(profile, 2).time(add, spec)
    assert mem.memory_s == CalibratedTime(profile, 1).time(add, spec).memory_s  # not scaled
    assert mem.confidence is INTERP
    same_spec, model = apply_profile(spec, profile, threads=3)  # nearest overhead: 4 threads
    assert model.overhead_s == pytest.approx(OVERHEAD[4])
    assert model.time(add, spec).overhead_s == pytest.approx(OVERHEAD[4])
    assert same_spec is spec  # the overhead belongs to the model, not to a rewritten spec


def test_foreign_profile_lowers_confidence(profile):
    spec = detect_local()
    gemm = kernel(Category.GEMM, 1e9, 1e6)
    assert CalibratedTime(profile, 1, foreign=True).time(gemm, spec).confidence is INTERP
    assert CalibratedTime(profile, 2, foreign=True).time(gemm, spec).confidence is T
    _, model = apply_profile(spec, profile, 1, foreign=True)
    assert model.time(gemm, spec).confidence is INTERP


def test_check_compatible(profile):
    assert check_compatible(profile, fingerprint="abc123", hardware_key="test-cpu-4c") == []
    assert check_compatible(profile, fingerprint=None, hardware_key=None) == []
    reasons = check_compatible(profile, fingerprint="fff", hardware_key="other-8c")
    assert len(reasons) == 2
    assert "other-8c" in reasons[0] and "fff" in reasons[1]


# --- files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_load_round_trip(profile, tmp_path, suffix):
    path = tmp_path / "sub" / f"profile{suffix}"
    profile.save(path)
    assert Profile.load(path) == profile
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_load_errors(profile, tmp_path):
    with pytest.raises(ProfileError, match="no such profile file"):
        Profile.load(tmp_path / "missing.json")
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**profile.to_dict(), "schema": PROFILE_SCHEMA + 1}))
    with pytest.raises(ProfileError, match=f"profile schema {PROFILE_SCHEMA + 1}, "
                                           f"this perfcast reads {PROFILE_SCHEMA}"):
        Profile.load(newer)
    good = tmp_path / "good.json"
    profile.save(good)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[: len(good.read_text()) // 2])
    with pytest.raises(ProfileError, match=r"truncated\.json: not valid JSON"):
        Profile.load(truncated)
    partial = tmp_path / "partial.yaml"
    partial.write_text(f"schema: {PROFILE_SCHEMA}\nhardware_key: x\n")
    with pytest.raises(ProfileError, match=r"partial\.yaml: profile is missing fields: finger"):
        Profile.load(partial)
    bad_key = tmp_path / "bad_key.json"
    bad_key.write_text(json.dumps({**profile.to_dict(), "compute": {"gemm-float32": {}}}))
    with pytest.raises(ProfileError, match="'gemm-float32' is not 'name/dtype/threads'"):
        Profile.load(bad_key)
    with pytest.raises(ProfileError, match=r"end in \.json, \.yaml or \.yml"):
        Profile.load(tmp_path / "profile.txt")


def test_interrupted_save_leaves_no_partial_file(profile, tmp_path, monkeypatch):
    existing = tmp_path / "existing.json"
    profile.save(existing)
    before = existing.read_text()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    other = Profile.from_dict({**profile.to_dict(), "hardware_key": "other"})
    with pytest.raises(OSError, match="disk full"):
        other.save(existing)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "new.json")
    assert existing.read_text() == before
    assert not (tmp_path / "new.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.json"]


# --- bad input ----------------------------------------------------------------------------


def test_fit_profile_bad_input():
    kw = {"hardware_key": "x", "fingerprint": "f", "environment": {}, "perfcast_version": "0"}
    with pytest.raises(ValueError, match="no calibration points"):
        fit_profile([], **kw)
    no_overhead = [CalibrationPoint("gemm", "float32", 2, 1e6, 1e4, 1e-3)]
    with pytest.raises(ValueError, match=r"no overhead points for threads \[2\]"):
        fit_profile(no_overhead, **kw)
    zero_flops = [CalibrationPoint("overhead", "float32", 1, 0, 0, 1e-5),
                  CalibrationPoint("gemm", "float32", 1, 0, 1e4, 1e-3)]
    with pytest.raises(ValueError, match="cannot fit gemm/float32/1 on flops"):
        fit_profile(zero_flops, **kw)


def test_calibration_point_bad_input():
    with pytest.raises(ValueError, match="unknown calibration category 'matmul'; allowed: gemm, "
                                         "conv, attention, elementwise, reduction, norm"):
        CalibrationPoint("matmul", "float32", 1, 1e6, 1e4, 1e-3)
    with pytest.raises(ValueError, match=r"seconds must be finite and > 0, got -0\.001"):
        CalibrationPoint("gemm", "float32", 1, 1e6, 1e4, -1e-3)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        CalibrationPoint("gemm", "float32", 0, 1e6, 1e4, 1e-3)
    with pytest.raises(ValueError, match="unknown dtype"):
        CalibrationPoint("gemm", "float33", 1, 1e6, 1e4, 1e-3)
    assert CalibrationPoint("gemm", "fp32", 1, 1e6, 1e4, 1e-3).dtype == "float32"
    with pytest.raises(ValueError, match="threads must be >= 1"):
        CalibratedTime(fit_profile(synthetic_points((1,)), hardware_key="x",
                                         fingerprint="f", environment={},
                                         perfcast_version="0"), 0)
