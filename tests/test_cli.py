"""The analyze command: JSON schema, human report, errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from perfcast.cli.main import app

FACTORIES = Path(__file__).parent / "data" / "factories.py"
runner = CliRunner()


def test_analyze_json_schema():
    result = runner.invoke(app, ["analyze", f"{FACTORIES}:small_mlp", "--hardware", "h100",
                                 "--batch", "8", "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["hardware"] == "h100-sxm" and d["dtype"] == "float32" and d["target"] == "eager"
    totals = d["totals"]
    assert set(totals) == {"flops", "flops_by_category", "bytes", "time_s", "params",
                           "memory_bytes", "energy_j"}
    assert totals["params"] == 64 * 128 + 128 + 128 * 10 + 10
    assert totals["flops_by_category"]["gemm"] == 8 * (2 * 64 * 128 + 128 + 2 * 128 * 10 + 10)
    assert set(totals["memory_bytes"]) == {"weights", "activations_peak"}
    kernel_keys = {"name", "op", "category", "flops", "bytes", "time_s", "bound"}
    assert all(kernel_keys <= set(k) for k in d["kernels"])
    assert d["unsupported_ops"] == {} and d["confidence"] == "THEORETICAL"


def test_analyze_two_devices_human_report():
    result = runner.invoke(app, ["analyze", "examples:convmix", "-H", "l4", "-H", "mi300x",
                                 "--dtype", "fp16", "--top", "3"])
    assert result.exit_code == 0, result.output
    for text in ("convmix on l4", "convmix on mi300x", "top 3 kernels", "per-layer summary",
                 "hardware comparison", "FLOPs by category"):
        assert text in result.output


def test_analyze_unknown_hardware_exits_2_with_suggestion():
    result = runner.invoke(app, ["analyze", "examples:mlp", "--hardware", "a100-sxm-8gb"])
    assert result.exit_code == 2
    assert "did you mean a100-sxm-80gb" in result.output
    assert "Traceback" not in result.output


def test_analyze_failing_factory_exits_2():
    result = runner.invoke(app, ["analyze", f"{FACTORIES}:broken_factory"])
    assert result.exit_code == 2
    assert "ckpt.bin" in result.output and "Traceback" not in result.output


def test_analyze_precision_the_device_lacks():
    result = runner.invoke(app, ["analyze", "examples:mlp", "-H", "a100", "--dtype", "fp8"])
    assert result.exit_code == 2
    assert "a100-sxm-80gb has no float8_e4m3fn peak" in result.output
    assert "available: fp64, fp32, tf32, bf16, fp16, int8" in result.output


def test_list_examples():
    result = runner.invoke(app, ["analyze", "--list-examples"])
    assert result.exit_code == 0
    assert "examples:llama3-70b" in result.output and "config.json" in result.output
