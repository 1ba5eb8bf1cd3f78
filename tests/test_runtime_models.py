"""Whole models on the perfcast runtime against PyTorch (fp32, tight tolerance).

Small configurations of the MLP, a transformer block (SDPA and written-out attention),
GPT-2, BERT and a Qwen3-architecture model run by default, on the NumPy backend and on
the C backend (skipped with the reason when it cannot be built here). The full GPT-2
small, BERT-base and Qwen3-0.6B configurations are marked slow.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from perfcast.frontends.torch_export import capture
from perfcast.pyfile import import_file
from perfcast.runtime import cbuild
from perfcast.runtime.compile import (
    BackendUnavailable,
    RuntimeInputError,
    compile,
    compile_graph,
)
from perfcast.runtime.engines import flatten_outputs

MODELS = import_file(Path(__file__).parent / "data" / "runtime_models.py",
                     "perfcast_test_runtime_models").MODELS
SMALL = ["mlp", "block", "block_manual", "gpt2", "bert", "qwen3"]
RTOL, ATOL = 1e-4, 2e-5


@functools.cache
def _captured(name: str):
    model, inputs = MODELS[name]()
    with torch.inference_mode():
        want = flatten_outputs(model(*inputs))
    cap = capture(model, inputs, keep_weights=True)
    return cap, [x.numpy() for x in inputs], want


def _check(compiled, inputs, want) -> None:
    got = compiled(*inputs)
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def _c_skip() -> None:
    reason = cbuild.unavailable_reason()
    if reason:
        pytest.skip(f"C backend unavailable: {reason}")


@pytest.mark.parametrize("name", SMALL)
def test_small_models_match_pytorch_on_numpy(name):
    cap, inputs, want = _captured(name)
    compiled = compile_graph(cap.graph, cap.weights, backend="numpy")
    assert compiled.backend == "numpy"
    _check(compiled, inputs, want)


@pytest.mark.parametrize("name", SMALL)
def test_small_models_match_pytorch_on_c(name):
    _c_skip()
    cap, inputs, want = _captured(name)
    compiled = compile_graph(cap.graph, cap.weights, backend="c", threads=2)
    assert compiled.backend == "c"
    _check(compiled, inputs, want)


@pytest.mark.parametrize("name", ["gpt2", "qwen3"])
def test_unfused_graphs_lower_too(name):
    """Without passes the ATen-level graph (masks, rotary, GQA expand) runs as it is."""
    cap, inputs, want = _captured(name)
    compiled = compile_graph(cap.graph, cap.weights, backend="numpy", passes=False)
    assert compiled.pass_report is None
    _check(compiled, inputs, want)


def test_c_results_do_not_depend_on_thread_count():
    _c_skip()
    cap, inputs, _ = _captured("gpt2")
    compiled = compile_graph(cap.graph, cap.weights, backend="c", threads=1)
    one = compiled(*inputs)
    compiled.set_threads(2)
    np.testing.assert_array_equal(compiled(*inputs), one)


def test_compiled_dispatch_is_identical_to_the_per_step_path():
    _c_skip()
    from perfcast.runtime.backend_c import CExecutor

    cap, inputs, _ = _captured("qwen3")
    compiled = compile_graph(cap.graph, cap.weights, backend="c")
    per_step = CExecutor(compiled.program, threads=1, dispatch="steps")
    for got, want in zip(compiled.run(inputs), per_step.run(inputs), strict=True):
        np.testing.assert_array_equal(got, want)


def test_numpy_and_c_backends_agree_step_for_step():
    _c_skip()
    cap, inputs, _ = _captured("qwen3")
    c = compile_graph(cap.graph, cap.weights, backend="c")
    ref = compile_graph(cap.graph, cap.weights, backend="numpy")
    assert [s.kind for s in c.program.steps] == [s.kind for s in ref.program.steps]
    np.testing.assert_allclose(c(*inputs), ref(*inputs), rtol=1e-5, atol=1e-6)


def test_compile_api_takes_torch_tensors_and_returns_a_tuple_for_several_outputs():
    model, inputs = MODELS["bert"]()  # BertModel: last_hidden_state and pooler_output
    compiled = compile(model, inputs, backend="numpy")
    out = compiled(*inputs)  # torch tensors in
    assert isinstance(out, tuple) and len(out) == 2
    assert all(isinstance(o, np.ndarray) for o in out)
    assert out[0].shape == (1, 16, 128) and out[1].shape == (1, 128)
    assert compiled.plan_report.arena_bytes < compiled.plan_report.naive_bytes
    assert compiled.pass_report is not None


def test_wrong_inputs_are_clear_errors():
    cap, inputs, _ = _captured("gpt2")
    compiled = compile_graph(cap.graph, cap.weights, backend="numpy")
    with pytest.raises(RuntimeInputError, match=r"expected 1 input\(s\).*got 2"):
        compiled(inputs[0], inputs[0])
    with pytest.raises(RuntimeInputError, match=r"expected int64\[1, 16\], got int64\[1, 8\]"):
        compiled(inputs[0][:, :8])
    with pytest.raises(RuntimeInputError, match=r"expected int64\[1, 16\], got int32\[1, 16\]"):
        compiled(inputs[0].astype(np.int32))
    with pytest.raises(RuntimeInputError, match="expected a torch tensor or NumPy array"):
        compiled([[1, 2]])


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend must be one of auto, c, numpy"):
        compile(torch.nn.Identity(), (torch.ones(2),), backend="cuda")


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "perfcast-no-such-compiler")
    monkeypatch.setenv("PERFCAST_CACHE", str(tmp_path))
    cbuild.reset()
    yield
    monkeypatch.undo()
    cbuild.reset()


def test_without_a_compiler_auto_falls_back_to_numpy_with_a_warning(no_compiler):
    cap, inputs, want = _captured("mlp")
    with pytest.warns(RuntimeWarning, match="C kernels unavailable.*NumPy backend"):
        compiled = compile_graph(cap.graph, cap.weights, backend="auto")
    assert compiled.backend == "numpy"
    _check(compiled, inputs, want)
    with pytest.raises(BackendUnavailable, match="perfcast-no-such-compiler"):
        compile_graph(cap.graph, cap.weights, backend="c")


# -- full-size configurations ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "bert", "qwen3"])
def test_full_size_models_match_pytorch(name):
    model, inputs = MODELS[name](full=True, seq=32)
    with torch.inference_mode():
        want = flatten_outputs(model(*inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a NumPy fallback is fine here
        compiled = compile(model, inputs, backend="auto")
    del model
    _check(compiled, [x.numpy() for x in inputs], want)
