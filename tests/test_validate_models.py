"""validate_models: rounds over all cases, the fastest round counts, spread reported."""

from __future__ import annotations

import itertools

import pytest
import torch

from perfcast.validate import models as models_module
from perfcast.validate.models import render_markdown, validate_models


def _linear(batch: int) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(0)
    return torch.nn.Linear(16, 8).eval(), (torch.randn(batch, 16),)


def test_rounds_interleave_cases_and_keep_the_fastest(monkeypatch) -> None:
    order: list[tuple[int, int]] = []
    timings = itertools.cycle([1.0e-3, 2.0e-3, 0.8e-3, 2.1e-3, 0.9e-3, 2.0e-3])

    def fake_time(case, rule) -> float:
        order.append((case.batch, case.threads))
        return next(timings)

    monkeypatch.setattr(models_module, "_time", fake_time)
    result = validate_models({"lin": _linear}, batches=(1, 4), threads=(1,), profile=None,
                             rounds=3)
    assert order == [(1, 1), (4, 1)] * 3  # one pass over every case per round
    small, big = result.results
    assert small.measured_s == pytest.approx(0.8e-3)
    assert small.spread == pytest.approx(1.0 / 0.8 - 1)
    assert big.measured_s == pytest.approx(2.0e-3)
    assert big.spread == pytest.approx(0.05)
    d = result.to_dict()
    assert d["noise"] == {"rounds": 3, "median_spread": pytest.approx((0.25 + 0.05) / 2),
                          "over_10pct": 0.5}
    assert "fastest of 3 rounds" in render_markdown(result)


def test_one_round_times_each_case_once_for_real() -> None:
    result = validate_models({"lin": _linear}, batches=(2,), threads=(1,), profile=None,
                             rounds=1)
    [r] = result.results
    assert r.spread == 0.0 and r.measured_s > 0
    assert result.to_dict()["noise"]["median_spread"] is None


def test_rounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        validate_models({"lin": _linear}, profile=None, rounds=0)
