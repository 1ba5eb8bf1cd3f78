"""perfcast: predict, measure and improve the performance of deep-learning models."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def analyze(model: Any, example_inputs: Any, *, hardware: str | Any = "h100-sxm",
            dtype: str | None = None, target: str = "eager", name: str | None = None) -> Any:
    """Estimate how fast ``model`` runs on ``hardware``: see :func:`perfcast.estimate.analyze`."""
    from perfcast.estimate.analyze import analyze_model

    return analyze_model(model, example_inputs, hardware=hardware, dtype=dtype, target=target,
                         name=name)


def __getattr__(name: str) -> Any:
    """``perfcast.optimize(model, example_inputs)``: the subpackage, imported on first use,
    is callable (see :mod:`perfcast.optimize`)."""
    if name == "optimize":
        import importlib

        return importlib.import_module("perfcast.optimize")
    raise AttributeError(f"module 'perfcast' has no attribute {name!r}")


__all__ = ["__version__", "analyze", "optimize"]
