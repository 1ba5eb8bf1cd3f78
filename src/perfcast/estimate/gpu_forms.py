"""Physical forms of GPU kernel latency, fitted per (GPU, engine, dtype) to measurements.

Each :class:`Form` turns a kernel's dimensions (NumPy arrays broadcast over a sweep)
and the device's datasheet figures (:class:`DeviceFigures`) into seconds, with a few
parameters fitted to measured latencies (:mod:`perfcast.calibrate.gpu_fit`): achieved
fractions of peak FLOP/s and bandwidth, a launch latency, and shape terms (tiles and
waves over the SMs for GEMMs, short-sequence and small-batch inefficiency for attention).
Compute and memory time are joined by a smooth maximum, ``(c^p + m^p)^(1/p)``. What a
form misses is a smooth correction over its ``features`` (log dimensions,
:mod:`perfcast.estimate.correction_grid`).

Because parameters are fractions of datasheet figures, a form fitted on one GPU
transfers to another through that GPU's own peaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from perfcast.ir.tensor import Dim


@dataclass(frozen=True)
class DeviceFigures:
    """Datasheet figures a form needs: FLOP/s of the kernel's dtype, DRAM bytes/s,
    SM count and the scale-up link's bytes/s per direction."""

    flops: float
    bandwidth: float
    sms: int
    link_bandwidth: float


@dataclass(frozen=True)
class Param:
    name: str
    initial: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Form:
    """A kernel family's latency form: dimensions in, seconds out."""

    name: str
    dims: tuple[str, ...]
    params: tuple[Param, ...]
    features: Callable[[dict[str, Dim]], list[Dim]]
    seconds: Callable[[dict[str, float], dict[str, Dim], DeviceFigures, float], Dim]

    def feature_matrix(self, dims: dict[str, Dim]) -> np.ndarray:
        """Log features stacked on the last axis (``[..., n_features]``)."""
        cols = np.broadcast_arrays(*(np.log(np.asarray(f, dtype=float))
                                     for f in self.features(dims)))
        return np.stack(cols, axis=-1)


def _join(compute: Dim, memory: Dim, sharpness: float) -> Dim:
    """Smooth maximum of compute and memory time."""
    return (compute ** sharpness + memory ** sharpness) ** (1.0 / sharpness)


_COMMON = (Param("compute_eff", 0.7, 0.02, 1.0), Param("memory_eff", 0.7, 0.02, 1.0),
           Param("latency_s", 5e-6, 5e-7, 5e-4), Param("sharpness", 2.0, 1.0, 8.0))


# -- GEMM: C[m, n] = A[m, k] @ B[k, n] -----------------------------------------------------
def _gemm_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                  nbytes: float) -> Dim:
    m, n, k = (np.asarray(d[x], dtype=float) for x in ("m", "n", "k"))
    tiles = np.ceil(m / p["tile_m"]) * np.ceil(n / p["tile_n"])
    waves = np.ceil(tiles / hw.sms)
    filled = np.minimum(m * n / (waves * hw.sms * p["tile_m"] * p["tile_n"]), 1.0)
    compute = 2 * m * n * k / (hw.flops * p["compute_eff"] * filled) * (1 + p["k_half"] / k)
    out_bytes = 2.0  # bf16 output
    memory = ((m * k + k * n) * nbytes + m * n * out_bytes) / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


GEMM = Form(
    "gemm", ("m", "n", "k"),
    (*_COMMON, Param("k_half", 64.0, 1.0, 4096.0), Param("tile_m", 128.0, 16.0, 256.0),
     Param("tile_n", 128.0, 16.0, 256.0)),
    lambda d: [d["m"], d["n"], d["k"]],
    _gemm_seconds,
)


# -- attention over a prompt (prefill), causal -------------------------------------------
def causal_pairs(q_len: Dim, window: Dim) -> Dim:
    """Query-key pairs a causal (optionally sliding-window) attention computes."""
    s = np.asarray(q_len, dtype=float)
    w = np.where(np.asarray(window) > 0, np.minimum(window, s), s)
    return w * (w + 1) / 2 + (s - w) * w


def _context_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                     nbytes: float) -> Dim:
    b, s, h, kv, hd = (np.asarray(d[x], dtype=float)
                       for x in ("batch", "isl", "heads", "kv_heads", "head_dim"))
    pairs = causal_pairs(s, d["window"])
    compute = 4 * b * h * hd * pairs / (hw.flops * p["compute_eff"]) * (1 + p["s_half"] / s)
    memory = b * s * hd * (2 * h + 2 * kv) * nbytes / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


CONTEXT_ATTENTION = Form(
    "context_attention", ("batch", "isl", "heads", "kv_heads", "head_dim", "window"),
    (*_COMMON, Param("s_half", 128.0, 1.0, 8192.0)),
    lambda d: [np.asarray(d["batch"]) * d["isl"], causal_pairs(d["isl"], d["window"]) / d["isl"],
               d["heads"], d["head_dim"]],
    _context_seconds,
)


# -- attention of one new token over a KV cache (decode) --------------------------------
def attended(context: Dim, window: Dim) -> Dim:
    """Cached tokens one new token attends to (the window's, if any)."""
    w = np.asarray(window)
    return np.where(w > 0, np.minimum(w, context), context)


