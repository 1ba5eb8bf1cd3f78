"""Measure real executions: timers, statistics, benchmarks as code, suites, runs.

``perfcast.bench.measure(fn, *args, device="cpu")`` times any callable; benchmark
classes (:class:`Benchmark`, :func:`register`) are run by :func:`run_cases` and kept in
the results store (:mod:`perfcast.store`). A benchmark's ``work()`` returns a
:class:`~perfcast.ir.cost.Cost` (FLOPs and bytes), the record the estimator uses too;
``Work`` is its old name, kept for benchmark files written against 0.1 (deprecated).
"""

from perfcast.bench.benchmark import Benchmark, BenchmarkError, register
from perfcast.bench.stats import Comparison, Stats, StopRule, Verdict, compare
from perfcast.bench.timer import MeasureError, Measurement, measure
from perfcast.ir.cost import Cost

Work = Cost  # deprecated name of Cost in benchmark files
__all__ = [
    "Benchmark",
    "BenchmarkError",
    "Comparison",
    "Cost",
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
