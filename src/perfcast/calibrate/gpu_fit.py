"""Fit GPU kernel forms (:mod:`perfcast.estimate.gpu_forms`) to measured latencies.

Per (form, key): the form's few parameters by robust least squares on log(predicted /
measured) within physical bounds, then the smooth correction grid on what is left.
Shapes can be split into a fit part and a held-out part by a hash of the shape, so
accuracy is reported on shapes the fit never saw.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from perfcast.estimate.config_curves import fit_config_curves
from perfcast.estimate.correction_grid import fit_grid
from perfcast.estimate.gpu_forms import FORMS, DeviceFigures
from perfcast.estimate.gpu_profile import KernelFit, element_bytes

KNOTS = {"gemm": 12, "context_attention": 8, "generation_attention": 6, "moe": 7,
         "collective": 12}
DEFAULT_KNOTS = 10
MIN_POINTS = 8
# forms refined per measured configuration: (configuration dimensions, along)
PER_CONFIGURATION = {"moe": (("hidden", "inter_local", "topk", "experts", "ep"), "tokens")}
WINDOWED = "|window"  # key suffix of sliding-window attention fits


@dataclass
class Samples:
    """Measured latencies of one (form, key): dimensions (arrays) and seconds."""

    form: str
    key: str
    dims: dict[str, np.ndarray | str]
    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.seconds)

    def subset(self, mask: np.ndarray) -> Samples:
        dims = {k: v if isinstance(v, str) else v[mask] for k, v in self.dims.items()}
        return Samples(self.form, self.key, dims, self.seconds[mask])

    def held_out(self, share: float = 0.3) -> np.ndarray:
        """True for the ``share`` of shapes chosen by a hash of the shape (stable)."""
        arrays = [v for v in self.dims.values() if not isinstance(v, str)]
        rows = zip(*(a.tolist() for a in arrays), strict=True)
        hashes = np.array([zlib.crc32(repr((self.key, *r)).encode()) % 1000 for r in rows])
        return hashes < share * 1000


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype=float)


_SHAPE_COLUMNS = {
    "context_attention_perf": ["attn_dtype", "kv_cache_dtype", "batch_size", "isl", "num_heads",
                               "num_key_value_heads", "head_dim", "window_size"],
    "generation_attention_perf": ["kv_cache_dtype", "batch_size", "isl", "step", "num_heads",
                                  "num_key_value_heads", "head_dim", "window_size"],
}


def fastest_backend(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """One row per shape: the fastest of the kernel backends measured for it (an engine
    table may time one shape with several attention backends, e.g. FlashAttention and
    FlashInfer; a deployment picks its fastest)."""
    columns = _SHAPE_COLUMNS.get(table)
    if columns is None or "kernel_source" not in df or df["kernel_source"].nunique() < 2:
        return df
    return df.loc[df.groupby(columns, dropna=False)["latency_s"].idxmin()]


def samples_from(table: str, df: pd.DataFrame) -> Iterator[Samples]:
    """Group one measurement table into samples per (form, key)."""
    df = fastest_backend(table, df)
    if table == "gemm_perf":
        for dtype, g in df.groupby("gemm_dtype"):
            yield Samples("gemm", str(dtype), {c: _col(g, c) for c in "mnk"},
                          g["latency_s"].to_numpy())
    elif table in ("context_attention_perf", "generation_attention_perf"):
        # sliding-window kernels are often another implementation: fitted on their own
        context = table.startswith("context")
        if context:
            df = df[df["kv_cache_dtype"] == df["attn_dtype"]]
        windowed = np.where(df["window_size"].to_numpy() > 0, WINDOWED, "")
        dtype_column = "attn_dtype" if context else "kv_cache_dtype"
        for (dtype, window), g in df.groupby([df[dtype_column], windowed]):
            yield Samples("context_attention" if context else "generation_attention",
                          f"{dtype}{window}", _attention_dims(g, "isl" if context else "context"),
                          g["latency_s"].to_numpy())
    elif table == "moe_perf":
        if "kernel_source" in df:
            df = df[~df["kernel_source"].astype(str).str.contains("nongated")]
        for (dtype, dist), g in df.groupby(["moe_dtype", "distribution"]):
            dims = {"tokens": _col(g, "num_tokens"), "hidden": _col(g, "hidden_size"),
                    "inter_local": _col(g, "inter_size") / _col(g, "moe_tp_size"),
                    "topk": _col(g, "topk"), "experts": _col(g, "num_experts"),
                    "ep": _col(g, "moe_ep_size")}
            yield Samples("moe", f"{dtype}|{dist}", dims, g["latency_s"].to_numpy())
    elif table in ("context_mla_perf", "generation_mla_perf"):
        df = df[df["num_heads"] >= df["tp_size"]]
        form = "mla_context" if table.startswith("context") else "mla_generation"
        for dtype, g in df.groupby("kv_cache_dtype"):
            dims = {"batch": _col(g, "batch_size"), "heads": _col(g, "num_heads")
                    / _col(g, "tp_size")}
            if form == "mla_context":
                dims["isl"] = _col(g, "isl")
            else:
                dims["context"] = _col(g, "isl") + _col(g, "step")
            yield Samples(form, str(dtype), dims, g["latency_s"].to_numpy())
    elif table == "nccl_perf":
        for (op, dtype), g in df.groupby(["op_name", "nccl_dtype"]):
            if op == "all_reduce" and dtype != "half":
                continue  # int8 all-reduce is not what engines run
            size = 1.0 if dtype == "int8" else 2.0
            yield Samples("collective", f"{op}|nccl", {
                "bytes": _col(g, "message_size") * size, "gpus": _col(g, "num_gpus"),
                "op": str(op)}, g["latency_s"].to_numpy())
    elif table == "custom_allreduce_perf":
        if "backend" in df and df["backend"].astype(str).str.contains("graph").any():
            df = df[df["backend"].astype(str).str.contains("graph")]  # engines use CUDA graphs
        yield Samples("collective", "all_reduce|engine", {
            "bytes": _col(df, "message_size") * 2.0, "gpus": _col(df, "num_gpus"),
            "op": "all_reduce"}, df["latency_s"].to_numpy())


def _attention_dims(g: pd.DataFrame, length: str) -> dict[str, np.ndarray]:
    dims = {"batch": _col(g, "batch_size"), "heads": _col(g, "num_heads"),
            "kv_heads": _col(g, "num_key_value_heads"), "head_dim": _col(g, "head_dim"),
            "window": _col(g, "window_size")}
    if length == "isl":
        dims["isl"] = _col(g, "isl")
    else:
        dims["context"] = _col(g, "isl") + _col(g, "step")
    return dims


def merge(samples: list[Samples]) -> list[Samples]:
    """One sample set per (form, key) (fp8 and int8 NCCL tables share a key)."""
    out: dict[tuple[str, str], Samples] = {}
    for s in samples:
        have = out.get((s.form, s.key))
        if have is None:
            out[(s.form, s.key)] = s
            continue
        dims = {k: v if isinstance(v, str) else np.concatenate([v, s.dims[k]])  # type: ignore[list-item]
                for k, v in have.dims.items()}
        out[(s.form, s.key)] = Samples(s.form, s.key, dims,
                                       np.concatenate([have.seconds, s.seconds]))
    return list(out.values())


def fit_samples(samples: Samples, figures: DeviceFigures) -> KernelFit:
    """Fit ``samples`` (all of them: split before calling to hold shapes out)."""
    form = FORMS[samples.form]
    fit_key = samples.key
    y = samples.seconds
    nbytes = element_bytes(samples.form, fit_key)
    names = [p.name for p in form.params]
    lower = np.log([p.lower for p in form.params])
    upper = np.log([p.upper for p in form.params])
    start = np.clip(np.log([p.initial for p in form.params]), lower + 1e-9, upper - 1e-9)

    def residual(theta: np.ndarray) -> np.ndarray:
        values = dict(zip(names, np.exp(theta), strict=True))
        return np.log(form.seconds(values, samples.dims, figures, nbytes) / y)

    result = least_squares(residual, start, bounds=(lower, upper), loss="soft_l1",
                           f_scale=0.1, max_nfev=400)
    params = {n: float(v) for n, v in zip(names, np.exp(result.x), strict=True)}
    base = form.seconds(params, samples.dims, figures, nbytes)
    features = form.feature_matrix(samples.dims)
    grid = fit_grid(features, np.log(y / base), KNOTS.get(samples.form, DEFAULT_KNOTS))
    fitted = base * np.exp(grid(features))
    curves = None
    if samples.form in PER_CONFIGURATION:
        curves = fit_config_curves(samples.dims, np.log(y / fitted),
                                   *PER_CONFIGURATION[samples.form])
        fitted = fitted * np.exp(curves(samples.dims))
    mape = float(np.mean(np.abs(fitted / y - 1)))
    return KernelFit(samples.form, fit_key, params, grid, len(y), mape, curves)
