"""LLM serving estimates: ``perfcast.llm.estimate(...)`` and the model catalog.

>>> est = perfcast.llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, isl=1024, osl=1024,
...                             concurrency=64, precision="fp8")
>>> est.tpot_s, est.throughput_per_gpu, est.to_dict()
"""

from __future__ import annotations

from pathlib import Path

from perfcast.estimate.llm_efficiency import LLMEfficiency
from perfcast.estimate.serving import ServingEstimate, Workload, estimate_serving
from perfcast.frontends.llm import ModelConfig, list_models, load_model
from perfcast.frontends.llm.parallel import Parallelism, check
from perfcast.frontends.llm.precision import Precision, parse_precision
from perfcast.hardware import HardwareSpec, load_spec

__all__ = ["ServingEstimate", "catalog_rows", "estimate", "list_models", "load_model"]


def catalog_rows() -> list[dict]:
    """One JSON row per catalog model: size, layers, attention, experts, KV bytes/token."""
    from perfcast.frontends.llm.graph import kv_cache_bytes
    from perfcast.frontends.llm.precision import PRESETS

    rows = []
    for m in list_models():
        kv = kv_cache_bytes(m, Parallelism(), PRESETS["bf16"], 1, 1)
        rows.append({
            "name": m.name, "display_name": m.display_name, "family": m.family,
            "params": m.published_params.total if m.published_params else None,
            "active_params": m.published_params.active if m.published_params else None,
            "layers": m.num_hidden_layers, "hidden_size": m.hidden_size,
            "attention": "MLA" if m.mla else
            f"GQA {m.num_attention_heads}/{m.num_key_value_heads}",
            "experts": f"{m.moe.experts_per_token}/{m.moe.num_experts}" if m.moe else None,
            "sliding_window": m.sliding_window, "kv_bytes_per_token_bf16": float(kv),
            "source": m.source.url or m.source.title,
        })
    return rows


# Far beyond any deployment, small enough that every size stays finite and exact.
LIMITS = {"isl": 10**8, "osl": 10**8, "concurrency": 10**7, "requests": 10**9,
          "tp": 2**16, "pp": 2**16, "ep": 2**16, "dp": 2**16}


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {repr(value)[:40]}")
    if value > LIMITS[name]:
        shown = f"{value:.3g}" if value < 10**300 else "a larger integer"
        raise ValueError(f"{name} must be at most {LIMITS[name]:,}, got {shown}")
    return value


def estimate(model: str | Path | ModelConfig, hardware: str | HardwareSpec, *, tp: int = 1,
             pp: int = 1, ep: int = 1, dp: int = 1, dp_attention: bool = False,
             isl: int = 1024, osl: int = 1024, concurrency: int = 1,
             precision: str | Precision = "bf16", kv_cache: str | None = None,
             requests: int | None = None,
             efficiency: LLMEfficiency | None = None, engine: str | None = None,
             moe_distribution: str = "random") -> ServingEstimate:
    """Serving metrics of ``model`` on ``hardware`` for one configuration.

    ``model``: catalog name/alias, a config.json path, or a :class:`ModelConfig`;
    ``hardware``: catalog name/alias or a spec; ``precision``: a preset (bf16, fp8, fp4,
    w4a16, ...) or ``weights=..,experts=..,activations=..,kv=..``; ``requests``: prompts
    in the benchmark run, all clients starting at once (None: steady state; InferenceMAX
    sends 10 x concurrency); ``engine``: ``fitted`` (default) or trtllm|sglang|vllm to
    time kernels with that engine's measured GPU profile (where one ships for
    ``hardware``); ``moe_distribution``: random (default), balanced, power_law_1.01 or
    power_law_1.2.
    Raises ``ValueError``
    subclasses with a specific message for bad input.
    """
    cfg = model if isinstance(model, ModelConfig) else load_model(model)
    hw = hardware if isinstance(hardware, HardwareSpec) else load_spec(hardware)
    for name, value in (("isl", isl), ("osl", osl), ("concurrency", concurrency), ("tp", tp),
                        ("pp", pp), ("ep", ep), ("dp", dp)):
        _positive(name, value)
    if requests is not None and _positive("requests", requests) < concurrency:
        raise ValueError(f"requests ({requests}) must be at least concurrency ({concurrency})")
    par = check(cfg, Parallelism(tp, pp, ep, dp, dp_attention))
    prec = parse_precision(precision)
    if kv_cache:
        prec = prec.with_kv_cache(kv_cache)
    return estimate_serving(cfg, hw, par, prec, Workload(isl, osl, concurrency,
                                     None if requests is None else requests / concurrency),
                            efficiency, engine=engine,
                            moe_distribution=moe_distribution)
