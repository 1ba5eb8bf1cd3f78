"""Reference timings: drift arithmetic, the profile field, and validation reporting it."""

from __future__ import annotations

import itertools

import pytest

from perfcast.bench.stats import StopRule
from perfcast.calibrate import Profile, ProfileError
from perfcast.calibrate.reference import (
    REFERENCE,
    drift,
    mean_reference,
    measure_reference,
    reference_from_dict,
    reference_to_dict,
    worst_drift,
)
from perfcast.validate import models as models_module
from perfcast.validate.models import render_markdown, validate_models


def test_mean_drift_and_worst_drift_by_hand():
    start = {1: {"gemm": 1e-3, "copy": 4e-3}, 2: {"gemm": 0.5e-3}}
    end = {1: {"gemm": 4e-3, "copy": 4e-3}, 2: {"gemm": 0.5e-3}}
    assert mean_reference(start, end) == {1: {"gemm": pytest.approx(2e-3),
                                              "copy": pytest.approx(4e-3)},
                                          2: {"gemm": pytest.approx(0.5e-3)}}
    now = {1: {"gemm": 2.2e-3, "copy": 3.6e-3}, 4: {"gemm": 1e-4}}  # 4 threads: not in then
    change = drift(now, mean_reference(start, end))
    assert change == {1: {"gemm": pytest.approx(0.10), "copy": pytest.approx(-0.10)}}
    assert worst_drift(change) == pytest.approx(0.10)
    assert worst_drift({}) == 0.0


def test_reference_round_trips_and_refuses_bad_entries():
    ref = {1: {"gemm": 1e-3, "copy": 5e-3}, 2: {"gemm": 6e-4}}
    assert reference_from_dict(reference_to_dict(ref)) == ref
    for bad, message in (([1, 2], "must be a mapping"),
                         ({"one": {}}, "thread count 'one' is not a positive integer"),
                         ({"1": 3.0}, "at 1 threads must map kernels to seconds"),
                         ({"1": {"gemm": "fast"}}, "'gemm' at 1 threads is not a number"),
                         ({"1": {"gemm": -1.0}}, "'gemm' at 1 threads must be finite and > 0")):
        with pytest.raises(ValueError, match=message):
            reference_from_dict(bad)


def test_profile_keeps_its_reference_and_older_profiles_load_without_one():
    profile = Profile(3, "box", "f", {}, "0", "2026-01-01T00:00:00+00:00", {1: 5e-6}, {}, {},
                      reference={1: {"gemm": 1e-3, "copy": 5e-3}})
    data = profile.to_dict()
    assert Profile.from_dict(data).reference == profile.reference
    del data["reference"]
    assert Profile.from_dict(data).reference == {}
    data["reference"] = {"1": {"copy": 0}}
    with pytest.raises(ProfileError, match="profile reference 'copy' at 1 threads must be"):
        Profile.from_dict(data)


def test_measure_reference_times_every_kernel_at_every_thread_count():
    timed = measure_reference([1], rule=StopRule(target_rel_ci=0.5, min_samples=3,
                                                 budget_s=0.05))
    assert set(timed) == {1} and set(timed[1]) == set(REFERENCE)
    assert all(0 < s < 1 for s in timed[1].values())


def _linear(batch: int):
    import torch

    return torch.nn.Linear(16, 16).eval(), (torch.randn(batch, 16),)


def test_validation_reports_the_drift_since_calibration(monkeypatch):
    """Timed 20% slower than at calibration: the drift is reported and the Markdown warns."""
    timings = itertools.cycle([{1: {"gemm": 1.1e-3, "copy": 5e-3}},
                               {1: {"gemm": 1.3091e-3, "copy": 5e-3}}])
    monkeypatch.setattr(models_module, "measure_reference", lambda threads: next(timings))
    monkeypatch.setattr(models_module, "_time", lambda case, rule: 1e-3)
    calibrated = Profile(3, "box", "f", {}, "0", "2026-01-01T00:00:00+00:00", {1: 5e-6}, {}, {},
                         reference={1: {"gemm": 1e-3, "copy": 5e-3}})
    result = validate_models({"lin": _linear}, batches=(1,), threads=(1,), profile=calibrated,
                             rounds=1)
    machine = result.to_dict()["machine"]
    assert machine["drift"]["1"]["gemm"] == pytest.approx(0.2, abs=1e-3)  # sqrt(1.1 * 1.3091)
    assert machine["drift"]["1"]["copy"] == pytest.approx(0.0)
    assert machine["worst_drift"] == pytest.approx(0.2, abs=1e-3)
    text = render_markdown(result)
    assert "1 thread(s) copy +0%, gemm +20%" in text and "**warning**" in text
    none = validate_models({"lin": _linear}, batches=(1,), threads=(1,), profile=None,
                           rounds=1)
    assert none.to_dict()["machine"]["drift"] is None
