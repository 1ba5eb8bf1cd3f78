"""Transformer examples built from `transformers` config classes with random weights."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_FAMILIES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "bert": ("BertConfig", "BertModel"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
}


class LogitsOnly(nn.Module):
    """Calls a Hugging Face model without a KV cache and returns one tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, use_cache=False, return_dict=True)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def build_transformer(family: str, config: dict[str, Any], *, batch: int, seq_len: int,
                      device: str) -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A model of ``family`` from ``config`` on ``device`` with token-id inputs."""
    from perfcast.compat.torchvision_cpu import ensure_importable

    ensure_importable()
    import transformers

    cfg_name, model_name = _FAMILIES[family]
    cfg = getattr(transformers, cfg_name)(**config)
    cfg.use_cache = False
    if hasattr(cfg, "attn_implementation"):
        cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = getattr(transformers, model_name)(cfg)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq_len), device=device)
    if device == "meta":
        ids = torch.zeros((batch, seq_len), dtype=torch.long, device=device)
    return LogitsOnly(model).eval(), (ids,)
