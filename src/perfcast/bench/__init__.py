"""Measure real executions: timers, statistics, benchmarks as code, suites, runs.

``perfcast.bench.measure(fn, *args, device="cpu")`` times any callable; benchmark
classes (:class:`Benchmark`, :func:`register`) are run by :func:`run_cases` and kept in
the results store (:mod:`perfcast.store`).
"""

from perfcast.bench.benchmark import Benchmark, BenchmarkError, Work, register
from perfcast.bench.stats import Comparison, Stats, StopRule, Verdict, compare
from perfcast.bench.timer import MeasureError, Measurement, measure

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "Comparison",
    "MeasureError",
    "Measurement",
    "Stats",
    "StopRule",
    "Verdict",
    "Work",
    "compare",
    "measure",
    "register",
]
