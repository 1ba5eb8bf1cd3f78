"""Fuzzed inputs of every kind: a result with finite, non-negative numbers, or the
boundary's own error with a one-line message; never another exception, never a 500.

The fast profile (default) runs a few cases per kind; ``PERFCAST_FUZZ=long`` (``make
fuzz``) runs at least 10,000 cases in all and prints the count per kind.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings

import fuzz_strategies as fs
from perfcast.app import service
from perfcast.app.api import create_app
from perfcast.app.errors import ServiceError
from perfcast.frontends.llm import ModelConfigError, config_from_hf, load_model
from perfcast.frontends.tflite_import import TFLiteImportError, import_tflite_bytes
from perfcast.hardware import HardwareError, UnknownHardwareError, load_spec
from perfcast.hardware.loader import load_spec_file

LONG = os.environ.get("PERFCAST_FUZZ") == "long"
# Cases per kind: fast profile (default test run), long profile (make fuzz).
CASES = {"names": (40, 2000), "hf_config": (40, 2500), "hardware_yaml": (20, 1500),
         "onnx": (10, 1200), "tflite": (15, 1200), "api_body": (10, 1000),
         "llm_args": (15, 1000), "mcp_args": (15, 1000), "db_paths": (20, 1000)}
COUNTS: Counter[str] = Counter()


def _settings(kind: str) -> settings:
    return settings(max_examples=CASES[kind][LONG], deadline=30_000, database=None,
                    derandomize=not LONG, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nfuzz cases per kind: " + ", ".join(f"{k} {n}" for k, n in COUNTS.items())
          + f"; total {sum(COUNTS.values())}")


def assert_sane(value: Any, where: str = "result") -> None:
    """Every number in ``value`` (nested dicts/lists) is finite and non-negative."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert_sane(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            assert_sane(v, f"{where}[{i}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        assert math.isfinite(value) and value >= 0, f"{where} = {value}"


def assert_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 1000 and "Traceback" not in text, text


@settings(parent=_settings("names"))
@given(fs.names())
@example("a" * 894)
@example("~0")
@example("\x00\\")
@example("x\x00y")
@example("../../etc/passwd")
def test_names(name: str) -> None:
    COUNTS["names"] += 1
    try:
        load_model(name)
    except ModelConfigError as exc:
        assert_one_line(exc)
    try:
        load_spec(name)
    except UnknownHardwareError as exc:
        assert_one_line(exc)
    except HardwareError as exc:  # a path: the file's problems, one per line
        assert str(exc).startswith("invalid hardware spec")


@settings(parent=_settings("hf_config"))
@given(fs.hf_configs())
@example({**fs._hf_seeds()[0], "model_type": "bert"})
@example({**fs._hf_seeds()[1], "num_attention_heads": 0})
@example({**fs._hf_seeds()[1], "num_attention_heads": []})
@example({**fs._hf_seeds()[1], "head_dim": 2**63})
@example({**fs._hf_seeds()[1], "num_hidden_layers": 10**18})
@example({**fs._hf_seeds()[1], "num_hidden_layers": True})
def test_hf_config(cfg: Any) -> None:
    COUNTS["hf_config"] += 1
    try:
        model = config_from_hf(cfg, "fuzzed")
    except ModelConfigError as exc:
        assert_one_line(exc)
        return
    from perfcast.frontends.llm.graph import kv_cache_bytes
    from perfcast.frontends.llm.parallel import Parallelism
    from perfcast.frontends.llm.precision import PRESETS

    kv = float(kv_cache_bytes(model, Parallelism(), PRESETS["bf16"], 10**7, 10**8))
    assert math.isfinite(kv) and kv > 0


_TMP = Path(tempfile.mkdtemp(prefix="perfcast-fuzz-"))


@settings(parent=_settings("hardware_yaml"))
@given(fs.hardware_yaml())
@example(("h100-sxm", {**fs._hw_seeds()[0][1], "name": fs._hw_seeds()[0][0]}))
def test_hardware_yaml(item: tuple[str, Any]) -> None:
    COUNTS["hardware_yaml"] += 1
    stem, spec = item
    path = _TMP / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        hw = load_spec_file(path)
    except HardwareError as exc:
        assert str(exc).startswith(f"invalid hardware spec {path}")
        return
    assert_sane([hw.memory_capacity, hw.memory_bandwidth,
                 *(hw.peak_flops(p) for p in hw.compute)])


@settings(parent=_settings("onnx"))
@given(fs.onnx_models())
@example(fs.onnx_seed())
def test_onnx(data: bytes) -> None:
    COUNTS["onnx"] += 1
    try:
        result = service.analyze_onnx(data, ["h100-sxm"], dims={"batch": 2})
    except ServiceError as exc:
        assert exc.field and "\n" not in exc.reason
        return
    assert_sane([{k: v for k, v in r.items() if k != "kernels"} for r in result])


@settings(parent=_settings("tflite"))
@given(fs.tflite_models())
def test_tflite(data: bytes) -> None:
    COUNTS["tflite"] += 1
    try:
        captured = import_tflite_bytes(data, name="fuzzed")
    except TFLiteImportError as exc:
        assert_one_line(exc)
        return
    assert_sane([captured.params, captured.param_bytes])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    db = tmp_path_factory.mktemp("fuzz") / "store.db"
    app = create_app(db_path=db, allowed_hosts=["127.0.0.1", "localhost"])
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@settings(parent=_settings("api_body"))
@given(body=fs.api_bodies())
@example(body='{"model": "llama-3.1-8b", "isl": NaN}')
@example(body='{"model": "llama-3.1-8b", "isl": 1e400}')
@example(body='{"model": "llama-3.1-8b", "tp": true}')
@example(body='{"model": "\\u001f\\ud800", "isl": 1}')
@example(body='{"model": "llama-3.1-8b", "tp": 2.0}')
@example(body='{"model": "llama-3.1-8b", "isl": ' + "9" * 5000 + "}")
def test_api_body(client: TestClient, body: str) -> None:
    COUNTS["api_body"] += 1
    answer = client.post("/api/llm/estimate", content=body,
                         headers={"content-type": "application/json"})
    assert answer.status_code in (200, 404, 413, 422), answer.text[:300]
    data = answer.json()
    if answer.status_code == 200:
        assert_sane({k: v for k, v in data.items() if k != "layers"})
    else:
        assert {"error", "field", "reason"} <= set(data)


@settings(parent=_settings("llm_args"))
@given(fs.llm_arguments())
@example({"model": "llama-3.1-405b", "hardware": "h100-sxm", "tp": 8, "isl": 10**7,
          "osl": 10**7, "concurrency": 10**6})
@example({"model": "llama-3.1-405b", "hardware": "h100-sxm", "tp": 8, "isl": 10**8,
          "osl": 10**8, "concurrency": 10**7})
@example({"model": "llama-3.1-8b", "hardware": "h100-sxm", "concurrency": "\n"})
def test_llm_arguments(kwargs: dict[str, Any]) -> None:
    import perfcast.llm as llm

    COUNTS["llm_args"] += 1
    try:
        est = llm.estimate(**kwargs)
    except ValueError as exc:
        assert_one_line(exc)
        return
    assert_sane(est.to_dict())


MCP_TOOLS = {  # tool -> argument names it takes (fuzzed values; extra names are fuzzed too)
    "show_hardware": ["name"],
    "llm_estimate": ["model", "hardware", "tp", "pp", "ep", "dp", "dp_attention", "isl",
                     "osl", "concurrency", "precision"],
    "list_runs": ["limit", "target", "status"],
    "compare_runs": ["run_a", "run_b", "min_effect", "allow_environment_change"],
    "analyze": ["model", "hardware", "dtype", "batch", "seq_len", "target"],
}


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory: pytest.TempPathFactory):
    from perfcast.app.mcp_server import build_server

    return build_server(tmp_path_factory.mktemp("mcp") / "store.db")


