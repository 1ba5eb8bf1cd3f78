"""The ``Estimate`` result: totals, per-kernel and per-layer views, JSON, pandas, HTML."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.roofline import KernelEstimate
from perfcast.ir.cost import Cost
from perfcast.ir.tensor import Dim
from perfcast.units import si

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Totals:
    flops: Dim
    flops_by_category: dict[str, Dim]  # counted on the ops before fusion
    bytes: Dim
    time_s: Dim
    params: int
    weights_bytes: Dim
    activations_peak_bytes: Dim
    energy_j: Dim


@dataclass(frozen=True)
class Estimate:
    """How fast a model runs on one device, and why (kernel by kernel)."""

    model: str
    hardware: str
    dtype: str
    target: str
    totals: Totals
    kernels: list[KernelEstimate]
    energy_j: list[Dim]  # per kernel, aligned with ``kernels``
    unsupported_ops: dict[str, int]
    confidence: Confidence
    notes: list[str] = field(default_factory=list)

    # -- views ------------------------------------------------------------------------
    def top_kernels(self, n: int = 10) -> list[KernelEstimate]:
        """The ``n`` kernels that take the most time."""
        return sorted(self.kernels, key=lambda k: float(np.max(k.time_s)), reverse=True)[:n]

    def layers(self) -> list[dict[str, Any]]:
        """Time, FLOPs and bytes summed per layer (module path up to the block index)."""
        acc: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"time_s": 0.0, "flops": 0, "bytes": 0, "kernels": 0})
        for k in self.kernels:
            row = acc[layer_of(k.kernel.module)]
            row["time_s"] = row["time_s"] + k.time_s
            row["flops"] = row["flops"] + k.kernel.flops
            row["bytes"] = row["bytes"] + k.kernel.bytes
            row["kernels"] += 1
        return [{"layer": name, **row} for name, row in acc.items()]

    # -- export -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The documented JSON object (see docs/json-schema.md); arrays become lists."""
        t = self.totals
        out = {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "hardware": self.hardware,
            "dtype": self.dtype,
            "target": self.target,
            "totals": {
                "flops": t.flops,
                "flops_by_category": dict(t.flops_by_category),
                "bytes": t.bytes,
                "time_s": t.time_s,
                "params": t.params,
                "memory_bytes": {"weights": t.weights_bytes,
                                 "activations_peak": t.activations_peak_bytes},
                "energy_j": t.energy_j,
            },
            "kernels": [
                {
                    "name": k.kernel.name,
                    "op": k.kernel.op,
                    "category": str(k.kernel.category) if k.kernel.category else "unsupported",
                    "module": k.kernel.module,
                    "layer": layer_of(k.kernel.module),
                    "flops": k.kernel.flops,
                    "bytes": k.kernel.bytes,
                    "time_s": k.time_s,
                    "bound": k.bound,
                    "confidence": str(k.confidence),
                    "intensity": Cost(k.kernel.flops, k.kernel.bytes).intensity,
                    "achieved_flops_per_s": k.kernel.flops / k.time_s,
                    "peak_flops": k.peak_flops,
                    "bandwidth_bytes_per_s": k.bandwidth,
                    "energy_j": e,
                }
                for k, e in zip(self.kernels, self.energy_j, strict=True)
            ],
            "layers": self.layers(),
            "unsupported_ops": dict(self.unsupported_ops),
            "confidence": str(self.confidence),
            "notes": list(self.notes),
        }
        return _jsonable(out)

    def to_pandas(self):
        """One row per kernel with its time, work, intensity and bound."""
        import pandas as pd

        rows = [{
            "name": k.kernel.name, "op": k.kernel.op,
            "category": str(k.kernel.category) if k.kernel.category else "unsupported",
            "module": k.kernel.module, "flops": k.kernel.flops, "bytes": k.kernel.bytes,
            "intensity": Cost(k.kernel.flops, k.kernel.bytes).intensity,
            "time_s": k.time_s, "bound": k.bound, "confidence": str(k.confidence),
            "energy_j": e,
        } for k, e in zip(self.kernels, self.energy_j, strict=True)]
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        t = self.totals
        head = (f"<b>{html.escape(self.model)}</b> on <b>{html.escape(self.hardware)}</b> "
                f"({self.dtype}, {self.target}) — time {_fmt(t.time_s, 's')}, "
                f"{_fmt(t.flops, 'FLOP')}, {_fmt(t.bytes, 'B')}, confidence {self.confidence}")
        rows = "".join(
            f"<tr><td>{html.escape(k.kernel.name)}</td><td>{_fmt(k.time_s, 's')}</td>"
            f"<td>{_fmt(k.kernel.flops, 'FLOP')}</td><td>{_fmt(k.kernel.bytes, 'B')}</td>"
            f"<td>{k.bound}</td></tr>" for k in self.top_kernels(10))
        return (f"<div><p>{head}</p><table><tr><th>kernel</th><th>time</th><th>FLOPs</th>"
                f"<th>bytes</th><th>bound</th></tr>{rows}</table></div>")


def layer_of(module: str) -> str:
    """Module path up to its first numeric part (``model.layers.3``), else the path."""
    parts = module.split(".") if module else ["(top)"]
    for k, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[: k + 1])
    return ".".join(parts[:3])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt(value: Dim, unit: str) -> str:
    if isinstance(value, np.ndarray):
        return f"{_fmt(value.min(), unit)}..{_fmt(value.max(), unit)}"
    return si(float(value), unit)