def _generation_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                        nbytes: float) -> Dim:
    b, ctx, h, kv, hd = (np.asarray(d[x], dtype=float)
                         for x in ("batch", "context", "heads", "kv_heads", "head_dim"))
    length = attended(ctx, d["window"])
    compute = 4 * b * h * hd * length / (hw.flops * p["compute_eff"])
    # each (sequence, KV head) also costs a fixed ctx_half tokens' worth (block setup)
    memory = (b * (length + p["ctx_half"]) * kv * hd * 2 * nbytes + b * h * hd * 4) \
        / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


GENERATION_ATTENTION = Form(
    "generation_attention", ("batch", "context", "heads", "kv_heads", "head_dim", "window"),
    (*_COMMON, Param("ctx_half", 64.0, 1.0, 65536.0)),
    lambda d: [d["batch"], attended(d["context"], d["window"]), d["kv_heads"],
               np.asarray(d["heads"]) / d["kv_heads"], d["head_dim"]],
    _generation_seconds,
)


# -- MoE: routed tokens through local experts' gated MLPs (both grouped GEMMs) ---------
def _moe_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                 nbytes: float) -> Dim:
    t, hid, inter, topk, experts, ep = (np.asarray(d[x], dtype=float) for x in (
        "tokens", "hidden", "inter_local", "topk", "experts", "ep"))
    routed = t * topk
    active = experts / ep * np.minimum(1.0, routed / experts)  # experts hit on this GPU
    per_expert = np.maximum(routed / experts, 1.0)
    padded = np.ceil(per_expert / p["tile_m"]) * p["tile_m"]  # rows padded to the tile
    compute = 6 * active * padded * hid * inter / (hw.flops * p["compute_eff"])
    memory = (3 * active * hid * inter * nbytes + routed / ep * (hid + inter) * 4) \
        / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


MOE = Form(
    "moe", ("tokens", "hidden", "inter_local", "topk", "experts", "ep"),
    (*_COMMON, Param("tile_m", 64.0, 8.0, 256.0)),
    lambda d: [d["tokens"], np.asarray(d["hidden"]) * d["inter_local"],
               np.asarray(d["experts"]) / d["ep"], d["topk"]],
    _moe_seconds,
)


# -- DeepSeek MLA: prefill with per-head K/V (qk 192, v 128), decode in the latent -----
MLA_QK, MLA_V, MLA_LATENT, MLA_ROPE = 192, 128, 512, 64


def _mla_context_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                         nbytes: float) -> Dim:
    b, s, h = (np.asarray(d[x], dtype=float) for x in ("batch", "isl", "heads"))
    pairs = causal_pairs(s, 0)
    compute = 2 * b * h * (MLA_QK + MLA_V) * pairs / (hw.flops * p["compute_eff"]) \
        * (1 + p["s_half"] / s)
    memory = b * s * h * (2 * MLA_QK + 2 * MLA_V) * nbytes / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


MLA_CONTEXT = Form(
    "mla_context", ("batch", "isl", "heads"),
    (*_COMMON, Param("s_half", 128.0, 1.0, 8192.0)),
    lambda d: [np.asarray(d["batch"]) * d["isl"], d["isl"], d["heads"]],
    _mla_context_seconds,
)


def _mla_generation_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                            nbytes: float) -> Dim:
    b, ctx, h = (np.asarray(d[x], dtype=float) for x in ("batch", "context", "heads"))
    compute = 2 * b * h * ctx * (2 * MLA_LATENT + MLA_ROPE) / (hw.flops * p["compute_eff"])
    memory = b * (ctx + p["ctx_half"]) * (MLA_LATENT + MLA_ROPE) * nbytes \
        / (hw.bandwidth * p["memory_eff"])
    return p["latency_s"] + _join(compute, memory, p["sharpness"])


MLA_GENERATION = Form(
    "mla_generation", ("batch", "context", "heads"),
    (*_COMMON, Param("ctx_half", 64.0, 1.0, 65536.0)),
    lambda d: [d["batch"], d["context"], d["heads"]],
    _mla_generation_seconds,
)


# -- collectives: latency + bytes over the achieved link bandwidth ----------------------
_TRAFFIC = {  # bytes each GPU sends per byte of message, as a function of n GPUs (ring)
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
}


def _collective_seconds(p: dict[str, float], d: dict[str, Dim], hw: DeviceFigures,
                        nbytes: float) -> Dim:
    size, n, op = np.asarray(d["bytes"], dtype=float), np.asarray(d["gpus"], dtype=float), \
        d["op"]
    traffic = _TRAFFIC[str(op)](n) * size
    steps = np.log2(np.maximum(n, 2))
    return p["latency_s"] * steps + traffic / (hw.link_bandwidth * p["memory_eff"])


COLLECTIVE = Form(
    "collective", ("bytes", "gpus", "op"),
    (Param("memory_eff", 0.7, 0.01, 1.5), Param("latency_s", 5e-6, 1e-7, 1e-4)),
    lambda d: [d["bytes"], d["gpus"]],
    _collective_seconds,
)

FORMS: dict[str, Form] = {f.name: f for f in (GEMM, CONTEXT_ATTENTION, GENERATION_ATTENTION,
                                              MOE, MLA_CONTEXT, MLA_GENERATION, COLLECTIVE)}
