"""Benchmark registry, selection, NVTX names and pair expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfcast.bench import Benchmark, BenchmarkError, benchmark, register
from perfcast.bench.benchmark import load_path, parse_param_filters, select
from perfcast.bench.expectations import (
    Expectation,
    ExpectationBook,
    ExpectationError,
    expectation_from,
)
from perfcast.bench.nvtx import nvtx_range, range_name
from perfcast.bench.stats import compare

DEMO = Path(__file__).parent / "data" / "bench_demo.py"


@pytest.fixture(autouse=True)
def _registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy of the registry, loaded with the demo benchmarks."""
    monkeypatch.setattr(benchmark, "_REGISTRY", dict(benchmark._REGISTRY))
    load_path(DEMO)


def test_cases_are_the_grid_product_with_stable_ids() -> None:
    cases = select(["demo:sum"])
    assert [c.id for c in cases] == ["demo:sum[n=100]", "demo:sum[n=1000]"]
    assert select(["demo"], tags=["pair"])[0].target.is_pair


def test_globs_and_param_filters() -> None:
    assert {c.target.name for c in select(["demo:*u*"])} == {"demo:sum", "demo:needs-cuda"}
    assert [c.params for c in select(["demo:sum"], params={"n": ["1000"]})] == [{"n": 1000}]
    assert parse_param_filters(["n=1,2", "dtype=float32"]) == {"n": ["1", "2"],
                                                               "dtype": ["float32"]}


@pytest.mark.parametrize(("attrs", "message"), [
    ({"suite": "Bad Suite", "name": "x"}, "must be a lowercase name"),
    ({"suite": "t", "name": "x", "role": "fast"}, "role must be one of baseline, optimized"),
    ({"suite": "t", "name": "x", "device": "tpu"}, "device must be one of cpu, cuda"),
    ({"suite": "t", "name": "x", "params": {"n": []}}, "must be a non-empty list"),
    ({"suite": "t", "name": "x", "params": {"n": "123"}}, "must be a non-empty list"),
])
def test_bad_definitions(attrs: dict, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        register(type("Bad", (Benchmark,), attrs))


def test_pair_sides_must_share_the_grid() -> None:
    register(type("Base", (Benchmark,), {"suite": "t", "name": "pair", "role": "baseline",
                                         "params": {"n": [1]}}))
    with pytest.raises(BenchmarkError, match="share one params grid"):
        register(type("Opt", (Benchmark,), {"suite": "t", "name": "pair", "role": "optimized",
                                            "params": {"n": [2]}}))
    with pytest.raises(BenchmarkError, match="pair t:pair has no optimized benchmark"):
        select(["t:pair"])
    with pytest.raises(BenchmarkError, match="either one benchmark or a baseline/optimized"):
        register(type("Single", (Benchmark,), {"suite": "t", "name": "pair",
                                               "params": {"n": [1]}}))


def test_user_file_errors_are_short(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import does_not_exist\n")
    with pytest.raises(BenchmarkError, match=r"importing .*bad\.py failed: ModuleNotFoundError"):
        load_path(bad)
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_path(tmp_path / "missing.py")


def test_nvtx_names_and_noop_without_cuda() -> None:
    assert range_name("micro:gemm[n=128]", "timed") == "perfcast/micro:gemm[n=128]/timed"
    with pytest.raises(ValueError, match="unknown NVTX phase"):
        range_name("x", "lunch")
    with nvtx_range("x", "setup"):
        pass


def _comparison(speedup: float):
    base = [1.0 + 0.001 * (i % 7) for i in range(50)]
    return compare(base, [x / speedup for x in base])


def test_expectation_judged_on_the_confidence_interval() -> None:
    fast = _comparison(2.0)
    assert Expectation(min_speedup=1.8).judge(fast)[0]
    met, why = Expectation(min_speedup=2.5).judge(fast)
    assert not met and "below the expected 2.50x" in why
    slow = _comparison(0.8)
    assert not Expectation(max_regression=0.1).judge(slow)[0]
    assert Expectation(max_regression=0.3).judge(slow)[0]


def test_expectation_update_has_a_margin() -> None:
    exp = expectation_from(_comparison(2.0), "run1")
    assert exp.min_speedup == pytest.approx(1.49, abs=0.02)
    assert "run1" in exp.measured
    same = expectation_from(_comparison(1.0), "run1")
    assert same.min_speedup is None and same.max_regression == pytest.approx(0.05, abs=0.01)


def test_expectation_book_round_trip_and_errors(tmp_path: Path) -> None:
    book = ExpectationBook.load(tmp_path, "box-2c")
    assert book.entries == {}
    book.entries["a:b[n=1]"] = Expectation(min_speedup=1.5, measured="1.7x")
    book.save()
    again = ExpectationBook.load(tmp_path, "box-2c")
    assert again.get("a:b[n=1]") == Expectation(min_speedup=1.5, measured="1.7x")
    (tmp_path / "bad.yaml").write_text("expectations:\n  a:b: {min_speedup: fast}\n")
    with pytest.raises(ExpectationError, match="min_speedup must be a number"):
        ExpectationBook.load(tmp_path, "bad")
    (tmp_path / "odd.yaml").write_text("expectations:\n  a:b: {speedup: 2}\n")
    with pytest.raises(ExpectationError, match="unknown keys"):
        ExpectationBook.load(tmp_path, "odd")
