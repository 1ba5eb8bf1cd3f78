"""The ``perfcast`` fusion target costs exactly the steps perfcast's runtime runs: one
estimated kernel per program step, in order and of the same kind; the runtime times each
step; ``validate kernels --engine perfcast`` pairs the two."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import perfcast.runtime as rt
from perfcast.estimate.analyze import estimate_prepared, prepare
from perfcast.frontends.torch_export import capture
from perfcast.passes import get_target
from perfcast.runtime import cbuild

_SPEC = importlib.util.spec_from_file_location(
    "runtime_models", Path(__file__).parent / "data" / "runtime_models.py")
models = importlib.util.module_from_spec(_SPEC)  # type: ignore[arg-type]
_SPEC.loader.exec_module(models)  # type: ignore[union-attr]

FACTORY = '''
import torch
from torch import nn

def tiny(batch=1, seq_len=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.LayerNorm(64), nn.Linear(64, 8))
    return model.eval(), (torch.randn(batch, 32),)
'''


@pytest.fixture(scope="module", params=["gpt2", "bert", "qwen3", "block"])
def compiled(request):
    model, inputs = models.MODELS[request.param]()
    return rt.compile(model, inputs, backend="numpy"), model, inputs


def test_kernels_are_the_runtime_steps(compiled):
    program_model, model, inputs = compiled
    prepared = prepare(model, inputs)  # no weights: the estimator's own capture
    kernels = prepared.kernels(get_target("perfcast"))
    steps = program_model.program.steps
    assert [k.step for k in kernels] == [s.kind for s in steps]
    est = estimate_prepared(prepared, "h100-sxm", target="perfcast")
    assert len(est.kernels) == len(steps) and float(est.totals.time_s) > 0
    gemms = [k for k in kernels if k.step == "gemm"]
    assert gemms and all(k.category.value == "gemm" and k.shape is not None for k in gemms)


def test_estimate_without_values_matches_one_with_them():
    """Folding without values gives the graph folding with values gives (same steps)."""
    model, inputs = models.gpt2()
    with_values = capture(model, inputs, keep_weights=True)
    compiled = rt.compile_graph(with_values.graph, with_values.weights, backend="numpy")
    kernels = prepare(model, inputs).kernels(get_target("perfcast"))
    assert len(kernels) == len(compiled.program.steps)


def test_unsupported_ops_still_get_a_kernel():
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval()
    prepared = prepare(model, (torch.randn(1, 3, 16, 16),))
    kernels = prepared.kernels(get_target("perfcast"))
    assert [k.step for k in kernels] == ["op", "unary"]
    assert kernels[0].category.value == "conv" and kernels[0].shape is not None


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_per_step_timing_returns_one_time_per_step(backend):
    if backend == "c" and cbuild.unavailable_reason() is not None:
        pytest.skip(cbuild.unavailable_reason())
    model, inputs = models.block()
    compiled = rt.compile(model, inputs, backend=backend)
    outs, times = compiled.run_timed(*inputs)
    assert len(times) == len(compiled.program.steps)
    assert all(t >= 0 for t in times) and sum(times) > 0
    np.testing.assert_array_equal(outs[0], compiled(*inputs))


def test_validate_kernels_engine_perfcast(tmp_path):
    from perfcast.cli.validate_kernels import kernels

    app = typer.Typer()
    app.command("kernels")(kernels)
    app.callback()(lambda: None)
    factory = tmp_path / "tiny.py"
    factory.write_text(FACTORY)
    result = CliRunner().invoke(app, ["kernels", f"{factory}:tiny", "--engine", "perfcast",
                                      "--threads", "1", "--profile", "none", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["engine"] == "perfcast" and data["match_rate"] == 1.0
    assert [m["measured_ops"][0] for m in data["matches"]] == ["gemm", "layer_norm", "gemm"]
    assert set(data["by_category"]) == {"gemm", "norm"}
    bad = CliRunner().invoke(app, ["kernels", f"{factory}:tiny", "--engine", "tvm"])
    assert bad.exit_code == 2 and "allowed: eager, perfcast" in bad.output
