"""perfcast.bench.measure: timing, batching, thread count, GC, bad arguments, CUDA paths."""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from perfcast.bench import MeasureError, Measurement, StopRule, measure
from perfcast.bench.timer import cuda_available

FAST = StopRule(min_samples=5, budget_s=0.05)


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_measures_a_known_duration() -> None:
    m = measure(busy, 0.002, rule=StopRule(min_samples=10, budget_s=0.2))
    assert isinstance(m, Measurement)
    assert m.number == 1
    assert 0.002 <= m.median_s < 0.0025
    lo, hi = m.ci95_s
    assert lo <= m.median_s <= hi
    assert len(m.samples) == m.n >= 10
    assert m.stop_reason in {"converged", "budget"}


def test_fast_calls_are_batched_per_sample() -> None:
    m = measure(lambda: None, rule=FAST)
    assert m.number > 1
    assert m.median_s < 5e-6


def test_noop_sample_costs_microseconds() -> None:
    # The speed target (< 5 us per sample) is printed by benchmarks/harness_vs_torch_timer.py;
    # this only guards against an order-of-magnitude slip on a shared machine.
    m = measure(lambda: None, number=1, rule=StopRule(min_samples=2000, budget_s=0.05))
    assert m.median_s < 5e-6
    assert m.elapsed_s / m.n < 5e-5


def test_quiet_target_stops_before_noisy_one() -> None:
    rng = np.random.default_rng(0)
    rule = StopRule(target_rel_ci=0.05, min_samples=10, budget_s=1.0)
    quiet = measure(busy, 2e-4, rule=rule, number=1)
    noisy = measure(lambda: busy(2e-4 * rng.uniform(0.2, 3.0)), rule=rule, number=1)
    assert quiet.stop_reason == "converged"
    assert quiet.n < noisy.n


def test_args_and_kwargs_are_passed() -> None:
    seen = []
    measure(lambda a, b=0: seen.append((a, b)), 1, b=2, rule=FAST)
    assert set(seen) == {(1, 2)}


def test_gc_is_disabled_while_timing_and_restored() -> None:
    states = []
    measure(lambda: states.append(gc.isenabled()), rule=FAST, number=1)
    assert not any(states)
    assert gc.isenabled()


def test_threads_are_set_recorded_and_restored() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    seen = []
    m = measure(lambda: seen.append(torch.get_num_threads()), threads=1, rule=FAST, number=1)
    assert set(seen) == {1} and m.threads == 1
    assert torch.get_num_threads() == before


def test_cold_cache_mode_evicts_between_samples() -> None:
    data = np.ones(1 << 16)
    warm = measure(data.sum, rule=StopRule(min_samples=20, budget_s=0.2), number=1)
    cold = measure(data.sum, rule=StopRule(min_samples=20, budget_s=0.2), cold_cache=True)
    assert cold.cold_cache and cold.number == 1
    assert cold.median_s > warm.median_s


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'cuda:N'"),
    ({"number": 0}, "number must be a positive integer"),
    ({"threads": -1}, "threads must be a positive integer"),
    ({"warmup_s": -1.0}, "warmup_s must be >= 0"),
    ({"cuda_graph": True}, "cuda_graph=True needs device='cuda'"),
])
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(MeasureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        measure(lambda: None, rule=FAST, **kwargs)


def test_not_callable() -> None:
    with pytest.raises(MeasureError, match="fn must be callable"):
        measure(42)  # type: ignore[arg-type]


def test_failing_callable_is_a_clear_error() -> None:
    def boom() -> None:
        raise RuntimeError("kaput")

    with pytest.raises(MeasureError, match="raised RuntimeError: kaput"):
        measure(boom, rule=FAST)


@pytest.mark.skipif(cuda_available(), reason="checks the no-CUDA message")
def test_cuda_without_gpu_is_refused() -> None:
    with pytest.raises(MeasureError, match="no CUDA device is available"):
        measure(lambda: None, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs CUDA")
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_cuda_gemm_is_timed_with_events(cuda_graph: bool) -> None:
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    m = measure(torch.mm, a, a, device="cuda", cuda_graph=cuda_graph,
                rule=StopRule(min_samples=20, budget_s=1.0))
    flops = 2 * 4096**3 / m.median_s
    assert 1e13 < flops < 3e15  # tens of TFLOP/s to a few PFLOP/s on any current GPU
