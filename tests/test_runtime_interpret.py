"""The IR interpreter against PyTorch: every op kind of the captured models on random
inputs (odd sizes included), the fused kinds, capture with weights, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fn_module import Fn
from perfcast.frontends.torch_export import capture
from perfcast.ir import Graph, Node, Tensor, lookup
from perfcast.runtime import InterpretError, run_graph
from perfcast.runtime.interpret import supported_kinds

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _flat(value) -> list:
    if isinstance(value, tuple | list):
        return [v for item in value for v in _flat(item)]
    return [value]


def _compare(outs: list[np.ndarray], refs: list, labels: list[str]) -> None:
    assert len(outs) == len(refs)
    for out, r, label in zip(outs, refs, labels, strict=True):
        expected = r.numpy()
        assert out.dtype == expected.dtype, (label, out.dtype, expected.dtype)
        if expected.dtype.kind in "biu":
            np.testing.assert_array_equal(out, expected, err_msg=label)
        else:
            np.testing.assert_allclose(out, expected, err_msg=label, **TOL)


def _run(fn, *inputs, kind: str | None = None, module: nn.Module | None = None):
    """Capture ``fn`` (or ``module``), interpret it, compare every output with torch."""
    model = module if module is not None else Fn(fn)
    cap = capture(model, inputs, keep_weights=True)
    if kind is not None:
        assert kind in {n.kind for n in cap.graph.nodes}, cap.graph.dump()
    with torch.no_grad():
        refs = _flat(model(*inputs))
    outs = run_graph(cap.graph, cap.weights, [x.numpy() for x in inputs])
    _compare(outs, refs, [kind or "output"] * len(refs))


def _run_many(fns: dict, *inputs) -> None:
    """One capture of all ``fns`` (kind -> function); each kind must appear in the graph."""
    model = Fn(lambda *xs: tuple(fn(*xs) for fn in fns.values()))
    cap = capture(model, inputs, keep_weights=True)
    kinds = {n.kind for n in cap.graph.nodes}
    assert set(fns) <= kinds, sorted(set(fns) - kinds)
    with torch.no_grad():
        per_fn = [_flat(fn(*inputs)) for fn in fns.values()]
    labels = [k for k, outs in zip(fns, per_fn, strict=True) for _ in outs]
    outs = run_graph(cap.graph, cap.weights, [x.numpy() for x in inputs])
    _compare(outs, [r for outs_ in per_fn for r in outs_], labels)


SHAPES = [(3, 5, 7), (2, 1, 9)]


def _x(shape=(3, 5, 7), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _pos(shape=(3, 5, 7)):
    return _x(shape).abs() + 0.5


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 0.5), "maximum": torch.maximum,
    "minimum": torch.minimum, "eq": lambda a, b: a.round() == b.round(),
    "ne": lambda a, b: a.round() != b.round(), "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "pow": lambda a, b: torch.pow(a.abs() + 0.5, b),
    "logical_and": lambda a, b: torch.logical_and(a > 0, b > 0),
    "__and__": lambda a, b: (a > 0) & (b > 0), "__or__": lambda a, b: (a > 0) | (b > 0),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_ops_broadcast(shape):
    _run_many(BINARY, _x(shape), _x((shape[-2], 1), seed=1))


SCALAR = {
    "add": lambda x: torch.add(x, 2.5, alpha=2), "sub": lambda x: x - 1.5,
    "rsub": lambda x: 1.5 - x, "mul": lambda x: x * 0.3, "div": lambda x: x / 3.0,
    "pow": lambda x: (x.abs() + 0.5) ** 1.7,
}


def test_tensor_scalar_ops():
    _run_many(SCALAR, _x())


def test_scalar_base_pow_and_floor_division():
    _run(lambda x: 2.0 ** x, _x(), kind="pow")
    _run(lambda x: torch.div(x * 4, 1.5, rounding_mode="floor"), _x(), kind="div")
    _run(lambda x: torch.div(x * 4, 1.5, rounding_mode="trunc"), _x(), kind="div")


UNARY = {
    "neg": torch.neg, "abs": torch.abs, "reciprocal": lambda x: torch.reciprocal(x.abs() + 1),
    "sqrt": lambda x: torch.sqrt(x.abs()), "rsqrt": lambda x: torch.rsqrt(x.abs() + 0.1),
    "exp": torch.exp, "log": lambda x: torch.log(x.abs() + 0.1), "sin": torch.sin,
    "cos": torch.cos, "tanh": torch.tanh, "erf": torch.erf, "sigmoid": torch.sigmoid,
    "silu": F.silu, "relu": F.relu, "gelu": F.gelu,
    "softplus": F.softplus, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "elu": F.elu,
    "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "floor": torch.floor,
    "ceil": torch.ceil, "round": torch.round, "sign": torch.sign, "square": torch.square,
    "logical_not": lambda x: torch.logical_not(x > 0), "clamp": lambda x: x.clamp(-0.5, 0.7),
    "tril": lambda x: x.tril(-1), "triu": lambda x: x.triu(1), "expm1": torch.expm1,
    "log1p": lambda x: torch.log1p(x.abs()),
    "bitwise_not": lambda x: ~(x > 0),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_unary_ops(shape):
    _run_many(UNARY, _x(shape) * 3)


def test_gelu_tanh_where_masked_fill_cast():
    _run(lambda x: F.gelu(x, approximate="tanh"), _x() * 3, kind="gelu")
    _run(lambda x, y: torch.where(x > 0, x, y), _x(), _x(seed=1), kind="where")
    _run(lambda x: torch.where(x > 0, x, -1.0), _x(), kind="where")
    _run(lambda x: x.masked_fill(x > 0.5, float("-inf")), _x(), kind="masked_fill")
    _run(lambda x: (x * 3).to(torch.int64) + 1, _x(), kind="cast")


REDUCE = {
    "sum": lambda x: x.sum(dim=-1), "mean": lambda x: x.mean(dim=(0, 2), keepdim=True),
    "amax": lambda x: x.amax(dim=1), "max": lambda x: x.max(dim=-1),
    "min": lambda x: x.min(), "argmax": lambda x: x.argmax(dim=1, keepdim=True),
    "var": lambda x: x.var(dim=-1, correction=0), "std": lambda x: x.std(dim=-1),
    "logsumexp": lambda x: torch.logsumexp(x, dim=-1), "prod": lambda x: x.prod(dim=0),
    "any": lambda x: (x > 1).any(dim=-1), "cumsum": lambda x: x.cumsum(dim=1),
    "softmax": lambda x: torch.softmax(x, dim=1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "linalg_vector_norm": lambda x: torch.linalg.vector_norm(x, dim=-1),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_reductions(shape):
    _run_many(REDUCE, _x(shape))


MOVEMENT = {
    "view": lambda x: x.view(-1, 7) * 2, "reshape": lambda x: x.reshape(5, 21) * 2,
    "permute": lambda x: x.permute(2, 0, 1) * 2, "transpose": lambda x: x.transpose(0, 2) * 2,
    "unsqueeze": lambda x: x.unsqueeze(1) * 2, "squeeze": lambda x: x[:, :1].squeeze(1) * 2,
    "expand": lambda x: x[:, :1].expand(3, 4, 7) * 2,
    "slice": lambda x: x[:, 1:4:2, -3:] * 2, "select": lambda x: x[:, 2] * 2,
    "narrow": lambda x: x.narrow(2, 1, 3) * 2, "flatten": lambda x: x.flatten(1) * 2,
    "unflatten": lambda x: x.unflatten(2, (7, 1)) * 2,
    "split": lambda x: [p * 2 for p in x.split(2, dim=1)],
    "split_with_sizes": lambda x: [p * 2 for p in x.split([3, 4], dim=-1)],
    "chunk": lambda x: [p * 2 for p in x.chunk(2, dim=1)],
    "unbind": lambda x: [p * 2 for p in x.unbind(0)],
    "cat": lambda x: torch.cat([x, x * 2], dim=1),
    "stack": lambda x: torch.stack([x, x * 2], dim=1),
    "pad": lambda x: F.pad(x, (1, 2, 0, 1), value=0.5),
    "repeat": lambda x: x.repeat(1, 2, 1), "roll": lambda x: x.roll(2, dims=1),
    "flip": lambda x: x.flip(-1), "repeat_interleave": lambda x: x.repeat_interleave(2, dim=1),
    "clone": lambda x: x.clone() * 2,
}


def test_movement():
    _run_many(MOVEMENT, _x())


def test_indexing_and_embedding():
    idx = torch.tensor([[2, 0, 4], [1, 1, 3]])
    _run(lambda x, i: x[:, i] * 2, _x(), idx, kind="index")
    _run(lambda x, i: x[i, :, 1:] * 2, _x(), idx.clamp(max=2), kind="index")
    _run(lambda x, i: torch.index_select(x, 1, i.reshape(-1)), _x(), idx, kind="index_select")
    gather_idx = torch.randint(0, 7, (3, 5, 4), generator=torch.Generator().manual_seed(0))
    _run(lambda x, i: torch.gather(x, 2, i), _x(), gather_idx, kind="gather")
    emb = nn.Embedding(11, 6, padding_idx=0)
    _run(None, torch.tensor([[0, 3, 10], [5, 5, 1]]), module=emb, kind="embedding")


def test_creation_ops():
    _run(lambda x: x + torch.arange(7), _x(), kind="arange")
    _run(lambda x: x + torch.arange(2, 9, 1.0), _x(), kind="arange")
    _run(lambda x: x + torch.ones(5, 7), _x(), kind="ones")
    _run(lambda x: x + torch.full((7,), 0.25), _x(), kind="full")
    _run(lambda x: x + torch.zeros_like(x), _x(), kind="zeros_like")
    _run(lambda x: x + x.new_ones(5, 1), _x(), kind="new_ones")
    _run(lambda x: x * torch.ones(3, 3, dtype=torch.bool).tril()[:, :1, None], _x(), kind="tril")


def test_matrix_products():
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    _run(torch.mm, a, b, kind="mm")
    _run(lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), torch.randn(3), a, b,
         kind="addmm")
    ba, bb = torch.randn(2, 5, 7), torch.randn(2, 7, 3)
    _run(torch.bmm, ba, bb, kind="bmm")
    _run(lambda c, a, b: torch.baddbmm(c, a, b, alpha=0.5), torch.randn(2, 5, 3), ba, bb,
         kind="baddbmm")
    _run(torch.matmul, torch.randn(2, 3, 5, 7), torch.randn(3, 7, 4), kind="matmul")
    _run(None, torch.randn(4, 9), module=nn.Linear(9, 5), kind="linear")
    _run(None, torch.randn(2, 4, 9), module=nn.Linear(9, 5, bias=False), kind="linear")


def test_normalizations():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12) * 3 + 1
    ln = nn.LayerNorm(12)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    _run(None, x, module=ln, kind="layer_norm")
    _run(None, x, module=nn.LayerNorm(12, elementwise_affine=False), kind="layer_norm")
    _run(None, x, module=nn.LayerNorm([5, 12]), kind="layer_norm")
    rms = nn.RMSNorm(12, eps=1e-6)
    nn.init.normal_(rms.weight)
    _run(None, x, module=rms, kind="rms_norm")
    _run(None, torch.randn(2, 6, 3, 5), module=nn.GroupNorm(3, 6), kind="group_norm")
    bn = nn.BatchNorm2d(6).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    _run(None, torch.randn(2, 6, 3, 5), module=bn)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_with_masks_and_gqa(causal):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 6, 5, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    _run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                        enable_gqa=True),
         q, k, v, kind="scaled_dot_product_attention")
    kf, vf = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
    bool_mask = torch.rand(1, 1, 5, 5, generator=torch.Generator().manual_seed(1)) > 0.3
    bool_mask[..., 0] = True  # every query sees at least one key
    _run(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
         q, kf, vf, bool_mask, kind="scaled_dot_product_attention")
    add_mask = torch.randn(2, 1, 5, 5)
    _run(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
         q, kf, vf, add_mask, kind="scaled_dot_product_attention")


def test_sdpa_causal_with_fewer_queries_than_keys_follows_torch():
    q, k, v = torch.randn(1, 2, 3, 8), torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 8)
    _run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v,
         kind="scaled_dot_product_attention")


def test_capture_with_weights_keeps_every_constant_and_ties():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=16,
                     use_cache=False)
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 50, (1, 6))
    cap = capture(model, (ids,), keep_weights=True)
    assert set(cap.weights) == {t.name for t in cap.graph.constants()}
    wte = cap.weights["transformer.wte.weight"]
    np.testing.assert_array_equal(wte, model.transformer.wte.weight.detach().numpy())
    assert "lm_head.weight" not in cap.weights  # tied to wte: one tensor, one value
    assert capture(model, (ids,)).weights == {}  # default capture keeps no values
    with torch.no_grad():
        ref = model(ids).logits.numpy()
    np.testing.assert_allclose(run_graph(cap.graph, cap.weights, [ids.numpy()])[0], ref,
                               rtol=1e-4, atol=1e-4)


def test_capture_with_weights_on_meta_fails_clearly():
    from perfcast.frontends.errors import CaptureError

    with torch.device("meta"):
        model = nn.Linear(4, 3)
    with pytest.raises(CaptureError, match="meta device"):
        capture(model, (torch.zeros(2, 4, device="meta"),), keep_weights=True)


# -- fused kinds (graphs built by hand) -----------------------------------------------
def _graph(kind: str, inputs: dict[str, np.ndarray], attrs: dict, consts=()) -> Graph:
    g = Graph(kind)
    for name, value in inputs.items():
        g.add_tensor(Tensor(name, value.shape, str(value.dtype), const=name in consts))
    g.inputs = [n for n in inputs if n not in consts]
    (out,) = g.apply(kind, list(inputs), attrs)
    g.outputs = [out.name]
    return g.validate()


def _interpret(kind, inputs: dict[str, np.ndarray], attrs: dict):
    g = _graph(kind, inputs, attrs)
    return run_graph(g, {}, [inputs[n] for n in g.inputs])[0]


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("act", ["none", "relu", "gelu", "gelu_tanh", "silu"])
def test_gemm_flags(trans_b, act):
    a, b, bias = _rand(2, 5, 7), _rand(9, 7) if trans_b else _rand(7, 9), _rand(9, seed=2)
    out = _interpret("gemm", {"a": a, "b": b, "c": bias},
                     {"trans_b": trans_b, "alpha": 0.5, "beta": 2.0, "act": act})
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    y = 0.5 * (ta @ (tb.T if trans_b else tb)) + 2.0 * torch.from_numpy(bias)
    ref = {"none": y, "relu": F.relu(y), "gelu": F.gelu(y),
           "gelu_tanh": F.gelu(y, approximate="tanh"), "silu": F.silu(y)}[act]
    np.testing.assert_allclose(out, ref.numpy(), **TOL)


def test_gemm_batched_b_and_residual():
    a, b, r = _rand(3, 4, 5, 6), _rand(3, 4, 7, 6, seed=1), _rand(3, 4, 5, 7, seed=2)
    out = _interpret("gemm", {"a": a, "b": b, "c": r},
                     {"trans_b": True, "alpha": 1.0, "beta": 1.0, "act": "none"})
    ref = torch.from_numpy(a) @ torch.from_numpy(b).transpose(-1, -2) + torch.from_numpy(r)
    np.testing.assert_allclose(out, ref.numpy(), **TOL)


@pytest.mark.parametrize(("s", "t"), [(5, 5), (3, 8)])
def test_fused_attention_gqa_causal_bottom_right(s, t):
    q, k, v = _rand(1, 6, s, 8), _rand(1, 2, t, 8, seed=1), _rand(1, 2, t, 8, seed=2)
    out = _interpret("scaled_dot_product_attention", {"q": q, "k": k, "v": v},
                     {"scale": 0.4, "is_causal": True})
    keep = torch.ones(s, t, dtype=torch.bool).tril(t - s)  # j <= i + t - s
    ref = F.scaled_dot_product_attention(
        torch.from_numpy(q), torch.from_numpy(k).repeat_interleave(3, 1),
        torch.from_numpy(v).repeat_interleave(3, 1), attn_mask=keep, scale=0.4)
    np.testing.assert_allclose(out, ref.numpy(), **TOL)


def test_fused_norms_swiglu_rope():
    x, w, b = _rand(2, 3, 10), _rand(10, seed=1), _rand(10, seed=2)
    tx, tw, tb = (torch.from_numpy(v) for v in (x, w, b))
    out = _interpret("layer_norm", {"x": x, "w": w, "b": b},
                     {"normalized_shape": [10], "eps": 1e-5})
    np.testing.assert_allclose(out, F.layer_norm(tx, (10,), tw, tb, 1e-5).numpy(), **TOL)
    out = _interpret("rms_norm", {"x": x, "w": w}, {"normalized_shape": [10], "eps": 1e-6})
    np.testing.assert_allclose(out, F.rms_norm(tx, (10,), tw, 1e-6).numpy(), **TOL)
    out = _interpret("swiglu", {"g": x, "u": _rand(2, 3, 10, seed=3)}, {})
    ref = F.silu(tx) * torch.from_numpy(_rand(2, 3, 10, seed=3))
    np.testing.assert_allclose(out, ref.numpy(), **TOL)
    xr = _rand(1, 4, 6, 8)
    angles = np.arange(6)[:, None] * np.exp(-np.arange(4) / 4)[None, :]
    emb = np.concatenate([angles, angles], axis=-1)[None, None].astype(np.float32)
    cos, sin = np.cos(emb), np.sin(emb)
    out = _interpret("rope", {"x": xr, "cos": cos, "sin": sin}, {})
    rot = np.concatenate([-xr[..., 4:], xr[..., :4]], axis=-1)
    np.testing.assert_allclose(out, xr * cos + rot * sin, **TOL)


def test_fused_kinds_in_the_registry():
    a, b = Tensor("a", (2, 5, 7), "fp32"), Tensor("b", (9, 7), "fp32")
    c = Tensor("c", (9,), "fp32")
    attrs = {"trans_b": True, "alpha": 0.5, "beta": 1.0, "act": "gelu"}
    ((shape, dtype),) = lookup("gemm").infer([a, b, c], attrs)
    assert (shape, dtype) == ((2, 5, 9), "float32")
    out = Tensor("o", shape, dtype)
    outputs = 2 * 5 * 9
    # 2*M*N*K multiply-adds, then per output: alpha scale, bias add, GELU (8)
    assert lookup("gemm").flops([a, b, c], [out], attrs) == 2 * outputs * 7 + outputs * 10
    assert lookup("gemm").category.value == "gemm"
    x = Tensor("x", (4, 6), "fp32")
    assert lookup("swiglu").flops([x, x], [x], {}) == 5 * 24
    assert lookup("rope").flops([x, x, x], [x], {}) == 3 * 24
    assert lookup("rope").bytes([x, x, x], [x], {}) == 4 * 24 * 4


def test_every_registered_fused_kind_runs():
    assert {"gemm", "swiglu", "rope", "scaled_dot_product_attention", "layer_norm",
            "rms_norm", "gelu"} <= set(supported_kinds())


def test_unknown_kind_is_named_before_running():
    g = Graph("g")
    g.add_tensor(Tensor("x", (2, 3), "fp32"))
    g.inputs = ["x"]
    g.add_tensor(Tensor("y", (2, 3), "fp32"))
    g.add_node(Node("weird_node", "fancy_op", ("x",), ("y",)))
    g.outputs = ["y"]
    with pytest.raises(InterpretError, match=r"'weird_node'.*'fancy_op'"):
        run_graph(g, {}, [np.zeros((2, 3), np.float32)])


def test_bad_inputs_fail_clearly():
    g = _graph("relu", {"x": _rand(2, 3)}, {})
    with pytest.raises(InterpretError, match=r"expected shape \[2, 3\], got \[3, 2\]"):
        run_graph(g, {}, [_rand(3, 2)])
    with pytest.raises(InterpretError, match="expected float32, got int64"):
        run_graph(g, {}, [np.zeros((2, 3), np.int64)])
    with pytest.raises(InterpretError, match="expected 1 inputs"):
        run_graph(g, {}, [])
    g = _graph("add", {"x": _rand(2, 3), "w": _rand(3)}, {}, consts={"w"})
    with pytest.raises(InterpretError, match="constant 'w' has no value"):
        run_graph(g, {}, [_rand(2, 3)])


def test_gelu_reference_matches_erf_definition():
    from perfcast.runtime.reference import gelu

    x = np.linspace(-6, 6, 101, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()])
    np.testing.assert_allclose(gelu(x), exact, rtol=1e-6, atol=1e-6)
