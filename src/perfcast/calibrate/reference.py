"""Reference timings: how fast this machine runs now, next to when it was calibrated.

On a shared machine the speed of the cores, caches and memory moves with the
neighbours' load. Here a calibration taken while the machine was slow over-predicted
nearly every validation model by 10-25% when validated in a faster hour, while scoring
well against the validation taken in the same slow hour. So calibration times two fixed
kernels (REFERENCE: a compute-bound GEMM and a DRAM-bound copy) at every thread count
when it starts and when it ends, and stores their mean in the profile; ``perfcast
validate models`` times them again and reports how far the machine has drifted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perfcast.bench.stats import StopRule

# name -> (micro suite target, parameters): a 384^3 GEMM (~1 ms, in cache) and a 64 MiB
# copy (past the last-level cache)
REFERENCE = {"gemm": ("micro:gemm", {"n": 384, "dtype": "float32"}),
             "copy": ("micro:memcpy", {"mib": 64})}
RULE = StopRule(target_rel_ci=0.02, min_samples=5, budget_s=0.3)
DRIFT_WARNING = 0.10  # drift above this share makes a validation warn

Reference = dict[int, dict[str, float]]  # threads -> reference kernel -> median seconds


def measure_reference(threads: Sequence[int], rule: StopRule = RULE) -> Reference:
    """Median seconds of each REFERENCE kernel at each thread count."""
    from perfcast.bench.benchmark import load_builtin_suites, targets
    from perfcast.bench.timer import measure_benchmark

    load_builtin_suites()
    registry = targets()
    return {t: {name: measure_benchmark(registry[target].first(), params, threads=t,
                                        rule=rule, name=f"reference {name}")[0].median_s
                for name, (target, params) in REFERENCE.items()}
            for t in threads}


def mean_reference(a: Reference, b: Reference) -> Reference:
    """Geometric mean of two timings of the same kernels (e.g. a calibration's start and
    end)."""
    return {t: {k: math.sqrt(v * b[t][k]) for k, v in kernels.items() if k in b.get(t, {})}
            for t, kernels in a.items()}


def drift(now: Reference, then: Reference) -> Reference:
    """``now / then - 1`` for every (threads, kernel) timed in both: +0.12 is a machine
    12% slower than when ``then`` was taken."""
    return {t: {k: v / then[t][k] - 1 for k, v in kernels.items() if k in then.get(t, {})}
            for t, kernels in now.items() if t in then}


def worst_drift(changes: Reference) -> float:
    """The largest absolute drift in ``changes`` (0.0 when empty)."""
    return max((abs(v) for kernels in changes.values() for v in kernels.values()), default=0.0)


def reference_to_dict(reference: Reference) -> dict[str, dict[str, float]]:
    """JSON-ready form (thread counts as strings)."""
    return {str(t): dict(sorted(kernels.items())) for t, kernels in sorted(reference.items())}


def reference_from_dict(d: Any) -> Reference:
    """Inverse of :func:`reference_to_dict`; ValueError names a bad entry."""
    if not isinstance(d, Mapping):
        raise ValueError("reference must be a mapping of threads to kernel timings")
    parsed: Reference = {}
    for t, kernels in d.items():
        if not str(t).isdigit() or int(t) < 1:
            raise ValueError(f"reference thread count {t!r} is not a positive integer")
        if not isinstance(kernels, Mapping):
            raise ValueError(f"reference at {t} threads must map kernels to seconds")
        parsed[int(t)] = {}
        for name, seconds in kernels.items():
            try:
                value = float(seconds)
            except (TypeError, ValueError):
                raise ValueError(f"reference {name!r} at {t} threads is not a number: "
                                 f"{seconds!r}") from None
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"reference {name!r} at {t} threads must be finite and "
                                 f"> 0, got {value}")
            parsed[int(t)][str(name)] = value
    return parsed
