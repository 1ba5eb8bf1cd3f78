"""Models as users bring them: factories with their own defaults, Hugging Face configs
and default-config `transformers` models (cache on), and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from perfcast.cli.main import app
from perfcast.frontends.errors import CaptureError
from perfcast.frontends.hf_models import build_hf_model, load_config
from perfcast.frontends.torch_export import capture

USER = Path(__file__).parent / "data" / "user_models.py"
runner = CliRunner()
LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}


def _analyze(*args: str) -> dict:
    result = runner.invoke(app, ["analyze", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _one_line_error(*args: str) -> str:
    result = runner.invoke(app, ["analyze", *args])
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    return text


def test_factory_default_batch_is_kept_unless_given():
    per_row = 2 * 512 * 2048 + 2048 + 2 * 2048 * 512 + 512  # two Linear layers with bias
    own = _analyze(f"{USER}:wide_mlp")
    assert own["totals"]["flops_by_category"]["gemm"] == 16 * per_row
    given = _analyze(f"{USER}:wide_mlp", "--batch", "1")
    assert given["totals"]["flops_by_category"]["gemm"] == per_row


def test_factory_seq_len_alone_overrides_only_seq_len():
    # Linear(64, 64) on [batch, seq_len, 64]: the factory's batch 2, the given seq_len 8
    d = _analyze(f"{USER}:token_model", "--seq-len", "8")
    assert d["totals"]["flops_by_category"]["gemm"] == 2 * 8 * (2 * 64 * 64 + 64)


def test_hugging_face_config_json_is_built_on_meta_and_estimated(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_CONFIG))
    d = _analyze(str(path), "--seq-len", "64")
    model, _ = build_hf_model(load_config(dict(LLAMA_CONFIG)))
    assert d["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert d["totals"]["time_s"] > 0 and d["unsupported_ops"] == {}
    # 2 layers x (q, k, v, o, gate, up, down) + LM head, each 2*M*K*N at M = 64 tokens
    per_token = 2 * (2 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 512) + 256 * 1000)
    assert d["totals"]["flops_by_category"]["gemm"] == 64 * per_token


@pytest.mark.parametrize("model_type,small", [
    ("gpt2", {"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 256}),
    ("llama", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256}),
    ("gpt_neox", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "vocab_size": 256}),
    ("phi", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 256}),
])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_default_config_causal_lm_captures_with_its_cache(model_type, small, attn):
    """use_cache stays on: the present keys and values are outputs, as eager returns them."""
    config = load_config({"model_type": model_type}, small)
    assert config.use_cache
    model, inputs = build_hf_model(config, auto="AutoModelForCausalLM", seq_len=16,
                                   device="cpu", attn_implementation=attn)
    assert list(inputs) == ["input_ids", "attention_mask"]  # keyword inputs, as users call it
    graph = capture(model, inputs).graph
    assert graph.inputs == ["input_ids", "attention_mask"]
    shapes = [graph.tensors[o].shape for o in graph.outputs]
    assert shapes[0] == (1, 16, 256)  # logits first
    assert len(shapes) == 1 + 2 * 2  # then a key and a value per layer
    assert all(s[2] == 16 for s in shapes[1:])  # [batch, kv heads, seq, head dim]
    assert dict(graph.unsupported()) == {}
    kinds = {n.kind for n in graph.nodes}
    assert ("scaled_dot_product_attention" in kinds) == (attn == "sdpa")
    assert not any(p.startswith("perfcast_model") for p in (n.module for n in graph.nodes))


def test_data_dependent_control_flow_names_the_module():
    text = _one_line_error(f"{USER}:branchy")
    assert "torch.export failed for Branchy at module 'gate' (Gate.forward" in text
    assert "data-dependent control flow" in text and "hint:" in text


def test_data_dependent_error_from_the_api_is_one_line():
    model, inputs = torch.nn.Sequential(torch.nn.Linear(4, 4)), (torch.randn(2, 4),)
    capture(model, inputs)  # fine
    from tests.data.user_models import branchy

    with pytest.raises(CaptureError) as info:
        capture(*branchy())
    assert "\n" not in str(info.value)


def test_unknown_config_architecture(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "lama", "hidden_size": 64}))
    text = _one_line_error(str(path))
    assert "model_type 'lama' is not an architecture transformers" in text
    assert "did you mean llama" in text


def test_config_without_model_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64}))
    assert "not a Hugging Face config (needs a 'model_type' string)" in _one_line_error(str(path))


def test_corrupt_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4)
    assert "error:" in _one_line_error(str(path))


def test_corrupt_onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x04junk" + bytes(range(255, 0, -1)))
    assert "not an ONNX model" in _one_line_error(str(path))


def test_onnx_file_with_unsupported_opset(tmp_path):
    import onnx
    from onnx import helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 4])],
                              [helper.make_tensor_value_info("y", 1, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)])
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    text = _one_line_error(str(path))
    assert f"uses opset 99; supported: 7 to {onnx.defs.onnx_opset_version()}" in text


def test_missing_model_file():
    assert "does not exist" in _one_line_error("no/such/model.onnx")


def test_zoo_target_at_published_size():
    d = _analyze("zoo:resnet50", "--batch", "2")
    assert d["totals"]["params"] == 25_557_032  # torchvision's published ResNet-50
    assert d["totals"]["flops_by_category"]["conv"] > 2 * 4.0e9 * 2 * 0.9  # ~4.1 GMAC/image
