"""Bounds and types of the config.json keys :mod:`hf` reads, checked before any is used.

Sizes are plain ints (a boolean or a float is refused) within limits far above any
published model yet small enough that every product the estimator forms stays exact.
A ``model_type`` must be a decoder-only family: known non-decoder families are refused,
and so is a family that would ignore the config's MoE or MLA keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfcast.frontends.llm.errors import ModelConfigError

KNOWN_FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3",
                  "deepseek_v2", "gpt_oss", "gemma3", "gemma3_text")
MOE_FAMILIES = {"qwen3_moe", "mixtral", "deepseek_v3", "deepseek_v2", "gpt_oss"}
MLA_FAMILIES = {"deepseek_v3", "deepseek_v2"}
# Encoder-only, encoder-decoder and vision/audio families: their config may share key names
# with Llama's, but the graph perfcast builds for them would be a different model.
NON_DECODER = {"bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "deberta",
               "deberta-v2", "t5", "mt5", "umt5", "bart", "mbart", "pegasus", "marian",
               "whisper", "vit", "clip", "siglip", "wav2vec2", "hubert", "swin", "convnext",
               "beit", "dinov2", "sam", "encoder-decoder", "longformer", "mpnet"}
_MOE_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_intermediate_size")
_MLA_KEYS = ("kv_lora_rank", "q_lora_rank", "qk_rope_head_dim")

_K, _M = 1 << 10, 1 << 20
# key: (least, most); None values mean "unset" and are left to the reader's defaults.
SIZE_BOUNDS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, _M),
    "num_hidden_layers": (1, 4 * _K),
    "num_attention_heads": (1, 16 * _K),
    "num_key_value_heads": (1, 16 * _K),
    "head_dim": (1, 64 * _K),
    "vocab_size": (1, 16 * _M),
    "intermediate_size": (1, 16 * _M),
    "max_position_embeddings": (1, 1 << 31),
    "sliding_window": (1, 1 << 31),
    "sliding_window_pattern": (1, 4 * _K),
    "_sliding_window_pattern": (1, 4 * _K),
    "n_routed_experts": (1, 64 * _K),
    "num_local_experts": (1, 64 * _K),
    "num_experts": (1, 64 * _K),
    "num_experts_per_tok": (1, 64 * _K),
    "moe_intermediate_size": (1, 16 * _M),
    "n_shared_experts": (0, 4 * _K),
    "first_k_dense_replace": (0, 4 * _K),
    "kv_lora_rank": (1, 64 * _K),
    "q_lora_rank": (1, 64 * _K),
    "qk_nope_head_dim": (1, 64 * _K),
    "qk_rope_head_dim": (1, 64 * _K),
    "v_head_dim": (1, 64 * _K),
}
BOOL_KEYS = ("attention_bias", "mlp_bias", "tie_word_embeddings", "use_sliding_window")
STR_KEYS = ("model_type", "hidden_act", "hidden_activation")
LIST_KEYS = {"layer_types": 4 * _K, "mlp_only_layers": 4 * _K}


def shown(value: Any, limit: int = 40) -> str:
    """A short, one-line repr of ``value`` for an error message."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else (
        f"an integer of {len(str(abs(value)))} digits")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(source: str, key: str, value: Any, allowed: str) -> ModelConfigError:
    return ModelConfigError(f"{source}: {key} is {shown(value)} ({type(value).__name__}); "
                            f"allowed: {allowed}")


def check_family(cfg: Mapping[str, Any], family: str, source: str) -> None:
    """Refuse a ``model_type`` this reader would estimate as a different model."""
    known = ", ".join(KNOWN_FAMILIES)
    if family in NON_DECODER or cfg.get("is_encoder_decoder") is True:
        raise ModelConfigError(f"{source}: model_type {family!r} is not a decoder-only LLM; "
                               f"allowed: {known} (or another with Llama's keys)")
    for keys, families, what in ((_MOE_KEYS, MOE_FAMILIES, "mixture-of-experts"),
                                 (_MLA_KEYS, MLA_FAMILIES, "latent-attention (MLA)")):
        present = [k for k in keys if cfg.get(k)]
        if present and family not in families:
            raise ModelConfigError(
                f"{source}: model_type {family!r} would ignore the {what} key(s) "
                f"{', '.join(present)}; allowed model_type: {', '.join(sorted(families))}")


def check_fields(cfg: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ModelConfigError` on the first key of the wrong type or out of bounds."""
    for key in STR_KEYS:
        value = cfg.get(key)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 100):
            raise _fail(source, key, value, "a string of 1 to 100 characters")
    for key, (low, high) in SIZE_BOUNDS.items():
        value = cfg.get(key)
        if value is None:
            continue
        if type(value) is not int or not low <= value <= high:
            raise _fail(source, key, value, f"an integer from {low} to {high}")
    for key in BOOL_KEYS:
        value = cfg.get(key)
        if value is not None and not isinstance(value, bool):
            raise _fail(source, key, value, "true or false")
    for key, most in LIST_KEYS.items():
        value = cfg.get(key)
        if value is not None and not (isinstance(value, list) and len(value) <= most):
            raise _fail(source, key, value, f"a list of at most {most} entries")
    types = cfg.get("layer_types") or []
    if not all(isinstance(t, str) for t in types):
        raise _fail(source, "layer_types", types, "a list of strings")
