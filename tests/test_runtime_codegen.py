"""Compiled dispatch (codegen) vs the per-step C backend vs the NumPy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perfcast.pyfile import import_file
from perfcast.runtime import cbuild
from perfcast.runtime.backend_numpy import NumpyExecutor
from perfcast.runtime.program import Buf, Program, Step, contiguous_strides

pytestmark = pytest.mark.skipif(not cbuild.available(),
                                reason=f"C kernels unavailable: {cbuild.unavailable_reason()}")

if cbuild.available():
    from perfcast.runtime import codegen
    from perfcast.runtime.backend_c import CExecutor
    from perfcast.runtime.ckernels import KernelError

MODELS = import_file(Path(__file__).parent / "data" / "runtime_models.py",
                     "perfcast_test_runtime_models").MODELS


def arena(name, shape, offset, dtype="float32"):
    return Buf(name, tuple(shape), dtype, "arena", offset, -1, contiguous_strides(tuple(shape)))


def const(name, value, index):
    return Buf(name, value.shape, str(value.dtype).replace("bool", "bool"), "const", 0, index,
               contiguous_strides(value.shape))


def inp(name, shape, index, dtype="float32", strides=None):
    return Buf(name, tuple(shape), dtype, "input", 0, index,
               strides or contiguous_strides(tuple(shape)))


def hand_program() -> Program:
    """ids -> embedding -> layer_norm -> gemm(+bias, gelu) in place of nothing; a view of an
    input with strides; cat by two copies into one buffer; a scalar step in place."""
    rng = np.random.default_rng(0)
    table = rng.standard_normal((11, 8)).astype(np.float32)
    w = rng.standard_normal((8, 6)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    lnw, lnb = np.ones(8, np.float32), np.zeros(8, np.float32)
    consts = [table, w, bias, lnw, lnb]
    bufs = {
        "ids": inp("ids", (5,), 0, "int64"),
        "x": inp("x", (5, 3), 1),
        "xt": inp("xt", (3, 5), 1, strides=(1, 3)),  # transposed view of input x
        "table": const("table", table, 0), "w": const("w", w, 1), "bias": const("bias", bias, 2),
        "lnw": const("lnw", lnw, 3), "lnb": const("lnb", lnb, 4),
        "emb": arena("emb", (5, 8), 0),
        "ln": arena("ln", (5, 8), 192),
        "h": arena("h", (5, 6), 0),
        "cat": arena("cat", (5, 9), 384),
        "xtc": arena("xtc", (3, 5), 576),
        "h2": arena("h2", (5, 6), 0),  # in place over h
    }
    steps = [
        Step("embedding", ("table", "ids"), ("emb",), {"n": 5, "dim": 8}),
        Step("layer_norm", ("emb", "lnw", "lnb"), ("ln",), {"rows": 5, "cols": 8, "eps": 1e-5}),
        Step("gemm", ("ln", "w", "bias"), ("h",),
             {"batch": 1, "m": 5, "n": 6, "k": 8, "trans_b": False, "alpha": 1.0, "beta": 1.0,
              "act": "gelu", "a_batch_stride": 0, "b_batch_stride": 0, "c_mode": "row"}),
        Step("copy", ("h",), ("cat",), {"rank": 2, "shape": [5, 6], "strides": [6, 1],
                                        "out_offset_elems": 0, "out_strides": [9, 1]}),
        Step("copy", ("x",), ("cat",), {"rank": 2, "shape": [5, 3], "strides": [3, 1],
                                        "out_offset_elems": 6, "out_strides": [9, 1]}),
        Step("copy", ("xt",), ("xtc",), {"rank": 2, "shape": [3, 5], "strides": [1, 3],
                                         "out_offset_elems": 0}),
        Step("scalar", ("h",), ("h2",), {"op": "mul", "value": 0.25}),
    ]
    return Program(bufs, steps, ["ids", "x"], ["cat", "xtc", "h2"], consts, 640)


def run_all(program, inputs, threads=1):
    steps = CExecutor(program, threads=threads, dispatch="steps")
    compiled = CExecutor(program, threads=threads, dispatch="compiled")
    assert compiled.dispatch == "compiled"
    return (steps.run(inputs), compiled.run(inputs), NumpyExecutor(program).run(inputs))


def test_hand_program():
    program = hand_program()
    ids = np.array([0, 3, 10, 3, 7], np.int64)
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    by_steps, by_code, by_numpy = run_all(program, [ids, x])
    for a, b, c in zip(by_steps, by_code, by_numpy, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(by_code[0][:, 6:], x)
    np.testing.assert_array_equal(by_code[1], x.T)


def test_generated_source_is_literal():
    src = codegen.generate(hand_program())
    assert "int perfcast_run(char* arena, void** consts, void** inputs)" in src
    assert "pc_embedding(inputs[0]" not in src  # table first, ids second
    assert "pc_embedding(consts[0], inputs[0]" in src
    assert "(void*)(arena + 384)" in src and "(void*)(arena + 408)" in src  # cat + 6 floats
    assert src.count("if ((rc = pc_") == len(hand_program().steps)


def test_inputs_bound_per_call():
    program = hand_program()
    ex = CExecutor(program)
    rng = np.random.default_rng(1)
    for _ in range(3):
        ids = rng.integers(0, 11, 5)
        x = rng.standard_normal((5, 3)).astype(np.float32)
        want = NumpyExecutor(program).run([ids, x])
        for got, ref in zip(ex.run([ids, x]), want, strict=True):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dispatch", ["steps", "compiled"])
def test_kernel_error_names_step(dispatch):
    ex = CExecutor(hand_program(), dispatch=dispatch)
    with pytest.raises(KernelError, match="embedding"):
        ex.run([np.array([0, 1, 2, 3, 11], np.int64), np.zeros((5, 3), np.float32)])


def test_program_cache_reused():
    program = hand_program()
    a = codegen.compile_program(program)
    b = codegen.compile_program(program)
    assert a.path == b.path and Path(a.path).exists()


def model_program(name, passes):
    import torch

    from perfcast.runtime.compile import compile

    model, inputs = MODELS[name]()
    cm = compile(model, inputs, backend="numpy", passes=passes)
    with torch.inference_mode():
        ref = model(*inputs)
    if hasattr(ref, "to_tuple"):
        ref = ref.to_tuple()
    if isinstance(ref, tuple | list):
        ref = ref[0]
    return cm.program, [x.numpy() for x in inputs], ref.detach().numpy()


@pytest.mark.parametrize("name", ["mlp", "block", "block_manual", "gpt2", "bert", "qwen3"])
@pytest.mark.parametrize("passes", [None, False], ids=["passes", "nopasses"])
def test_models(name, passes):
    program, inputs, ref = model_program(name, passes)
    by_steps, by_code, by_numpy = run_all(program, inputs)
    for a, b in zip(by_steps, by_code, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, c in zip(by_steps, by_numpy, strict=True):
        np.testing.assert_allclose(a, c, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(by_code[0], ref, rtol=2e-4, atol=2e-4)


def test_threads_two_matches_one():
    program, inputs, _ = model_program("gpt2", None)
    one = CExecutor(program, threads=1).run(inputs)
    ex = CExecutor(program, threads=2)
    two = ex.run(inputs)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ex.set_threads(1)
    for a, b in zip(one, ex.run(inputs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_prepacked_weights_match_blas_path():
    """Constant weights run the packed kernel; without prepacking, the BLAS path agrees."""
    program, inputs, ref = model_program("gpt2", None)
    packed = CExecutor(program)
    assert packed.prepacked and any(c.func == "pc_gemm_packed" for c in packed._calls)
    assert "pc_gemm_packed(" in packed._compiled.source
    blas = CExecutor(program, prepack=False, dispatch="steps")
    assert not any(c.func == "pc_gemm_packed" for c in blas._calls)
    a, b = packed.run(inputs)[0], blas.run(inputs)[0]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a, ref, rtol=2e-4, atol=2e-4)
