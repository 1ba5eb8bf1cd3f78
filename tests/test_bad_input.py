"""Bad input gets a clear, specific error: never a deep traceback, never silent zeros."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfcast.estimate.analyze import estimate_prepared, prepare
from perfcast.estimate.efficiency import Confidence
from perfcast.frontends import CaptureError, TargetError, load_target
from perfcast.hardware import UnknownHardwareError, load_spec

FACTORIES = Path(__file__).parent / "data" / "factories.py"


def test_unknown_hardware_suggests_closest_names():
    with pytest.raises(UnknownHardwareError, match="did you mean h100-sxm"):
        load_spec("h100-sxn")


def test_factory_that_raises_is_summarized():
    with pytest.raises(TargetError) as info:
        load_target(f"{FACTORIES}:broken_factory")
    msg = str(info.value)
    assert "broken_factory() failed" in msg and "ckpt.bin" in msg
    assert "Traceback" not in msg and len(msg.splitlines()) <= 8


def test_factory_must_return_a_pair():
    with pytest.raises(TargetError, match=r"must return \(model, example_inputs\), got Linear"):
        load_target(f"{FACTORIES}:not_a_pair")


@pytest.mark.parametrize(("target", "message"), [
    ("nowhere.py:f", "does not exist"),
    (f"{FACTORIES}:missing", "has no callable 'missing'"),
    ("resnet", "not of the form"),
    ("examples:gtp2", "did you mean gpt2"),
])
def test_malformed_targets(target, message):
    with pytest.raises(TargetError, match=message):
        load_target(target)


def test_model_that_fails_to_export_is_summarized():
    loaded = load_target(f"{FACTORIES}:fails_export")
    with pytest.raises(CaptureError) as info:
        prepare(loaded.model, loaded.example_inputs)
    msg = str(info.value)
    assert msg.startswith("torch.export failed for _DataDependent")
    assert len(msg) < 1200 and "Traceback" not in msg


def test_unsupported_ops_are_listed_and_lower_confidence():
    loaded = load_target(f"{FACTORIES}:with_custom_op")
    est = estimate_prepared(prepare(loaded.model, loaded.example_inputs), "h100-sxm")
    assert est.unsupported_ops == {"mystery": 2}
    assert est.confidence is Confidence.PARTIAL
    assert any("unknown to the registry" in n for n in est.notes)
    mystery = [k for k in est.kernels if not k.kernel.supported]
    assert len(mystery) == 2
    # never counted as zero time: each moves its input and output, 2*32 fp32 each way
    assert all(k.kernel.bytes == 2 * 2 * 32 * 4 and k.time_s > 0 for k in mystery)


@pytest.mark.parametrize("name", ["a" * 300, "x" * 5000])
def test_overlong_names_are_unknown_not_os_errors(name):
    """A name longer than any file name once reached the file system (OSError)."""
    from perfcast.frontends.llm.catalog import load_model
    from perfcast.frontends.llm.errors import ModelConfigError

    with pytest.raises(UnknownHardwareError, match="unknown hardware"):
        load_spec(name)
    with pytest.raises(ModelConfigError, match="unknown model"):
        load_model(name)


# ---------------------------------------------------------------- issue 18 reproductions

HF_DIR = Path(__file__).parent / "data" / "hf_configs"


def _hf(name: str) -> dict:
    import json

    return json.loads((HF_DIR / name / "config.json").read_text())


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("num_attention_heads", 0, "an integer from 1"),
    ("num_attention_heads", [], "an integer from 1"),
    ("head_dim", 2**63, "an integer from 1"),
    ("num_hidden_layers", 10**18, "an integer from 1 to 4096"),
    ("num_hidden_layers", True, "an integer from 1"),
    ("hidden_size", 4096.0, "an integer from 1"),
    ("tie_word_embeddings", 1, "true or false"),
    ("layer_types", "full_attention", "a list"),
])
def test_mutated_hf_config_fields_are_refused_before_use(key, value, allowed):
    from perfcast.frontends.llm import ModelConfigError, config_from_hf

    with pytest.raises(ModelConfigError) as info:
        config_from_hf({**_hf("Llama-3.1-8B"), key: value}, "m")
    msg = str(info.value)
    assert key in msg and allowed in msg and "\n" not in msg


def test_model_type_that_would_drop_moe_and_mla_is_refused():
    from perfcast.frontends.llm import ModelConfigError, config_from_hf

    with pytest.raises(ModelConfigError, match=r"'bert' is not a decoder-only LLM.*deepseek_v3"):
        config_from_hf({**_hf("DeepSeek-V3"), "model_type": "bert"}, "m")
    with pytest.raises(ModelConfigError, match="would ignore the mixture-of-experts key"):
        config_from_hf({**_hf("DeepSeek-V3"), "model_type": "phi3"}, "m")
    with pytest.raises(ModelConfigError, match="would ignore the latent-attention"):
        config_from_hf({**_hf("DeepSeek-V3"), "model_type": "mixtral",
                        "num_local_experts": 256, "intermediate_size": 2048}, "m")


def test_huge_serving_workload_has_no_overflow_and_limits_are_stated():
    import math

    import perfcast.llm as llm

    est = llm.estimate("llama-3.1-405b", "h100-sxm", tp=8, isl=10**7, osl=10**7,
                       concurrency=10**6)
    kv = est.to_dict()["memory_bytes"]["kv_cache"]
    assert math.isfinite(kv) and kv > 1e18
    with pytest.raises(ValueError, match="isl must be at most 100,000,000"):
        llm.estimate("llama-3.1-8b", "h100-sxm", isl=10**9)
    with pytest.raises(ValueError, match="concurrency must be at most 10,000,000"):
        llm.estimate("llama-3.1-8b", "h100-sxm", concurrency=10**8)


@pytest.mark.parametrize("path", ["/dev/null", "/proc", "/x/" + "a" * 5000])
def test_db_that_is_not_a_regular_file_is_a_store_error(path):
    from perfcast.store import Store
    from perfcast.store.errors import StoreError

    with pytest.raises(StoreError) as info:
        Store(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_hardware_yaml_refuses_booleans_and_non_finite_numbers(tmp_path):
    import yaml

    from perfcast.hardware import CatalogError
    from perfcast.hardware.loader import load_spec_file

    raw = yaml.safe_load((Path(__file__).parents[1] / "src/perfcast/hardware/catalog"
                          / "h100-sxm.yaml").read_text())
    for value in (True, float("nan"), float("inf"), 1e-300):
        raw["memory"][0]["capacity_bytes"] = value
        path = tmp_path / "h100-sxm.yaml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(CatalogError, match="capacity_bytes"):
            load_spec_file(path)


def test_onnx_negative_dimension_is_an_import_error():
    import onnx

    import fuzz_strategies as fs
    from perfcast.frontends.onnx_import import OnnxImportError, import_onnx

    model = onnx.load_model_from_string(fs.onnx_seed())
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -16
    with pytest.raises(OnnxImportError):
        import_onnx(model.SerializeToString(), dims={"batch": 1})
