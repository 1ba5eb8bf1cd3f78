"""Read a Hugging Face ``config.json`` into a :class:`ModelConfig`.

Supported ``model_type`` families: llama, mistral, qwen2, qwen3, qwen3_moe, mixtral,
deepseek_v3 (and deepseek_v2), gpt_oss, gemma3 / gemma3_text. Other decoder-only
configs that use the Llama key names are read as Llama-like; encoder and encoder-decoder
families, and families that would ignore MoE or MLA keys, are refused (:mod:`hf_schema`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perfcast.frontends.llm.config import ModelConfig, Source
from perfcast.frontends.llm.errors import ModelConfigError
from perfcast.frontends.llm.hf_schema import check_family, check_fields, shown

_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "relu": "relu",
}
_QK_NORM_FAMILIES = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text"}
_GEMMA3 = {"gemma3", "gemma3_text"}
# Keys that a family's released config.json may leave out because transformers fills them
# from its config class. google/gemma-3-27b-it's text_config, for one, names neither
# vocab_size, the activation, the embedding tying nor the local/global layer pattern.
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    family: {  # transformers Gemma3TextConfig defaults
        "vocab_size": 262208,
        "hidden_activation": "gelu_pytorch_tanh",
        "tie_word_embeddings": True,
        "max_position_embeddings": 131072,
        "sliding_window_pattern": 6,
    }
    for family in _GEMMA3
}


def _require(cfg: Mapping[str, Any], *keys: str) -> list[Any]:
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise ModelConfigError(f"config.json lacks required key(s): {', '.join(missing)}")
    return [cfg[k] for k in keys]


def _moe(cfg: Mapping[str, Any], family: str) -> dict[str, Any] | None:
    if family in {"deepseek_v3", "deepseek_v2"}:
        experts, top_k, width = _require(
            cfg, "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"
        )
        return {
            "num_experts": experts,
            "experts_per_token": top_k,
            "expert_intermediate_size": width,
            "num_shared_experts": cfg.get("n_shared_experts") or 0,
            "first_dense_layers": cfg.get("first_k_dense_replace") or 0,
        }
    if family == "qwen3_moe":
        experts, top_k, width = _require(
            cfg, "num_experts", "num_experts_per_tok", "moe_intermediate_size"
        )
        dense = len(cfg.get("mlp_only_layers") or [])
        return {"num_experts": experts, "experts_per_token": top_k,
                "expert_intermediate_size": width, "first_dense_layers": dense}
    if family in {"mixtral", "gpt_oss"}:
        experts, top_k, width = _require(
            cfg, "num_local_experts", "num_experts_per_tok", "intermediate_size"
        )
        return {"num_experts": experts, "experts_per_token": top_k,
                "expert_intermediate_size": width, "expert_bias": family == "gpt_oss"}
    return None


def _layer_types(cfg: Mapping[str, Any], layers: int) -> list[str] | None:
    types = cfg.get("layer_types")
    if types:
        # Newer transformers write layer_types for every model; all-full means no sliding.
        return None if set(types) == {"full_attention"} else list(types)
    pattern = cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern")
    if pattern and cfg.get("sliding_window"):
        # Gemma 3: every pattern-th layer is global, the others slide.
        return ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                for i in range(layers)]
    return None


def config_from_hf(cfg: Mapping[str, Any], name: str, source: str = "config.json") -> ModelConfig:
    """Translate a parsed config.json; raises :class:`ModelConfigError` naming what is wrong."""
    if not isinstance(cfg, Mapping):
        raise ModelConfigError(f"{source}: expected a JSON object, got {type(cfg).__name__}")
    if isinstance(cfg.get("text_config"), Mapping):  # multimodal wrappers (Gemma 3)
        text = cfg["text_config"]
        cfg = {**text, "model_type": text.get("model_type") or cfg.get("model_type", "")}
    check_fields(cfg, source)
    family = cfg.get("model_type") or "llama"
    check_family(cfg, family, source)
    defaults = _FAMILY_DEFAULTS.get(family)
    if defaults:
        cfg = {**defaults, **{k: v for k, v in cfg.items() if v is not None}}
    hidden, layers, heads, vocab = _require(
        cfg, "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"
    )
    # Gemma reads hidden_activation (transformers ignores its hidden_act); others hidden_act.
    act_keys = ("hidden_activation", "hidden_act") if family in _GEMMA3 else (
        "hidden_act", "hidden_activation")
    act = str(next((cfg[k] for k in act_keys if cfg.get(k)), "silu"))
    if act not in _ACTIVATIONS:
        raise ModelConfigError(
            f"{source}: hidden_act {shown(act)} is not supported (known: {', '.join(_ACTIVATIONS)})"
        )
    fields: dict[str, Any] = {
        "name": re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.") or "model",
        "display_name": name,
        "family": family,
        "source": Source(title=source),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "vocab_size": vocab,
        "num_attention_heads": heads,
        "num_key_value_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim") or hidden // heads,
        "intermediate_size": cfg.get("intermediate_size") or 4 * hidden,
        "hidden_act": _ACTIVATIONS[act],
        "attention_bias": bool(cfg.get("attention_bias", family == "qwen2")),
        "mlp_bias": bool(cfg.get("mlp_bias", False)),
        "qk_norm": family in _QK_NORM_FAMILIES,
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "max_position_embeddings": cfg.get("max_position_embeddings") or 131072,
        "moe": _moe(cfg, family),
        "sliding_window": cfg.get("sliding_window") if cfg.get("use_sliding_window", True)
        else None,
        "layer_types": _layer_types(cfg, layers),
        "attention_sinks": family == "gpt_oss",
    }
    if family == "gpt_oss":
        fields["attention_output_bias"] = True
    if family in {"deepseek_v3", "deepseek_v2"}:
        rank, nope, rope, v = _require(
            cfg, "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"
        )
        fields["mla"] = {"q_lora_rank": cfg.get("q_lora_rank"), "kv_lora_rank": rank,
                         "qk_nope_head_dim": nope, "qk_rope_head_dim": rope, "v_head_dim": v}
        fields["head_dim"] = nope + rope
    if fields["layer_types"] is None:
        fields["sliding_window"] = None if family != "mistral" else fields["sliding_window"]
        if family == "mistral" and fields["sliding_window"]:
            fields["layer_types"] = ["sliding_attention"] * layers
    try:
        return ModelConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise ModelConfigError(f"{source}: {problems}") from None


def load_hf_config(path: str | Path) -> ModelConfig:
    """Read a config.json file (or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    stem = path.parent.name if path.name == "config.json" else path.stem
    return config_from_hf(cfg, stem or "model", source=str(path))
