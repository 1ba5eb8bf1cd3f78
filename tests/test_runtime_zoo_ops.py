"""Runtime fixes found by the zoo's runtime column (docs/models.md): 0-d constants keep
their shape, ``min``/``max`` of two tensors, int32 casts, ``numpy_T``, ``fill``,
``_weight_norm``, ``cumsum`` and ``gather``. Each small model runs on the NumPy backend
and, when a compiler works, on the C kernels, against eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import perfcast.runtime as rt
from fn_module import Fn
from perfcast.frontends.torch_export import capture
from perfcast.ir import Graph, Tensor
from perfcast.passes.fold import constant_fold
from perfcast.runtime import cbuild, run_graph
from perfcast.runtime.interpret import eval_node

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    not cbuild.available(), reason="no C compiler for the kernels"))]


def _check(fn, *inputs: torch.Tensor, backend: str) -> None:
    model = Fn(fn).eval()
    want = model(*inputs)
    want = list(want) if isinstance(want, tuple) else [want]
    got = rt.compile(model, tuple(inputs), backend=backend)(*inputs)
    got = list(got) if isinstance(got, tuple) else [got]
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)


# -- 0-d constants (mistral, gemma, deberta-v2, clip: 'detach_' produced shape [1]) ---------
@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_dim_constant_keeps_its_shape(backend):
    def fn(x):
        s = torch.tensor(3)  # a lifted 0-d constant, copied and detached
        return x * s.detach(), (s + 1).detach()

    _check(fn, torch.randn(4, 5), backend=backend)


def test_fold_keeps_zero_dim_results():
    g = Graph("g")
    g.add_tensor(Tensor("c", (), "int64", const=True))
    (out,) = g.apply("neg", ["c"], {})
    g.outputs = [out.name]
    g, consts = constant_fold(g.validate(), {"c": np.array(2)}, evaluate=eval_node)
    assert consts[out.name].shape == () and g.tensors[out.name].shape == ()
    assert run_graph(g, consts, [])[0].shape == ()


# -- min/max of two tensors (t5's relative position buckets) -----------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_min_max_of_two_tensors(backend):
    def fn(a, b):
        bucket = torch.min(torch.arange(16).view(4, 4) + 8,
                           torch.full_like(torch.zeros(4, 4, dtype=torch.long), 15))
        return torch.min(a, b), torch.max(a, b), bucket

    _check(fn, torch.randn(4, 4), torch.randn(1, 4), backend=backend)


# -- int32 (roberta's position ids: mask.int(), cumsum, type_as; gather of token types) ------
@pytest.mark.parametrize("backend", BACKENDS)
def test_int32_casts_and_cumsum(backend):
    def fn(ids):
        mask = ids.ne(1).int()
        return (torch.cumsum(mask, dim=1).type_as(mask) + 2) * mask

    _check(fn, torch.tensor([[0, 5, 1, 7, 1, 3]]), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cumsum_float_inner_dim(backend):
    _check(lambda x: x.cumsum(1) * 2, torch.randn(3, 7, 5), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gather_with_runtime_index(backend):
    table = torch.arange(40).view(2, 20)

    def fn(x, idx):
        return torch.gather(x, 1, idx), torch.gather(table, 1, idx)

    _check(fn, torch.randn(2, 20), torch.randint(0, 20, (2, 6)), backend=backend)


def test_gather_index_out_of_range_raises():
    x, idx = torch.randn(2, 5), torch.zeros(2, 3, dtype=torch.long)
    fn = rt.compile(Fn(lambda a, i: torch.gather(a, 1, i)), (x, idx), backend="numpy")
    with pytest.raises(IndexError, match="out of range"):
        fn(x, idx + 5)


# -- numpy_T, fill, _weight_norm (falcon, swin-t, wav2vec2) ---------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_t(backend):
    w = torch.randn(4, 6)
    _check(lambda x: x @ w.T + x.T.sum(0).unsqueeze(1), torch.randn(3, 6), backend=backend)


def test_fill_and_weight_norm_interpret():
    v, g = torch.randn(8, 3, 5), torch.rand(1, 1, 5) + 0.5
    cap = capture(Fn(lambda a, b: torch._weight_norm(a, b, 2)), (v, g), keep_weights=True)
    (got,) = run_graph(cap.graph, cap.weights, [v.numpy(), g.numpy()])
    np.testing.assert_allclose(got, torch._weight_norm(v, g, 2).numpy(), rtol=1e-5, atol=1e-6)

    g = Graph("g")
    g.add_tensor(Tensor("x", (2, 3), "float32"))
    g.add_tensor(Tensor("value", (), "float32", const=True))
    g.inputs = ["x"]
    (out,) = g.apply("fill", ["x", "value"], {"tensor_args": ["self", "value"]})
    g.outputs = [out.name]
    (got,) = run_graph(g.validate(), {"value": np.float32(2.5)}, [np.zeros((2, 3), np.float32)])
    np.testing.assert_array_equal(got, np.full((2, 3), 2.5, np.float32))


# -- attention with different query/key and value head sizes (deepseek-v3's MLA) -----------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("d_qk", "d_v"), [(24, 16), (8, 12)])
def test_attention_with_unequal_head_dims(backend, d_qk, d_v):
    def fn(q, k, v):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return out.transpose(1, 2).reshape(1, 5, -1)

    q, k = torch.randn(1, 2, 5, d_qk), torch.randn(1, 2, 5, d_qk)
    _check(fn, q, k, torch.randn(1, 2, 5, d_v), backend=backend)
