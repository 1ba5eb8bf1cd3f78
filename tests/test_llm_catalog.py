"""The bundled LLM catalog: every entry loads and resolves by alias, the catalog agrees with
the models' Hugging Face config.json files, and bad input gets a specific error.

The fixtures under tests/data/hf_configs/ are the public config.json files of:
  Llama-3.1-8B     https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json
  Qwen3-30B-A3B    https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json
  DeepSeek-V3      https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json
  gpt-oss-120b     https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json
  gemma-3-27b-it   https://huggingface.co/google/gemma-3-27b-it/blob/main/config.json
                   (a multimodal wrapper: the language model sits in text_config)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfcast.frontends.llm import (
    ModelConfig,
    ModelConfigError,
    UnknownModelError,
    config_from_hf,
    list_models,
    load_hf_config,
    load_model,
    model_names,
)
from perfcast.frontends.llm.catalog import MODELS_DIR

HF_CONFIGS = Path(__file__).parent / "data" / "hf_configs"

REQUIRED_MODELS = {
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "qwen3-8b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "mixtral-8x7b",
    "deepseek-v3",
    "deepseek-r1",
    "gpt-oss-20b",
    "gpt-oss-120b",
    "gemma-3-27b",
}

# Architecture fields that a config.json determines; name, source and the published
# parameter counts are catalog-only.
ARCH_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "hidden_act",
    "attention_bias",
    "attention_output_bias",
    "qk_norm",
    "tie_word_embeddings",
    "max_position_embeddings",
    "moe",
    "mla",
    "sliding_window",
    "layer_types",
    "attention_sinks",
)

# fixture directory -> catalog entry it should reproduce
HF_FIXTURES = {
    "Llama-3.1-8B": "llama-3.1-8b",
    "Qwen3-30B-A3B": "qwen3-30b-a3b",
    "DeepSeek-V3": "deepseek-v3",
    "gpt-oss-120b": "gpt-oss-120b",
    "gemma-3-27b-it": "gemma-3-27b",
}


def _hf(name: str) -> dict[str, Any]:
    return json.loads((HF_CONFIGS / name / "config.json").read_text())


def _arch(model: ModelConfig) -> dict[str, Any]:
    return {f: getattr(model, f) for f in ARCH_FIELDS}


# ---------------------------------------------------------------- catalog integrity


def test_catalog_holds_the_required_models():
    names = set(model_names())
    assert len(names) >= 14
    assert names >= REQUIRED_MODELS, f"missing: {sorted(REQUIRED_MODELS - names)}"


@pytest.mark.parametrize("name", model_names())
def test_every_catalog_model_loads_and_cites_its_sources(name):
    model = load_model(name)
    assert model.name == name
    assert model.source.url and model.source.url.startswith("https://huggingface.co/")
    assert model.source.url.endswith("config.json")
    assert model.published_params is not None, f"{name}: no published parameter count"
    assert model.published_params.source.url
    if model.moe is not None:
        assert model.published_params.active is not None, f"{name}: MoE without active count"
        assert model.published_params.active < model.published_params.total


@pytest.mark.parametrize("name", model_names())
def test_aliases_resolve_to_their_model(name):
    model = load_model(name)
    assert model.aliases, f"{name} has no aliases (the Hugging Face repo id at least)"
    assert any("/" in a for a in model.aliases), f"{name}: no Hugging Face repo id alias"
    for alias in (model.display_name, *model.aliases):
        assert load_model(alias).name == name, alias
        assert load_model(alias.upper()).name == name, alias  # case-insensitive
        if "/" in alias:  # the repo name alone works too
            assert load_model(alias.rsplit("/", 1)[-1]).name == name, alias


def test_no_alias_is_claimed_by_two_models():
    owner: dict[str, str] = {}
    for model in list_models():
        for alias in {model.name, model.display_name.lower(), *(a.lower() for a in model.aliases)}:
            assert owner.setdefault(alias, model.name) == model.name, (
                f"{alias!r} names both {owner[alias]} and {model.name}"
            )


def test_catalog_files_are_named_after_their_model():
    for path in MODELS_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert data["name"] == path.stem


def test_r1_0528_checkpoints_are_deepseek_r1():
    for alias in (
        "deepseek-ai/DeepSeek-R1-0528",
        "nvidia/DeepSeek-R1-0528-FP4-V2",
        "amd/DeepSeek-R1-0528-MXFP4-Preview",
    ):
        assert load_model(alias).name == "deepseek-r1"
    assert load_model("openai/gpt-oss-120b").name == "gpt-oss-120b"
    assert load_model("Qwen/Qwen3-8B").name == "qwen3-8b"


def test_deepseek_r1_has_the_v3_architecture():
    assert _arch(load_model("deepseek-r1")) == _arch(load_model("deepseek-v3"))


def test_llama_33_70b_has_the_31_70b_architecture():
    assert _arch(load_model("llama-3.3-70b")) == _arch(load_model("llama-3.1-70b"))


def test_catalog_structure_of_special_models():
    ds = load_model("deepseek-v3")
    assert ds.mla is not None and ds.mla.qk_head_dim == ds.head_dim == 192
    assert ds.kv_heads == 1 and ds.kv_elements_per_token_layer == 512 + 64
    assert [moe for _, moe in ds.layer_kinds()] == [False] * 3 + [True] * 58

    oss = load_model("gpt-oss-120b")
    assert oss.layer_types == ["sliding_attention", "full_attention"] * 18
    assert oss.attention_sinks and oss.attention_bias and oss.attention_output_bias
    assert oss.moe is not None and oss.moe.expert_bias

    gemma = load_model("gemma-3-27b")
    assert gemma.layer_types is not None
    full = [i + 1 for i, t in enumerate(gemma.layer_types) if t == "full_attention"]
    assert full == list(range(6, 61, 6))  # 1-based: every 6th layer is global

    mixtral = load_model("mixtral-8x7b")
    assert mixtral.sliding_window is None and mixtral.layer_types is None


# ---------------------------------------------------------------- config.json agreement


@pytest.mark.parametrize("fixture,name", sorted(HF_FIXTURES.items()))
def test_hf_config_matches_catalog(fixture, name):
    parsed = load_hf_config(HF_CONFIGS / fixture)
    catalog = load_model(name)
    assert _arch(parsed) == _arch(catalog)


@pytest.mark.parametrize("fixture", sorted(HF_FIXTURES))
def test_hf_config_loads_by_path_through_load_model(fixture):
    path = HF_CONFIGS / fixture / "config.json"
    by_file = load_model(str(path))
    by_dir = load_model(HF_CONFIGS / fixture)
    assert _arch(by_file) == _arch(by_dir) == _arch(load_model(HF_FIXTURES[fixture]))
    assert by_file.source.title == str(path)


def test_gemma_wrapper_fills_transformers_defaults():
    # The released text_config names neither vocab_size nor the activation, the tying or
    # the layer pattern: they come from transformers' Gemma3TextConfig defaults.
    cfg = _hf("gemma-3-27b-it")
    assert "vocab_size" not in cfg["text_config"]
    model = config_from_hf(cfg, "gemma-3-27b-it")
    assert (model.vocab_size, model.hidden_act, model.tie_word_embeddings) == (
        262208,
        "gelu_tanh",
        True,
    )
    # A text-only gemma3_text config with explicit values keeps them.
    text = {
        **cfg["text_config"],
        "vocab_size": 1000,
        "tie_word_embeddings": False,
        "hidden_activation": "gelu",
    }
    explicit = config_from_hf(text, "g")
    assert (explicit.vocab_size, explicit.hidden_act, explicit.tie_word_embeddings) == (
        1000,
        "gelu",
        False,
    )


def test_all_full_layer_types_mean_no_sliding():
    cfg = {**_hf("Llama-3.1-8B"), "layer_types": ["full_attention"] * 32}
    model = config_from_hf(cfg, "llama")
    assert model.layer_types is None and model.sliding_window is None


# ---------------------------------------------------------------- bad input


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(text)
    return path


def test_malformed_json_names_line_and_column(tmp_path):
    path = _write(tmp_path, '{\n  "hidden_size": 4096,\n  "num_hidden_layers": 32\n  "x": 1\n}\n')
    with pytest.raises(ModelConfigError) as info:
        load_hf_config(path)
    msg = str(info.value)
    assert "not valid JSON" in msg and "line 4" in msg and "column 3" in msg
    assert str(path) in msg


def test_json_that_is_not_an_object(tmp_path):
    with pytest.raises(ModelConfigError, match="expected a JSON object"):
        load_hf_config(_write(tmp_path, "[1, 2, 3]"))


def test_missing_required_key_is_named(tmp_path):
    cfg = _hf("Llama-3.1-8B")
    del cfg["vocab_size"]
    with pytest.raises(ModelConfigError, match="vocab_size"):
        load_hf_config(_write(tmp_path, json.dumps(cfg)))


def test_missing_moe_key_is_named():
    cfg = _hf("Qwen3-30B-A3B")
    del cfg["moe_intermediate_size"]
    with pytest.raises(ModelConfigError, match="moe_intermediate_size"):
        config_from_hf(cfg, "qwen")


def test_heads_not_divisible_by_kv_heads(tmp_path):
    cfg = {**_hf("Llama-3.1-8B"), "num_key_value_heads": 7}
    with pytest.raises(ModelConfigError) as info:
        load_hf_config(_write(tmp_path, json.dumps(cfg)))
    msg = str(info.value)
    assert "num_attention_heads (32)" in msg and "num_key_value_heads (7)" in msg


def test_unknown_activation(tmp_path):
    cfg = {**_hf("Llama-3.1-8B"), "hidden_act": "swishglu_v9"}
    with pytest.raises(ModelConfigError) as info:
        load_hf_config(_write(tmp_path, json.dumps(cfg)))
    msg = str(info.value)
    assert "swishglu_v9" in msg and "silu" in msg


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError) as info:
        load_model("llama-3.1-7b")
    assert "llama-3.1-8b" in str(info.value)
    assert "llama-3.1-8b" in info.value.suggestions


def test_unknown_model_without_close_names():
    with pytest.raises(UnknownModelError) as info:
        load_model("zzzz-qqqq")
    assert info.value.suggestions == []
    assert "did you mean" not in str(info.value)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    with pytest.raises(ModelConfigError) as info:
        load_model(str(missing))
    assert "cannot read" in str(info.value) and str(missing) in str(info.value)


def test_errors_are_value_errors():
    assert issubclass(ModelConfigError, ValueError)
    assert issubclass(UnknownModelError, ModelConfigError)
