"""KV-cache decoding (prefill, then one step per token) against the model without a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from perfcast.pyfile import import_file
from perfcast.runtime import cbuild
from perfcast.runtime.decode import DecodeError, KVDecoder, step_mask

MODELS = import_file(Path(__file__).parent / "data" / "runtime_models.py",
                     "perfcast_test_runtime_models").MODELS
PROMPT, NEW, CAPACITY = 6, 8, 16


def _reference(model, ids: torch.Tensor, n: int) -> tuple[list[int], list[np.ndarray]]:
    """Greedy tokens and their logits from full forwards over the growing sequence."""
    tokens, logits = [], []
    with torch.inference_mode():
        for _ in range(n):
            last = model(ids).logits[0, -1].numpy()
            tokens.append(int(np.argmax(last)))
            logits.append(last)
            ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], dim=1)
    return tokens, logits


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name", ["gpt2", "qwen3"])
def test_cached_decoding_matches_full_forwards(name, backend):
    if backend == "c" and (reason := cbuild.unavailable_reason()):
        pytest.skip(f"C backend unavailable: {reason}")
    model, (ids,) = MODELS[name](seq=PROMPT)
    decoder = KVDecoder(model, prompt_len=PROMPT, capacity=CAPACITY, backend=backend)
    result = decoder.generate(ids.numpy(), NEW)
    tokens, logits = _reference(model, ids, NEW)
    assert result.tokens == tokens
    for got, want in zip(result.logits, logits, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)
    assert decoder.step.program.inputs[0] == "ids"  # one token per step
    assert decoder.step.input_specs[0].shape == (1, 1)


def test_step_mask_keeps_filled_slots_and_causal_new_positions():
    mask = step_mask(filled=2, new=3, capacity=4)
    assert mask.shape == (1, 1, 3, 7)
    assert mask[0, 0].astype(int).tolist() == [[1, 1, 0, 0, 1, 0, 0],
                                               [1, 1, 0, 0, 1, 1, 0],
                                               [1, 1, 0, 0, 1, 1, 1]]


def test_bad_decoding_requests_are_clear_errors():
    model, (ids,) = MODELS["gpt2"](seq=PROMPT)
    with pytest.raises(DecodeError, match="need 0 < prompt_len < capacity"):
        KVDecoder(model, prompt_len=8, capacity=8, backend="numpy")
    decoder = KVDecoder(model, prompt_len=PROMPT, capacity=CAPACITY, backend="numpy")
    with pytest.raises(DecodeError, match="compiled for 6"):
        decoder.generate(ids.numpy()[:, :3], 2)
    with pytest.raises(DecodeError, match="exceed the cache capacity 16"):
        decoder.generate(ids.numpy(), 12)
    bert, _ = MODELS["bert"]()
    with pytest.raises(DecodeError, match=r"supports GPT2LMHeadModel.*got BertModel"):
        KVDecoder(bert, prompt_len=4, capacity=8, backend="numpy")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "qwen3"])
def test_full_size_cached_decoding(name):
    model, (ids,) = MODELS[name](full=True, seq=PROMPT)
    decoder = KVDecoder(model, prompt_len=PROMPT, capacity=CAPACITY, backend="auto")
    result = decoder.generate(ids.numpy(), 4)
    tokens, logits = _reference(model, ids, 4)
    assert result.tokens == tokens
    for got, want in zip(result.logits, logits, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-5)
