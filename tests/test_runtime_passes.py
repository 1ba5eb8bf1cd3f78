"""Graph passes on real captures: outputs still match PyTorch before passes, after each
pass alone and after all of them; the graph stays valid; the expected fusions happen;
every pass can be switched off."""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fn_module import Fn
from perfcast.frontends.torch_export import capture
from perfcast.ir import Category, Graph, lookup
from perfcast.passes import (
    PASS_NAMES,
    PassError,
    constant_fold,
    dead_code,
    fuse,
    partition,
    run_passes,
    simplify,
)
from perfcast.runtime import eval_node, run_graph

_SPEC = importlib.util.spec_from_file_location(
    "runtime_models", Path(__file__).parent / "data" / "runtime_models.py")
models = importlib.util.module_from_spec(_SPEC)  # type: ignore[arg-type]
_SPEC.loader.exec_module(models)  # type: ignore[union-attr]

TOL = {"rtol": 1e-4, "atol": 1e-4}
CONFIGS = {"none": (), **{f"{p}_only": (p,) for p in PASS_NAMES}, "all": PASS_NAMES}


class Case:
    """A captured model with its weights and PyTorch's outputs."""

    def __init__(self, model: nn.Module, inputs: tuple) -> None:
        cap = capture(model, inputs, keep_weights=True)
        self.graph, self.weights = cap.graph, cap.weights
        self.inputs = [x.numpy() for x in inputs]
        with torch.no_grad():
            out = model(*inputs)
        if hasattr(out, "logits"):
            out = (out.logits,)
        elif hasattr(out, "last_hidden_state"):
            out = (out.last_hidden_state, out.pooler_output)
        self.expected = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    def passes(self, enabled=PASS_NAMES):
        return run_passes(self.graph, self.weights, evaluate=eval_node,
                          enable={p: p in enabled for p in PASS_NAMES})

    def check(self, graph: Graph, consts) -> None:
        graph.validate()
        check_types(graph)
        outs = run_graph(graph, consts, self.inputs)
        for out, ref in zip(outs, self.expected, strict=True):
            np.testing.assert_allclose(out, ref, **TOL)


def check_types(graph: Graph) -> None:
    """Every node's declared outputs are what the registry infers (fused kinds included)."""
    for n in graph.nodes:
        inferred = lookup(n.kind).infer([graph.tensors[i] for i in n.inputs], n.attrs)
        declared = [(graph.tensors[o].shape, graph.tensors[o].dtype) for o in n.outputs]
        assert [(tuple(s), d) for s, d in inferred] == declared, n


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: Case(*factory()) for name, factory in models.MODELS.items()}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_outputs_match_torch_before_after_each_pass_and_all(cases, name, config):
    case = cases[name]
    graph, consts, report = case.passes(CONFIGS[config])
    case.check(graph, consts)
    assert [p.name for p in report.passes if p.enabled] == list(CONFIGS[config])


def _kinds(graph: Graph) -> Counter:
    return Counter(n.kind for n in graph.nodes)


def _attention(graph: Graph):
    return [n for n in graph.nodes if n.kind == "scaled_dot_product_attention"]


def _gemms(graph: Graph, **flags):
    return [n for n in graph.nodes if n.kind == "gemm"
            and all(n.attrs.get(k) == v for k, v in flags.items())]


MASK_SUBGRAPH = {"arange", "index", "le", "eq", "__and__", "cumsum", "diff", "new_ones", "ne",
                 "ones", "tril", "bitwise_not", "masked_fill", "softmax", "alias", "matmul",
                 "linear", "addmm", "tanh", "pow", "mean", "rsqrt", "silu", "cat", "neg"}


def _no_leftovers(graph: Graph, allowed_extra=()) -> None:
    left = set(_kinds(graph)) & (MASK_SUBGRAPH - set(allowed_extra))
    assert not left, left


def test_gpt2_fusions(cases):
    graph, _, report = cases["gpt2"].passes()
    attn = _attention(graph)
    assert len(attn) == 2 and all(n.attrs["is_causal"] and len(n.inputs) == 3 for n in attn)
    assert len(_gemms(graph)) == 2 * 4 + 1
    assert len(_gemms(graph, act="gelu_tanh")) == 2
    assert _kinds(graph)["layer_norm"] == 5
    _no_leftovers(graph)
    assert report["fuse"].patterns["causal_mask"] == 2
    assert report["fuse"].patterns["gelu_tanh"] == 2
    assert report["fold"].removed > 30  # the mask and position subgraphs became constants


def test_bert_fusions(cases):
    graph, _, report = cases["bert"].passes()
    attn = _attention(graph)
    # BERT's all-ones padding mask is dropped; BERT is not causal
    assert len(attn) == 2 and all(not n.attrs["is_causal"] and len(n.inputs) == 3
                                  for n in attn)
    assert report["fuse"].patterns["mask_dropped"] == 2
    assert len(_gemms(graph)) == 2 * 6 + 1
    assert len(_gemms(graph, act="gelu")) == 2
    _no_leftovers(graph, allowed_extra={"tanh"})  # the pooler's tanh has no GEMM epilogue


