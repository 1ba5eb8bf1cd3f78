"""``perfcast run`` and ``perfcast compare-engines``: outputs checked, errors exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from perfcast.cli.main import app

runner = CliRunner()

FACTORY = """
import torch
from torch import nn

def tiny(batch=1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8), nn.Softmax(-1))
    return model.eval(), (torch.randn(batch, 32),)

def convnet(batch=1):
    return nn.Sequential(nn.Conv2d(3, 4, 3)).eval(), (torch.randn(batch, 3, 8, 8),)
"""


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime_cli") / "models.py"
    path.write_text(FACTORY)
    return path


def test_run_json_reports_the_check_and_the_plan(factory):
    result = runner.invoke(app, ["run", f"{factory}:tiny", "--backend", "numpy", "--batch", "3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["backend"] == "numpy"
    assert d["outputs"] == [{"shape": [3, 8], "dtype": "float32"}]
    assert d["max_abs_err_vs_torch"] < 1e-6
    plan = d["plan"]
    assert 0 < plan["arena_bytes"] <= plan["naive_bytes"]
    assert d["steps"] == 3  # gemm+gelu, gemm, softmax


def test_run_human_report_with_bench(factory):
    result = runner.invoke(app, ["run", f"{factory}:tiny", "--backend", "numpy", "--bench"])
    assert result.exit_code == 0, result.output
    for text in ("backend numpy", "max |perfcast - torch|", "gemm 2, softmax 1", "memory: arena",
                 "perfcast", "eager"):
        assert text in result.output


def test_run_unsupported_op_names_node_and_kind(factory):
    result = runner.invoke(app, ["run", f"{factory}:convnet", "--backend", "numpy"])
    assert result.exit_code == 2
    assert "node 'conv2d' (conv2d): op kind 'conv2d' is not supported" in result.output
    assert "Traceback" not in result.output


def test_run_bad_backend_and_target_exit_2(factory):
    result = runner.invoke(app, ["run", f"{factory}:tiny", "--backend", "cuda"])
    assert result.exit_code == 2 and "--backend must be c, numpy or auto" in result.output
    result = runner.invoke(app, ["run", f"{factory}:nope"])
    assert result.exit_code == 2 and "has no callable 'nope'" in result.output


def test_compare_engines_json(factory):
    result = runner.invoke(app, ["compare-engines", f"{factory}:tiny", "-e", "perfcast-numpy",
                                 "-e", "eager", "--budget", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    by_name = {r["engine"]: r for r in d["results"]}
    assert set(by_name) == {"perfcast-numpy", "eager"}
    assert by_name["eager"]["max_abs_err"] == 0.0
    assert by_name["perfcast-numpy"]["max_abs_err"] < 1e-6
    for r in by_name.values():
        lo, hi = r["ci95_s"]
        assert 0 < lo <= r["median_s"] <= hi


def test_compare_engines_table_and_bad_engine(factory):
    result = runner.invoke(app, ["compare-engines", f"{factory}:tiny", "-e", "perfcast-numpy",
                                 "-e", "eager", "--budget", "0.2"])
    assert result.exit_code == 0, result.output
    assert "vs eager" in result.output and "1.00x" in result.output
    result = runner.invoke(app, ["compare-engines", f"{factory}:tiny", "-e", "tvm"])
    assert result.exit_code == 2
    assert "unknown engine(s) 'tvm'; allowed: perfcast-c, perfcast-numpy" in result.output
