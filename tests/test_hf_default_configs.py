"""Hugging Face causal LMs with their default configs (``use_cache=True``, SDPA attention)
on the perfcast runtime and in ``perfcast.optimize``.

The captured model returns the logits and every present key/value tensor
(:class:`perfcast.frontends.outputs.FlatOutputs`); each must equal eager PyTorch's.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from perfcast.frontends.outputs import flatten_tensors
from perfcast.runtime import RuntimeInputError, RuntimeLoweringError, cbuild, compile

LAYERS, SEQ, VOCAB = 2, 16, 256
SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": LAYERS,
         "num_attention_heads": 4, "vocab_size": VOCAB}


def _config(family: str):
    import transformers as tf

    if family == "gpt2":
        return tf.GPT2LMHeadModel, tf.GPT2Config(n_layer=LAYERS, n_embd=64, n_head=4,
                                                 vocab_size=VOCAB)
    if family == "llama":
        return tf.LlamaForCausalLM, tf.LlamaConfig(num_key_value_heads=2, **SIZES)
    if family == "gpt_neox":
        return tf.GPTNeoXForCausalLM, tf.GPTNeoXConfig(**SIZES)
    return tf.PhiForCausalLM, tf.PhiConfig(**SIZES)


@functools.cache
def _model(family: str) -> torch.nn.Module:
    cls, cfg = _config(family)
    torch.manual_seed(0)
    return cls(cfg).eval()


def _ids() -> torch.Tensor:
    return torch.randint(0, VOCAB, (1, SEQ), generator=torch.Generator().manual_seed(1))


def _eager(model: torch.nn.Module, *args, **kwargs) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in flatten_tensors(model(*args, **kwargs))]


def _check(got, want: list[np.ndarray]) -> None:
    assert isinstance(got, tuple) and len(got) == len(want) == 1 + 2 * LAYERS
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def _backend(backend: str) -> str:
    if backend == "c" and cbuild.unavailable_reason():
        pytest.skip(f"C backend unavailable: {cbuild.unavailable_reason()}")
    return backend


CASES = [("gpt2", "numpy"), ("gpt2", "c"), ("llama", "numpy"), ("llama", "c"),
         ("gpt_neox", "numpy"), ("phi", "numpy")]


@pytest.mark.parametrize(("family", "backend"), CASES)
def test_default_config_logits_and_cache_equal_eager(family: str, backend: str):
    model, ids = _model(family), _ids()
    assert model.config.use_cache and model.config._attn_implementation == "sdpa"
    compiled = compile(model, (ids,), backend=_backend(backend))
    _check(compiled(ids), _eager(model, ids))
    assert any(s.kind == "attention" for s in compiled.program.steps)  # still fused


@pytest.mark.parametrize(("family", "backend"), [("gpt2", "c"), ("llama", "numpy")])
def test_keyword_inputs_with_a_padding_mask(family: str, backend: str):
    model, ids = _model(family), _ids()
    mask = torch.ones(1, SEQ, dtype=torch.long)
    mask[0, SEQ - 4:] = 0  # right padding: the mask comes from the input, not constants
    compiled = compile(model, {"input_ids": ids, "attention_mask": mask},
                       backend=_backend(backend))
    _check(compiled(attention_mask=mask.numpy(), input_ids=ids.numpy()),
           _eager(model, input_ids=ids, attention_mask=mask))


def test_non_tensor_keyword_inputs_are_compiled_in():
    model, ids = _model("gpt2"), _ids()
    compiled = compile(model, {"input_ids": ids, "use_cache": True}, backend="numpy")
    assert [s.name for s in compiled.input_specs] == ["input_ids"]
    _check(compiled(input_ids=ids, use_cache=True), _eager(model, ids))
    with pytest.raises(RuntimeInputError, match="use_cache"):
        compiled(input_ids=ids, use_cache=False)


def test_indexing_off_a_strided_grid_is_refused_clearly():
    class Gather(torch.nn.Module):
        def forward(self, x):
            return x[:, torch.tensor([2, 0, 1])]

    with pytest.raises(RuntimeLoweringError, match="strided view"):
        compile(Gather(), (torch.randn(2, 3),), backend="numpy")


def test_optimize_measures_perfcast_runtime_on_a_default_config_gpt2():
    from perfcast.optimize import optimize

    model, ids = _model("gpt2"), _ids()
    report = optimize(model, (ids,), only=["perfcast-runtime", "onnxruntime"],
                      measure_all=True, budget_s=60.0, max_timing_s=0.3, threads=1)
    assert report.candidate("eager").status == "measured"
    runtime = report.candidate("perfcast-runtime")
    assert runtime.status == "measured", runtime.reason
    assert runtime.error.max_abs < 1e-4
    for result in report.candidates:  # ONNX Runtime too, where it is installed
        assert result.status not in ("failed", "rejected"), (result.name, result.reason)