def test_qwen3_fusions(cases):
    graph, _, report = cases["qwen3"].passes()
    kinds = _kinds(graph)
    assert kinds["rms_norm"] == 2 * 4 + 1  # input, post-attention, q and k norms; final
    assert kinds["rope"] == 2 * 2 and kinds["swiglu"] == 2
    attn = _attention(graph)
    assert len(attn) == 2
    for n in attn:
        q, k, v = (graph.tensors[i] for i in n.inputs)
        assert n.attrs["is_causal"] and len(n.inputs) == 3
        assert (q.shape[1], k.shape[1], v.shape[1]) == (8, 2, 2)  # GQA: K/V not expanded
    assert len(_gemms(graph)) == 2 * 7 + 1
    residual = [n for n in _gemms(graph) if len(n.inputs) == 3]
    assert len(residual) == 2 * 2  # o_proj and down_proj take the residual as c
    assert {"expand", "unsqueeze", "reshape"}.isdisjoint(
        {graph.producers()[i].kind for n in attn for i in n.inputs[1:]})
    _no_leftovers(graph)
    assert report["fuse"].patterns["gqa"] == 2


@pytest.mark.parametrize("name", ["block", "block_manual"])
def test_transformer_block_fusions(cases, name):
    graph, _, report = cases[name].passes()
    (attn,) = _attention(graph)
    assert attn.attrs["is_causal"] and len(attn.inputs) == 3
    assert math.isclose(attn.attrs["scale"], 1 / math.sqrt(16), rel_tol=1e-6)
    assert len(_gemms(graph)) == 4 and len(_gemms(graph, act="gelu")) == 1
    _no_leftovers(graph)
    if name == "block_manual":
        assert report["fuse"].patterns["attention"] == 1
        assert report["fuse"].patterns["causal_mask"] == 1


def test_mlp_fuses_bias_and_activations_and_keeps_flops(cases):
    case = cases["mlp"]
    graph, _, _ = case.passes()
    assert [n.attrs["act"] for n in graph.nodes] == ["gelu", "relu", "silu"]
    assert all(n.kind == "gemm" and len(n.inputs) == 3 for n in graph.nodes)
    before = sum(int(case.graph.cost(n).flops) for n in case.graph.nodes)
    assert sum(int(graph.cost(n).flops) for n in graph.nodes) == before


def test_estimator_partitions_fused_graphs(cases):
    graph, _, _ = cases["qwen3"].passes()
    kernels = partition(graph, "eager")
    assert all(k.supported for k in kernels)
    gemm_flops = sum(int(k.flops) for k in kernels if k.category == Category.GEMM)
    expected = 0
    for n in _gemms(graph):  # Qwen3's GEMMs: alpha 1, no activation, residual c or none
        out = int(np.prod(graph.tensors[n.outputs[0]].shape))
        expected += 2 * out * graph.tensors[n.inputs[0]].shape[-1] + out * (len(n.inputs) - 2)
    assert gemm_flops == expected


class ViewedBias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.randn(8, 5)), nn.Parameter(torch.randn(5))

    def forward(self, x):
        return F.relu(torch.mm(x.view(-1, 8), self.w).view(2, 3, 5) + self.b)


def test_bias_and_activation_fuse_across_a_reshape():
    torch.manual_seed(0)
    case = Case(ViewedBias(), (torch.randn(2, 3, 8),))
    graph, consts, report = case.passes()
    case.check(graph, consts)
    assert [n.kind for n in graph.nodes] == ["view", "gemm", "view"]
    (g,) = _gemms(graph, act="relu")
    assert len(g.inputs) == 3 and g.inputs[2] == "b"
    assert report["fuse"].patterns["gemm_bias"] == 1 and report["fuse"].patterns["gemm_relu"]


def test_each_pass_is_switchable(cases):
    case = cases["gpt2"]
    no_fold, _, report = case.passes(("simplify", "fuse", "dce"))
    assert not report["fold"].enabled and not report["fold"].patterns
    assert {"arange", "cumsum", "index"} <= set(_kinds(no_fold))  # mask built at run time
    assert all(len(n.inputs) == 4 for n in _attention(no_fold))  # not constant: mask kept
    no_fuse, _, _ = case.passes(("fold", "simplify", "dce"))
    assert not _attention(no_fuse)[0].attrs.get("is_causal")
    assert "tanh" in _kinds(no_fuse) and not _gemms(no_fuse, act="gelu_tanh")
    no_simplify, _, _ = case.passes(("fold", "fuse", "dce"))
    assert "alias" in _kinds(no_simplify)
    no_dce, consts, _ = case.passes(("fold", "simplify", "fuse"))
    unused = {t.name for t in no_dce.constants()} - {i for n in no_dce.nodes for i in n.inputs}
    assert unused and unused <= set(consts)  # dead constants stay without dce
    with pytest.raises(PassError, match="unknown pass 'fusion'; allowed: fold, simplify"):
        run_passes(case.graph, case.weights, evaluate=eval_node, enable={"fusion": False})


