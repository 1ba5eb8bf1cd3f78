"""Lowering IR graphs to runtime steps: views as aliases, copies where needed, clear errors.

Graphs are built by hand; every program is executed by the NumPy backend and compared
with the same computation written in NumPy here.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfcast.ir import Graph, Tensor
from perfcast.runtime import views as V
from perfcast.runtime.backend_numpy import NumpyExecutor
from perfcast.runtime.lower import RuntimeLoweringError, lower
from perfcast.runtime.planner import plan

RNG = np.random.default_rng(0)


def _graph(inputs: dict[str, tuple], consts: dict[str, np.ndarray] | None = None) -> Graph:
    g = Graph("t")
    for name, shape in inputs.items():
        g.add_tensor(Tensor(name, shape, "float32"))
        g.inputs.append(name)
    for name, value in (consts or {}).items():
        g.add_tensor(Tensor(name, value.shape, str(value.dtype), const=True))
    return g


def _run(g: Graph, consts: dict, *inputs: np.ndarray):
    program, report = plan(lower(g.validate(), consts))
    outs = NumpyExecutor(program).run(list(inputs))
    return program, report, outs


def _kinds(program) -> list[str]:
    return [s.kind for s in program.steps]


def test_transpose_feeding_add_is_a_strided_read_not_a_copy():
    g = _graph({"x": (2, 3, 4), "y": (2, 4, 3)})
    (t,) = g.apply("transpose", ["x"], {"dim0": 1, "dim1": 2})
    (s,) = g.apply("add", [t.name, "y"])
    g.outputs = [s.name]
    x, y = RNG.standard_normal((2, 3, 4), np.float32), RNG.standard_normal((2, 4, 3), np.float32)
    program, _, (out,) = _run(g, {}, x, y)
    assert _kinds(program) == ["binary"]
    assert program.steps[0].attrs["a_strides"] == [12, 1, 4]  # x read through the transpose
    np.testing.assert_array_equal(out, x.transpose(0, 2, 1) + y)


def test_reshape_of_a_transposed_view_gathers_once():
    g = _graph({"x": (4, 6)})
    (t,) = g.apply("transpose", ["x"], {"dim0": 0, "dim1": 1})
    (r,) = g.apply("reshape", [t.name], {"shape": [3, 8]})
    (e,) = g.apply("exp", [r.name])
    g.outputs = [e.name]
    x = RNG.standard_normal((4, 6), np.float32)
    program, _, (out,) = _run(g, {}, x)
    assert _kinds(program) == ["copy", "unary"]
    np.testing.assert_allclose(out, np.exp(x.T.reshape(3, 8)), rtol=1e-6)


def test_linear_reads_the_weight_in_place_with_trans_b():
    w = RNG.standard_normal((16, 8), np.float32)
    b = RNG.standard_normal(16, np.float32)
    g = _graph({"x": (2, 5, 8)}, {"w": w, "b": b})
    (y,) = g.apply("linear", ["x", "w", "b"], {"tensor_args": ["input", "weight", "bias"]})
    (r,) = g.apply("relu", [y.name])
    g.outputs = [r.name]
    x = RNG.standard_normal((2, 5, 8), np.float32)
    program, _, (out,) = _run(g, {"w": w, "b": b}, x)
    (gemm, relu) = program.steps
    assert gemm.kind == "gemm" and relu.kind == "unary"
    assert {k: gemm.attrs[k] for k in ("batch", "m", "n", "k", "trans_b", "c_mode")} == \
        {"batch": 1, "m": 10, "n": 16, "k": 8, "trans_b": True, "c_mode": "row"}
    assert sum(c.size for c in program.consts) == w.size + b.size  # no transposed copy
    np.testing.assert_allclose(out, np.maximum(x @ w.T + b, 0), rtol=1e-5, atol=1e-6)


def test_heads_split_from_a_fused_qkv_reach_attention_without_copies():
    bsz, seq, heads, hd = 2, 6, 3, 4
    dim = heads * hd
    g = _graph({"x": (bsz, seq, 3 * dim)})
    (qkv,) = g.apply("neg", ["x"])  # stands for the QKV projection
    pieces = g.apply("split", [qkv.name], {"split_size": dim, "dim": 2})
    heads_views = []
    for p in pieces:
        (v,) = g.apply("view", [p.name], {"size": [bsz, seq, heads, hd]})
        (t,) = g.apply("transpose", [v.name], {"dim0": 1, "dim1": 2})
        heads_views.append(t.name)
    (att,) = g.apply("scaled_dot_product_attention", heads_views,
                     {"is_causal": True, "tensor_args": ["query", "key", "value"]})
    g.outputs = [att.name]
    x = RNG.standard_normal((bsz, seq, 3 * dim), np.float32)
    program, _, (out,) = _run(g, {}, x)
    assert _kinds(program) == ["unary", "attention"]
    step = program.steps[1]
    assert step.attrs["q_strides"] == [seq * 3 * dim, hd, 3 * dim, 1]
    q_buf, k_buf = (program.bufs[i] for i in step.inputs[:2])
    assert k_buf.offset - q_buf.offset == dim * 4  # k starts at column dim of the same buffer
    qkv = -x
    q, k, v = (qkv[..., i * dim:(i + 1) * dim].reshape(bsz, seq, heads, hd).transpose(0, 2, 1, 3)
               for i in range(3))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    scores = np.where(np.tril(np.ones((seq, seq), bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    np.testing.assert_allclose(out, (p / p.sum(-1, keepdims=True)) @ v, rtol=1e-5, atol=1e-6)


def test_cat_along_the_last_dimension_writes_strided_pieces():
    g = _graph({"a": (2, 3, 2), "b": (2, 3, 5)})
    (n,) = g.apply("neg", ["a"])
    (c,) = g.apply("cat", [n.name, "b"], {"dim": -1, "tensor_args": ["tensors[0]", "tensors[1]"]})
    g.outputs = [c.name]
    a, b = RNG.standard_normal((2, 3, 2), np.float32), RNG.standard_normal((2, 3, 5), np.float32)
    program, _, (out,) = _run(g, {}, a, b)
    assert _kinds(program) == ["unary", "copy", "copy"]
    assert program.steps[2].attrs["out_strides"] == [7, 1]
    assert program.steps[2].attrs["out_offset_elems"] == 2
    np.testing.assert_array_equal(out, np.concatenate([-a, b], axis=-1))


def test_view_at_an_offset_of_an_input_is_read_from_an_arena_copy():
    g = _graph({"x": (5, 4)})
    (s,) = g.apply("slice", ["x"], {"dim": 0, "start": 2, "end": 5})
    (e,) = g.apply("sigmoid", [s.name])
    g.outputs = [e.name]
    x = RNG.standard_normal((5, 4), np.float32)
    program, _, (out,) = _run(g, {}, x)
    assert all(b.offset == 0 for b in program.bufs.values() if b.storage == "input")
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x[2:])), rtol=1e-6)


def test_constant_subgraphs_are_evaluated_at_lowering():
    g = _graph({"x": (4,)})
    (r,) = g.apply("arange", [], {"end": 4})
    (f,) = g.apply("mul", [r.name], {"other": 2, "tensor_args": ["self"]})
    (c,) = g.apply("cast", [f.name], {"dtype": "float32"})
    (y,) = g.apply("add", ["x", c.name], {"tensor_args": ["self", "other"]})
    g.outputs = [y.name]
    x = RNG.standard_normal(4, np.float32)
    program, _, (out,) = _run(g, {}, x)
    assert _kinds(program) == ["binary"]
    np.testing.assert_array_equal(out, x + np.arange(4, dtype=np.float32) * 2)


def test_an_input_returned_as_output_is_copied_into_the_arena():
    g = _graph({"x": (3,)})
    (a,) = g.apply("alias", ["x"])
    g.outputs = [a.name]
    x = np.arange(3, dtype=np.float32)
    program, _, (out,) = _run(g, {}, x)
    assert _kinds(program) == ["copy"]
    assert program.bufs[program.outputs[0]].storage == "arena"
    np.testing.assert_array_equal(out, x)


def test_llama_style_block_kinds_match_numpy():
    """gemm with activation, swiglu, rope, rms_norm, softmax, where, reduce, cast, embedding."""
    vocab, seq, dim = 11, 4, 8
    table = RNG.standard_normal((vocab, dim), np.float32)
    wg, wu = (RNG.standard_normal((dim, dim), np.float32) for _ in range(2))
    norm_w = RNG.standard_normal(dim, np.float32)
    cos, sin = (RNG.standard_normal((seq, dim), np.float32) for _ in range(2))
    consts = {"table": table, "wg": wg, "wu": wu, "norm_w": norm_w, "cos": cos, "sin": sin}
    g = Graph("llama")
    g.add_tensor(Tensor("ids", (1, seq), "int64"))
    g.inputs = ["ids"]
    for name, value in consts.items():
        g.add_tensor(Tensor(name, value.shape, "float32", const=True))
    (h,) = g.apply("embedding", ["table", "ids"])
    (n,) = g.apply("rms_norm", [h.name, "norm_w"], {"eps": 1e-6})
    (gate,) = g.apply("gemm", [n.name, "wg"], {"trans_b": True, "act": "silu"})
    (up,) = g.apply("gemm", [n.name, "wu"], {"trans_b": False})
    (sw,) = g.apply("swiglu", [gate.name, up.name])
    (ro,) = g.apply("rope", [sw.name, "cos", "sin"])
    (sm,) = g.apply("softmax", [ro.name], {"dim": -1})
    (pos,) = g.apply("gt", [ro.name], {"other": 0.0, "tensor_args": ["self"]})
    (wh,) = g.apply("where", [pos.name, sm.name, ro.name],
                    {"tensor_args": ["condition", "self", "other"]})
    (mx,) = g.apply("amax", [wh.name], {"dim": [1], "keepdim": False})
    g.outputs = [wh.name, mx.name]
    ids = np.array([[3, 0, 10, 3]], dtype=np.int64)
    program, _, (out, out_max) = _run(g, consts, ids)
    assert {"embedding", "rms_norm", "gemm", "swiglu", "rope", "softmax", "binary",
            "where", "reduce"} <= set(_kinds(program))

    x = table[ids]
    x = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * norm_w
    gate_v = x @ wg.T
    gate_v = gate_v / (1 + np.exp(-gate_v))
    sw_v = gate_v / (1 + np.exp(-gate_v)) * (x @ wu)
    half = dim // 2
    ro_v = sw_v * cos + np.concatenate([-sw_v[..., half:], sw_v[..., :half]], -1) * sin
    e = np.exp(ro_v - ro_v.max(-1, keepdims=True))
    expected = np.where(ro_v > 0, e / e.sum(-1, keepdims=True), ro_v)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_max, expected.max(1), rtol=1e-5, atol=1e-6)


def test_unsupported_op_names_the_node_and_kind():
    g = _graph({"x": (4, 4)})
    g.apply("sort", ["x"], name="my_sort")
    g.outputs = ["my_sort.0"]
    with pytest.raises(RuntimeLoweringError, match=r"node 'my_sort' \(sort\).*not supported"):
        lower(g.validate(), {})


def test_constant_without_a_value_is_a_clear_error():
    g = _graph({"x": (2,)}, {"w": np.ones(2, np.float32)})
    (y,) = g.apply("mul", ["x", "w"])
    g.outputs = [y.name]
    with pytest.raises(RuntimeLoweringError, match="constant 'w' has no value"):
        lower(g.validate(), {})


def test_reshape_strides_follow_dense_chunks():
    v = V.transpose(V.root_view("r", (2, 3, 4), "float32"), 0, 1)  # [3, 2, 4], strides 4,12,1
    assert V.reshape(v, (3, 2, 2, 2)).strides == (4, 12, 2, 1)
    assert V.reshape(v, (3, 8)) is None  # 2 and 4 are not dense together
    assert V.coalesce((2, 3, 4), (12, 4, 1), (12, 4, 1)) == ((24,), (1,), (1,))


def test_scalar_operands_keep_their_side():
    g = _graph({"x": (6,)})
    (p,) = g.apply("pow", ["x"], {"self": 2.0, "tensor_args": ["exponent"]})  # 2 ** x
    (r,) = g.apply("rsub", [p.name], {"other": 1.0, "tensor_args": ["self"]})  # 1 - p
    (s,) = g.apply("sub", [r.name, "x"], {"alpha": 3, "tensor_args": ["self", "other"]})
    (c,) = g.apply("lt", [s.name], {"other": 0.0, "tensor_args": ["self"]})
    g.outputs = [s.name, c.name]
    x = np.linspace(-2, 2, 6, dtype=np.float32)
    _, _, (out, below) = _run(g, {}, x)
    expected = (1 - 2.0 ** x) - 3 * x
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(below, expected < 0)
