"""Does a candidate compute what eager computes? Output flattening, errors, tolerances.

The error of one output is ``max|candidate - reference|`` (``max_abs``) and that divided by
``max|reference|`` (``max_rel``): relative to the output's largest magnitude, so values
near zero (where elementwise relative errors explode) do not decide. A candidate passes
when ``max_rel`` of every output is within the tolerance of the precision it computes in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Largest max|got - want| / max|want| accepted, by the precision the candidate computes in.
# float32: reordered sums (fusion, other GEMM kernels) stay ~1e-6..1e-5 here; 1e-4 leaves
# room for deep models. float16 (unit roundoff 4.9e-4) and bfloat16 (3.9e-3) accumulate
# over layers: 1e-2 and 2e-2. int8 weights (1/127 steps per row or tensor) plus quantized
# activations: 5e-2. A candidate in a lower precision than the model is held to the looser
# of the two tolerances.
TOLERANCES: dict[str, float] = {
    "float64": 1e-7,
    "float32": 1e-4,
    "float16": 1e-2,
    "bfloat16": 2e-2,
    "int8": 5e-2,
}


class OutputMismatch(ValueError):
    """Candidate outputs that cannot be compared with the reference (count, shape)."""


@dataclass(frozen=True)
class NumericError:
    """The largest error over all outputs, and whether it is within ``tolerance``."""

    max_abs: float
    max_rel: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_rel <= self.tolerance

    def describe(self) -> str:
        return (f"max error {self.max_rel:.3g} of the largest reference value (abs "
                f"{self.max_abs:.3g}) {'<=' if self.ok else 'exceeds'} tolerance "
                f"{self.tolerance:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs": _finite_or_none(self.max_abs), "max_rel": _finite_or_none(self.max_rel),
                "tolerance": self.tolerance, "ok": self.ok}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def tolerance_for(precision: str | None, model_dtype: str,
                  overrides: Mapping[str, float] | None = None) -> float:
    """The tolerance of a candidate computing in ``precision`` (None: ``model_dtype``)."""
    table = {**TOLERANCES, **(overrides or {})}
    names = [n for n in (precision, model_dtype) if n is not None]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"no tolerance for dtype {unknown[0]!r}; known: {', '.join(table)}")
    return max(table[n] for n in names)


def flatten_outputs(out: Any) -> list[np.ndarray]:
    """The arrays of a model output on the host, in order (floating tensors as float64).

    A result holding torch tensors is flattened as the runtime flattens it
    (:func:`perfcast.frontends.outputs.flatten_tensors`: each tensor once, the key/value
    tensors of a ``transformers`` Cache included); NumPy arrays and numbers (in tuples,
    lists and dicts) as they nest.
    """
    from perfcast.frontends.outputs import flatten_tensors

    tensors = flatten_tensors(out)
    if tensors:
        return [_host(t) for t in tensors]
    return _flatten_arrays(out)


def _host(tensor: Any) -> np.ndarray:
    t = tensor.detach().cpu()
    return t.double().numpy() if t.is_floating_point() else t.numpy()


def _flatten_arrays(out: Any) -> list[np.ndarray]:
    if isinstance(out, np.ndarray | np.generic | int | float | bool):
        return [np.asarray(out)]
    if isinstance(out, Mapping):
        return [a for v in out.values() for a in _flatten_arrays(v)]
    if isinstance(out, list | tuple):
        return [a for v in out for a in _flatten_arrays(v)]
    if out is None:
        return []
    raise OutputMismatch(f"cannot compare an output of type {type(out).__name__}")


def compare_outputs(got: Any, reference: list[np.ndarray], tolerance: float) -> NumericError:
    """Error of ``got`` against the flattened ``reference`` outputs; OutputMismatch when the
    number or shapes of the outputs differ."""
    arrays = flatten_outputs(got)
    if len(arrays) != len(reference):
        raise OutputMismatch(f"{len(arrays)} output tensor(s), the reference has "
                             f"{len(reference)}")
    max_abs = max_rel = 0.0
    for i, (a, r) in enumerate(zip(arrays, reference, strict=True)):
        if a.shape != r.shape:
            raise OutputMismatch(f"output {i} has shape {a.shape}, the reference {r.shape}")
        a64, r64 = a.astype(np.float64), r.astype(np.float64)
        if not np.isfinite(a64[np.isfinite(r64)]).all():
            return NumericError(math.inf, math.inf, tolerance)
        diff = float(np.max(np.abs(a64 - r64), initial=0.0, where=np.isfinite(r64)))
        scale = float(np.max(np.abs(r64), initial=0.0, where=np.isfinite(r64)))
        rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
        max_abs, max_rel = max(max_abs, diff), max(max_rel, rel)
    return NumericError(max_abs, max_rel, tolerance)