def test_passes_do_not_mutate_their_inputs(cases):
    case = cases["qwen3"]
    dump, names = case.graph.dump(), set(case.weights)
    for fn in (lambda g, c: constant_fold(g, c, evaluate=eval_node), simplify, fuse, dead_code):
        fn(case.graph, case.weights)
    assert case.graph.dump() == dump and set(case.weights) == names


# -- decompositions written out by hand -----------------------------------------------
class Decomposed(nn.Module):
    """LayerNorm, RMSNorm, erf and tanh GELU, SwiGLU and RoPE spelled out in ops."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.randn(d)), nn.Parameter(torch.randn(d))
        self.g = nn.Parameter(torch.randn(d))
        self.up, self.gate = nn.Linear(d, 24, bias=False), nn.Linear(d, 24, bias=False)
        self.down = nn.Linear(24, d)
        pos = torch.arange(6.0)[:, None] / 100 ** (torch.arange(d // 2) / (d // 2))
        emb = torch.cat([pos, pos], dim=-1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        x = (x - mu) / torch.sqrt(var + 1e-5) * self.w + self.b
        r = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.g
        h = F.silu(self.gate(r)) * self.up(r)
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        h = self.down(h)
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        half = h.shape[-1] // 2
        rot = torch.cat([-h[..., half:], h[..., :half]], dim=-1)
        return h * self.cos + rot * self.sin


def test_decompositions_are_recognized():
    torch.manual_seed(0)
    case = Case(Decomposed().eval(), (torch.randn(2, 6, 16),))
    graph, consts, report = case.passes()
    case.check(graph, consts)
    kinds = _kinds(graph)
    assert kinds["layer_norm"] == 1 and kinds["rms_norm"] == 1 and kinds["rope"] == 1
    assert kinds["swiglu"] == 1
    # the erf GELU reads the SwiGLU output (no GEMM epilogue): it stays a gelu node
    assert report["fuse"].patterns["gelu_erf"] == 1 and report["fuse"].patterns["gelu_tanh"] == 1
    assert len(_gemms(graph, act="gelu_tanh")) == 1  # tanh GELU became down's epilogue
    assert set(kinds) <= {"layer_norm", "rms_norm", "gemm", "swiglu", "gelu", "rope"}


class GroupedAttention(nn.Module):
    """Manual attention with GQA by repeat_interleave, a multiplied scale and an additive
    mask that is a model input (not a constant: it must stay)."""

    def forward(self, q, k, v, mask):
        k, v = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) * 0.25 + mask
        return torch.matmul(torch.softmax(scores, dim=-1), v)


def test_attention_with_additive_input_mask_and_repeat_interleave_gqa():
    torch.manual_seed(0)
    inputs = (torch.randn(1, 6, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8),
              torch.randn(1, 1, 5, 5))
    case = Case(GroupedAttention(), inputs)
    graph, consts, report = case.passes()
    case.check(graph, consts)
    (attn,) = _attention(graph)
    assert len(attn.inputs) == 4 and not attn.attrs["is_causal"]
    assert attn.attrs["scale"] == 0.25
    assert graph.tensors[attn.inputs[1]].shape == (1, 2, 5, 8)
    assert report["fuse"].patterns["attention"] == 1 and report["fuse"].patterns["gqa"] == 1


def test_torch_causal_attention_with_fewer_queries_becomes_an_explicit_mask():
    sdpa = Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    case = Case(sdpa, (torch.randn(1, 2, 3, 8), torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 8)))
    graph, consts, report = case.passes()
    case.check(graph, consts)
    (attn,) = _attention(graph)
    assert not attn.attrs["is_causal"] and graph.tensors[attn.inputs[3]].const
    assert report["fuse"].patterns["causal_top_left"] == 1


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(12, 8))

    def forward(self, x):
        return (x * 2.0) @ self.w.t() / 4.0


def test_transposed_weight_and_scalars_go_into_gemm_flags():
    torch.manual_seed(0)
    case = Case(Scaled(), (torch.randn(3, 8),))
    graph, consts, report = case.passes(("simplify", "dce"))  # no folding of w.t()
    case.check(graph, consts)
    (node,) = graph.nodes
    assert node.kind == "gemm" and node.attrs["trans_b"] and node.attrs["alpha"] == 0.5
    assert node.inputs[1] == "w"
    assert report["simplify"].patterns["transpose_to_trans_b"] == 1
    assert report["simplify"].patterns["scalar_to_alpha"] == 2


def test_report_summary_names_passes_and_patterns(cases):
    _, _, report = cases["qwen3"].passes()
    text = report.summary()
    assert "fuse" in text and "rms_norm 9" in text and "swiglu 2" in text
    assert report.nodes_after < report.nodes_before
    assert report.patterns()["rope"] == 4


@pytest.mark.slow
def test_gpt2_small_full_size_matches_torch():
    case = Case(*models.gpt2(full=True, seq=32))
    case.check(case.graph, case.weights)
    graph, consts, _ = case.passes()
    case.check(graph, consts)
    assert len(_attention(graph)) == 12 and len(_gemms(graph)) == 12 * 4 + 1
    _no_leftovers(graph)
