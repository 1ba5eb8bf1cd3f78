"""LLM serving under continuous batching: latency, throughput, memory and cost.

The workload is InferenceMAX's: ``concurrency`` clients each keep one request in
flight, every request has ``isl`` input and ``osl`` output tokens. Per replica:

- ``T`` = prefill time of one request (batch 1, ``isl`` tokens, all layers, plus the
  pipeline's stage-to-stage transfers); ``D`` = one decode step over the replica's
  requests at the mean context ``isl + osl/2`` (with PP, a microbatch of
  ``concurrency/pp`` requests flowing through all stages).
- Prefills interrupt decoding: with ``u`` the share of engine time spent on prefill
  (``u = c T / E2E``), ``TPOT = D / (1 - u)``; a new request waits for the running
  step and for queued prefills (M/D/1 wait), ``TTFT = T + D/2 + u T / (2 (1 - u))``;
  ``E2E = TTFT + (osl - 1) TPOT``. The three are solved together by fixed-point
  iteration, vectorized over the sweep. A benchmark run that starts all clients at
  once (``Workload.waves``) adds the first wave's prefill queue to the mean TTFT.

Metrics follow InferenceMAX (shared/data/README.md): TPOT = (E2E - TTFT)/(osl - 1),
interactivity = 1/TPOT, ITL = TPOT on average, throughput per GPU = (input + output)
tokens/s over all GPUs, output throughput per GPU = output tokens/s over all GPUs.
Memory per GPU: weights + KV cache at the full ``isl + osl`` context + activations of
the largest prefill chunk, against ``memory_utilization`` x capacity (the rest is the
runtime reserve: CUDA context, graphs, allocator slack), as vLLM's
``gpu_memory_utilization`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfcast.estimate.collectives import collective_time
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.engine_profiles import serving_time_model
from perfcast.estimate.llm_efficiency import LLMEfficiency
from perfcast.estimate.phase import PhaseTime, phase_kernels, phase_time
from perfcast.frontends.llm.config import ModelConfig
from perfcast.frontends.llm.graph import build_phase_graph, kv_cache_bytes
from perfcast.frontends.llm.parallel import Parallelism
from perfcast.frontends.llm.precision import RESIDUAL_DTYPE, Precision
from perfcast.hardware import HardwareSpec
from perfcast.hardware.spec import normalize_dtype
from perfcast.ir.dtypes import itemsize
from perfcast.ir.tensor import Dim, ceil_div

DEFAULT_MEMORY_UTILIZATION = 0.95  # engines keep ~5% for context, CUDA graphs, NCCL
PREFILL_CHUNK_TOKENS = 8192  # largest prefill chunk whose activations must fit
_MAX_PREFILL_SHARE = 0.95
_ITERATIONS = 30


class LLMPrecisionError(ValueError):
    """A precision the device cannot compute in."""


@dataclass
class Workload:
    """Requests: input and output lengths (tokens) and client concurrency.

    ``waves``: how many times the client's concurrency is sent in one benchmark run
    (InferenceMAX sends 10 x concurrency prompts, so 10). The first wave arrives at
    once and queues for prefill; its mean TTFT, ``T (c + 1) / 2``, is averaged in. None
    means steady state only.
    """

    isl: Dim
    osl: Dim
    concurrency: Dim
    waves: float | None = None


@dataclass
class ServingEstimate:
    """Serving metrics of one model on one device; fields broadcast over a sweep."""

    model: str
    hardware: str
    precision: Precision
    parallelism: Parallelism
    workload: Workload
    gpus: Dim
    ttft_s: Dim
    tpot_s: Dim
    itl_s: Dim
    e2el_s: Dim
    interactivity: Dim
    throughput_per_gpu: Dim
    output_throughput_per_gpu: Dim
    input_throughput_per_gpu: Dim
    prefill_s: Dim
    decode_step_s: Dim
    prefill_share: Dim
    weights_bytes: Dim
    kv_cache_bytes: Dim
    activation_bytes: Dim
    reserve_bytes: Dim
    capacity_bytes: float
    max_concurrency: Dim
    feasible: Dim
    cost_per_million_tokens_usd: Dim | None
    cost_per_million_output_tokens_usd: Dim | None
    confidence: Confidence
    profile: str | None = None  # the measured GPU profile used ("h100-sxm/trtllm"), if any
    prefill: PhaseTime = field(repr=False, default_factory=PhaseTime)
    decode: PhaseTime = field(repr=False, default_factory=PhaseTime)

    def to_dict(self) -> dict:
        """A JSON-ready dict of a scalar estimate (schema in docs/llm.md)."""
        par, prec, w = self.parallelism, self.precision, self.workload
        out = {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "hardware": self.hardware,
            "precision": {"name": prec.name, "weights": prec.weights, "experts": prec.experts,
                          "activations": prec.activations, "kv_cache": prec.kv_cache},
            "parallelism": {"tp": _num(par.tp), "pp": _num(par.pp), "ep": _num(par.ep),
                            "dp": _num(par.dp), "dp_attention": par.dp_attention,
                            "gpus": _num(self.gpus)},
            "workload": {"isl": _num(w.isl), "osl": _num(w.osl),
                         "concurrency": _num(w.concurrency)},
            "feasible": bool(np.all(self.feasible)),
            "infeasible_reason": self.infeasible_reason(),
            "confidence": str(self.confidence),
            "profile": self.profile,
        }
        for key in _METRICS:  # an infeasible config is flagged, not estimated
            keep = out["feasible"] or key == "max_concurrency"
            out[key] = _num(getattr(self, key)) if keep else None
        out["memory_bytes"] = {
            "weights": _num(self.weights_bytes),
            "kv_cache": _num(self.kv_cache_bytes),
            "activations": _num(self.activation_bytes),
            "reserve": _num(self.reserve_bytes),
            "total": _num(self.memory_total_bytes + self.reserve_bytes),
            "capacity": _num(self.capacity_bytes),
        }
        if not out["feasible"]:
            out["phases"], out["layers"] = {}, []
            return out
        out["phases"] = {
            "prefill": _phase_dict(self.prefill, self.prefill_s),
            "decode_step": _phase_dict(self.decode, self.decode_step_s),
        }
        out["layers"] = [
            {"phase": phase, "layer": key.split(".", 1)[0], "part": key.split(".", 1)[1],
             "time_s": _num(t)}
            for phase, times in (("prefill", self.prefill), ("decode_step", self.decode))
            for key, t in times.by_layer.items()
        ]
        return out

    @property
    def memory_total_bytes(self) -> Dim:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    def infeasible_reason(self) -> str | None:
        """Why a scalar estimate does not fit, or None."""
        if bool(np.all(self.feasible)):
            return None
        need = float(np.max(self.memory_total_bytes + self.reserve_bytes))
        if float(np.max(self.max_concurrency)) < 1:
            return (f"{self.model} does not fit on {self.hardware} with "
                    f"{self.parallelism.describe()} at any concurrency: weights and "
                    f"activations alone need {float(np.max(self.weights_bytes)) / 1e9:.1f} GB "
                    f"+ {float(np.max(self.activation_bytes)) / 1e9:.1f} GB of "
                    f"{(self.capacity_bytes - self.reserve_bytes) / 1e9:.1f} GB usable")
        return (f"needs {need / 1e9:.1f} GB per GPU of {self.capacity_bytes / 1e9:.1f} GB; "
                f"the largest concurrency that fits is {int(np.min(self.max_concurrency))}")


SCHEMA_VERSION = 1
_METRICS = ("ttft_s", "tpot_s", "itl_s", "e2el_s", "interactivity", "throughput_per_gpu",
            "output_throughput_per_gpu", "input_throughput_per_gpu", "max_concurrency",
            "cost_per_million_tokens_usd", "cost_per_million_output_tokens_usd")


def _num(x: Dim | None) -> float | int | None:
    """A scalar for JSON (ints stay ints); arrays must be reduced before."""
    if x is None:
        return None
    value = np.asarray(x)
    if value.size != 1:
        raise ValueError("to_dict() needs a scalar estimate; use to_pandas() for sweeps")
    item = value.reshape(()).item()
    return item if isinstance(item, int | bool) else float(item)


def _phase_dict(times: PhaseTime, total: Dim) -> dict:
    kernels = sum(times.by_confidence.values()) or 1.0
    return {"time_s": _num(total), **{f"{k}_s": _num(v) for k, v in times.by_part.items()},
            "share_by_confidence": {k: _num(v / kernels)
                                    for k, v in sorted(times.by_confidence.items())}}


def _check_precision(hw: HardwareSpec, precision: Precision) -> None:
    needed = {precision.gemm_dtype(precision.weights), precision.gemm_dtype(precision.experts),
              RESIDUAL_DTYPE}
    for dtype in sorted(needed):
        if hw.supports(dtype):
            continue
        have = ", ".join(hw.compute) or "none"
        hint = ""
        if itemsize(precision.weights) < 1 or itemsize(precision.experts) < 1:
            hint = ("; 4-bit weights can run weight-only with bf16 compute "
                    "(--precision fp4-w4a16 or w4a16)")
        elif normalize_dtype(dtype) == "fp8":
            hint = "; use bf16, or fp8 weights with bf16 compute (--precision w8a16)"
        raise LLMPrecisionError(
            f"{hw.name} has no {normalize_dtype(dtype) or dtype} compute rate in its spec "
            f"(it lists: {have}){hint}"
        )


def _p2p_s(hw: HardwareSpec, par: Parallelism, tokens: Dim, hidden: int) -> Dim:
    """Stage-to-stage activation transfers of one pass through ``pp`` stages."""
    payload = tokens * hidden * itemsize(RESIDUAL_DTYPE)
    hops = par.pp - 1
    return np.where(np.asarray(hops) > 0, collective_time("send", payload, 2, hw).time_s, 0) \
        * hops


def _activation_bytes(model: ModelConfig, par: Parallelism, isl: Dim) -> Dim:
    """Live activations of the largest prefill chunk: residual, norm output, the widest
    projection output and the MLP intermediate (bf16), per GPU."""
    tokens = np.minimum(isl, PREFILL_CHUNK_TOKENS)
    width = model.intermediate_size
    if model.moe:
        width = max(width, model.moe.expert_intermediate_size * model.moe.experts_per_token)
    per_token = 4 * model.hidden_size + 3 * width // np.asarray(par.tp)
    logits = model.vocab_size * 4  # fp32 logits of the last token per request
    return tokens * per_token * itemsize(RESIDUAL_DTYPE) + logits


_KERNEL_CACHE: dict[tuple, tuple] = {}
_KERNEL_CACHE_SIZE = 2048


def _kernels(model: ModelConfig, phase: str, batch: Dim, new: Dim, context: Dim,
             par: Parallelism, precision: Precision):
    """The phase graph and its kernels; scalar shapes are cached (repeated estimates)."""
    dims = (batch, new, context, par.tp, par.pp, par.ep, par.dp)
    scalar = all(np.ndim(d) == 0 for d in dims)
    key = (id(model), phase, *(int(d) for d in dims), par.dp_attention, precision) \
        if scalar else None
    hit = _KERNEL_CACHE.get(key) if key else None
    if hit is not None and hit[0] is model:
        return hit[1], hit[2]
    pg = build_phase_graph(model, phase, batch, new, context, par, precision)  # type: ignore[arg-type]
    kernels = phase_kernels(pg)
    if key:
        if len(_KERNEL_CACHE) >= _KERNEL_CACHE_SIZE:
            _KERNEL_CACHE.clear()
        _KERNEL_CACHE[key] = (model, pg, kernels)
    return pg, kernels


def estimate_serving(model: ModelConfig, hw: HardwareSpec, par: Parallelism,
                     precision: Precision, workload: Workload,
                     efficiency: LLMEfficiency | None = None,
                     memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
                     engine: str | None = None,
                     moe_distribution: str = "random") -> ServingEstimate:
    """Serving metrics for ``workload`` (arrays broadcast); ``par`` must be valid.

    ``engine``: ``fitted`` (default: the fitted efficiencies) or a serving engine whose
    measured GPU profile times the kernels (:mod:`perfcast.estimate.engine_profiles`);
    ``moe_distribution``: the token distribution over experts for its MoE fits.
    """
    timer, eff, profile = serving_time_model(hw, efficiency, engine, moe_distribution)
    _check_precision(hw, precision)
    isl, osl = workload.isl, workload.osl
    conc = workload.concurrency
    per_replica = ceil_div(conc, par.dp)
    micro = ceil_div(per_replica, par.pp)  # requests per pipeline microbatch
    mean_context = isl + osl // 2

    pre_graph, pre_kernels = _kernels(model, "prefill", 1, isl, isl, par, precision)
    dec_graph, dec_kernels = _kernels(model, "decode", micro, 1, mean_context, par, precision)
    prefill = phase_time(pre_kernels, hw, timer.for_graph(pre_graph.graph))
    decode = phase_time(dec_kernels, hw, timer.for_graph(dec_graph.graph))
    t_pf = prefill.total_s + eff.step_overhead_s + _p2p_s(hw, par, isl, model.hidden_size)
    t_d = decode.total_s + eff.step_overhead_s + _p2p_s(hw, par, micro, model.hidden_size)

    def first_token(share: Dim) -> Dim:
        wait = t_d / 2 + share * t_pf / (2 * (1 - share))  # running step + queued prefills
        return t_pf + wait + eff.request_overhead_s

    share: Dim = np.zeros(np.broadcast(t_pf, t_d, per_replica, osl).shape)
    for _ in range(_ITERATIONS):
        e2el = first_token(share) + (osl - 1) * t_d / (1 - share)
        share = 0.5 * share + 0.5 * np.minimum(per_replica * t_pf / e2el, _MAX_PREFILL_SHARE)
    tpot = t_d / (1 - share)
    ttft = first_token(share)
    if workload.waves:
        burst = t_pf * (per_replica + 1) / 2 + eff.request_overhead_s  # first wave queues
        ttft = (burst + (workload.waves - 1) * ttft) / workload.waves
    e2el = ttft + (osl - 1) * tpot

    gpus_per_replica = par.gpus_per_replica
    requests_per_s = per_replica / e2el
    out_tput = requests_per_s * osl / gpus_per_replica
    in_tput = requests_per_s * isl / gpus_per_replica

    capacity = hw.memory_capacity
    usable = capacity * memory_utilization
    weights = dec_graph.weight_bytes()
    kv = kv_cache_bytes(model, par, precision, per_replica, isl + osl)
    kv_per_request = kv_cache_bytes(model, par, precision, np.asarray(par.attention_dp),
                                     isl + osl)
    act = _activation_bytes(model, par, isl)
    free = usable - weights - act
    max_conc = np.maximum(np.floor(free / kv_per_request), 0) * np.asarray(par.attention_dp) \
        * np.asarray(par.dp)
    feasible = (weights + kv + act <= usable) & (max_conc >= 1)

    price = hw.price_per_hour_usd.value if hw.price_per_hour_usd else None
    total_tput = out_tput + in_tput
    return ServingEstimate(
        model=model.name,
        hardware=hw.name,
        precision=precision,
        parallelism=par,
        workload=workload,
        gpus=par.gpus,
        ttft_s=ttft,
        tpot_s=tpot,
        itl_s=tpot,
        e2el_s=e2el,
        interactivity=1 / tpot,
        throughput_per_gpu=total_tput,
        output_throughput_per_gpu=out_tput,
        input_throughput_per_gpu=in_tput,
        prefill_s=t_pf,
        decode_step_s=t_d,
        prefill_share=share,
        weights_bytes=weights,
        kv_cache_bytes=kv,
        activation_bytes=act,
        reserve_bytes=capacity - usable,
        capacity_bytes=capacity,
        max_concurrency=max_conc,
        feasible=feasible,
        cost_per_million_tokens_usd=None if price is None else price / 3600 / total_tput * 1e6,
        cost_per_million_output_tokens_usd=None if price is None
        else price / 3600 / out_tput * 1e6,
        confidence=Confidence.weakest([prefill.confidence, decode.confidence]),
        profile=profile,
        prefill=prefill,
        decode=decode,
    )
