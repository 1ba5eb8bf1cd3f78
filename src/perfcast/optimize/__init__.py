"""Auto-optimization of a PyTorch model: enumerate candidates, rank them with the
estimator, build, check against eager and measure them, return the fastest valid one.

This package is callable, so ``perfcast.optimize(...)`` is :func:`optimize`:

>>> report = perfcast.optimize(model, (x,), budget_s=120)   # doctest: +SKIP
>>> report.chosen, report.speedup, report.forward()          # doctest: +SKIP
"""

import sys
import types
from typing import Any

from perfcast.optimize.candidates import CANDIDATES, Candidate, ModelFacts, Setting
from perfcast.optimize.check import TOLERANCES
from perfcast.optimize.result import CandidateResult, OptimizeReport
from perfcast.optimize.run import OptimizeError, optimize

__all__ = [
    "CANDIDATES",
    "TOLERANCES",
    "Candidate",
    "CandidateResult",
    "ModelFacts",
    "OptimizeError",
    "OptimizeReport",
    "Setting",
    "optimize",
]


class _CallableModule(types.ModuleType):
    """``perfcast.optimize`` is both this package and the function: calling it optimizes."""

    def __call__(self, model: Any, example_inputs: Any, **options: Any) -> OptimizeReport:
        return optimize(model, example_inputs, **options)


sys.modules[__name__].__class__ = _CallableModule
