"""KV-cache decoding on the perfcast runtime: a prefill program, then one step per token.

Two programs are compiled from one :class:`CachedForward` module (the Hugging Face
model's own layers, with past keys/values as inputs of a fixed capacity and this call's
keys/values as outputs): prefill over the prompt and a one-token step. The caches live in
NumPy arrays owned by the :class:`KVDecoder`; after each call the new rows are written
into them, and a boolean mask keeps attention to the filled slots and (within the call)
to earlier positions. Supported: GPT-2 (``GPT2LMHeadModel``) and Qwen3/Llama-style
models (``Qwen3ForCausalLM``, ``LlamaForCausalLM``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DecodeError(ValueError):
    """The model family, prompt or capacity cannot be decoded."""


class _PastKV:
    """Stands in for a transformers Cache inside :class:`CachedForward`: ``update``
    concatenates the past keys/values with the new ones and records the new ones."""

    def __init__(self, past: list[tuple[Any, Any]]) -> None:
        self.past = past
        self.new: list[tuple[Any, Any]] = []

    def update(self, key: Any, value: Any, layer_idx: int, *args: Any, **kwargs: Any) -> tuple:
        import torch

        past_k, past_v = self.past[layer_idx]
        self.new.append((key, value))
        return torch.cat([past_k, key], dim=-2), torch.cat([past_v, value], dim=-2)


def _family(model: Any) -> str:
    name = type(model).__name__
    if name == "GPT2LMHeadModel":
        return "gpt2"
    if name in ("Qwen3ForCausalLM", "LlamaForCausalLM"):
        return "llama"
    raise DecodeError(f"KV-cache decoding supports GPT2LMHeadModel, Qwen3ForCausalLM and "
                      f"LlamaForCausalLM, got {name}")


def _unwrap(model: Any) -> Any:
    """The Hugging Face model inside perfcast's LogitsOnly example wrapper."""
    inner = getattr(model, "model", None)
    return inner if type(model).__name__ == "LogitsOnly" and inner is not None else model


def cache_shape(model: Any, capacity: int) -> tuple[int, int, int, int, int]:
    """(layers, 1, kv_heads, capacity, head_dim) of one of the two caches."""
    cfg = _unwrap(model).config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    heads = getattr(cfg, "num_key_value_heads", None) or getattr(cfg, "num_attention_heads",
                                                                  None) or cfg.n_head
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    qheads = getattr(cfg, "num_attention_heads", None) or cfg.n_head
    head_dim = getattr(cfg, "head_dim", None) or hidden // qheads
    return layers, 1, heads, capacity, head_dim


def cached_forward_module(model: Any) -> Any:
    """A torch module: ``(ids, positions, mask, k0, v0, k1, v1, ...) -> (logits, new k0,
    new v0, ...)`` over the Hugging Face model's layers (batch 1)."""
    import torch
    from torch import nn

    hf = _unwrap(model)
    family = _family(hf)

    class CachedForward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                    *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
            cache = _PastKV([(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)])
            if family == "gpt2":
                t = self.hf.transformer
                h = t.wte(ids) + t.wpe(positions)
                for block in t.h:
                    h = block(h, past_key_values=cache, attention_mask=mask)
                    h = h[0] if isinstance(h, tuple) else h
                h = t.ln_f(h)
            else:
                m = self.hf.model
                h = m.embed_tokens(ids)
                rotary = m.rotary_emb(h, positions)
                for layer in m.layers:
                    h = layer(h, attention_mask=mask, position_ids=positions,
                              past_key_values=cache, position_embeddings=rotary)
                    h = h[0] if isinstance(h, tuple) else h
                h = m.norm(h)
            logits = self.hf.lm_head(h)
            return (logits, *[t for kv in cache.new for t in kv])

    return CachedForward().eval()


def step_mask(filled: int, new: int, capacity: int) -> np.ndarray:
    """Bool [1, 1, new, capacity + new]: the first ``filled`` cache slots, then causal."""
    mask = np.zeros((1, 1, new, capacity + new), dtype=bool)
    mask[..., :filled] = True
    mask[0, 0, :, capacity:] = np.tril(np.ones((new, new), dtype=bool))
    return mask


@dataclass
class DecodeResult:
    tokens: list[int]                       # generated token ids (greedy)
    logits: list[np.ndarray] = field(repr=False)  # [vocab] logits that chose each token


class KVDecoder:
    """Greedy decoding with a KV cache of ``capacity`` positions on the perfcast runtime."""

    def __init__(self, model: Any, prompt_len: int, capacity: int, *, backend: str = "auto",
                 threads: int | None = None) -> None:
        import torch

        from perfcast.runtime.compile import compile

        if not 0 < prompt_len < capacity:
            raise DecodeError(f"need 0 < prompt_len < capacity, got prompt_len={prompt_len}, "
                              f"capacity={capacity}")
        self.capacity, self.prompt_len = capacity, prompt_len
        self.shape = cache_shape(model, capacity)
        module = cached_forward_module(model)
        past = [torch.zeros(self.shape[1:]) for _ in range(2 * self.shape[0])]

        def example(n: int) -> tuple:
            return (torch.zeros((1, n), dtype=torch.long), torch.arange(n)[None],
                    torch.from_numpy(step_mask(0, n, capacity)), *past)

        self.prefill = compile(module, example(prompt_len), backend=backend, threads=threads)
        self.step = compile(module, example(1), backend=backend, threads=threads)
        self.backend = self.step.backend

    def generate(self, prompt: np.ndarray, max_new_tokens: int) -> DecodeResult:
        """Greedy continuation of ``prompt`` ([prompt_len] or [1, prompt_len] int64 ids)."""
        ids = np.asarray(prompt, dtype=np.int64).reshape(1, -1)
        if ids.shape[1] != self.prompt_len:
            raise DecodeError(f"prompt has {ids.shape[1]} tokens; this decoder was compiled "
                              f"for {self.prompt_len}")
        if self.prompt_len + max_new_tokens > self.capacity + 1:
            raise DecodeError(f"{self.prompt_len} + {max_new_tokens} tokens exceed the cache "
                              f"capacity {self.capacity}")
        caches = np.zeros((2 * self.shape[0], *self.shape[1:]), dtype=np.float32)
        positions = np.arange(self.prompt_len, dtype=np.int64)[None]
        outs = self.prefill(ids, positions, step_mask(0, self.prompt_len, self.capacity),
                            *caches)
        filled = self._store(caches, outs[1:], 0)
        tokens, chosen = [], []
        logits = outs[0][0, -1]
        for _ in range(max_new_tokens):
            token = int(np.argmax(logits))
            tokens.append(token)
            chosen.append(logits)
            if len(tokens) == max_new_tokens:
                break
            outs = self.step(np.array([[token]], dtype=np.int64),
                             np.array([[filled]], dtype=np.int64),
                             step_mask(filled, 1, self.capacity), *caches)
            filled = self._store(caches, outs[1:], filled)
            logits = outs[0][0, -1]
        return DecodeResult(tokens, chosen)

    def _store(self, caches: np.ndarray, new: tuple, filled: int) -> int:
        """Write this call's keys/values at slots ``filled...``; the new fill level."""
        n = new[0].shape[-2]
        for cache, rows in zip(caches, new, strict=True):
            cache[..., filled:filled + n, :] = rows
        return filled + n