@settings(parent=_settings("mcp_args"))
@given(call=fs.mcp_calls(MCP_TOOLS))
@example(call=("llm_estimate", {"model": "llama-3.1-8b", "isl": float("nan")}))
@example(call=("llm_estimate", {"model": "llama-3.1-8b", "tp": True}))
@example(call=("analyze", {"model": "x" * 5000}))
@example(call=("compare_runs", {"run_a": "\x00", "run_b": "../../etc"}))
def test_mcp_arguments(mcp_server, call: tuple[str, dict[str, Any]]) -> None:
    """A tool call returns a sane result or the MCP boundary's ToolError, nothing else."""
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    COUNTS["mcp_args"] += 1
    name, arguments = call
    try:
        result = anyio.run(mcp_server.call_tool, name, arguments)
    except ToolError as exc:
        assert "Traceback" not in str(exc)
        return
    assert_sane(getattr(result, "structured_content", None) or {})


@settings(parent=_settings("db_paths"))
@given(fs.db_paths())
@example("/dev/null")
@example("\x00")
@example("a" * 5000)
@example("/")
def test_db_paths(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    """A store path opens (inside a scratch folder) or raises one StoreError line."""
    from perfcast.store import Store, StoreError

    COUNTS["db_paths"] += 1
    base = tmp_path_factory.mktemp("db")
    path = text if text.startswith("/dev/") or text == "/" else str(base / text)
    try:
        with Store(path):
            pass
    except StoreError as exc:
        assert_one_line(exc)


def test_fuzzed_analyze_names_are_never_examples():
    """mcp_calls keeps real captures out of the fuzz loop; its list must stay complete."""
    from perfcast.examples import list_examples

    assert {e.name for e in list_examples()} == fs.EXAMPLE_NAMES
