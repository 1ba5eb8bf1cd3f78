"""FLOPs and parameter counts checked against torch.utils.flop_counter and PyTorch.

The reference and the terms FlopCounterMode misses (bias adds, CPU SDPA, MoE grouped
GEMMs) are computed by :mod:`perfcast.validate.flop_reference`, independently of the
registry's formulas; see its docstring for each term.
"""

from __future__ import annotations

import pytest
import torch

from perfcast.examples import build_example
from perfcast.frontends.torch_export import capture
from perfcast.ir import MATRIX_CATEGORIES, Category
from perfcast.validate.flop_reference import measure, sdpa_extra

CASES = [  # name, batch, seq_len
    ("gpt2", 2, 64),
    ("bert", 2, 64),
    ("llama-tiny", 2, 64),
    ("resnet50", 1, 0),
    ("mlp", 8, 0),
    ("mixtral-tiny", 2, 32),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def measured(request):
    name, batch, seq_len = request.param
    torch.manual_seed(0)
    model, inputs = build_example(name, batch=batch, seq_len=seq_len or 1, device="cpu")
    ref = measure(model, inputs)
    cap = capture(model, inputs)
    graph = cap.graph  # eager runs dead code too (BERT's unused pooler), as the reference does
    by_cat: dict[Category, int] = {}
    for node in graph.nodes:
        cat = graph.category(node)
        if cat is not None and not graph.is_view(node):
            by_cat[cat] = by_cat.get(cat, 0) + int(graph.cost(node).flops)
    return {"name": name, "model": model, "inputs": inputs, "ref": ref, "capture": cap,
            "graph": graph, "by_cat": by_cat}


def test_matrix_flops_match_flop_counter_exactly(measured):
    """gemm + conv + attention FLOPs equal the reference term by term."""
    by_cat, ref = measured["by_cat"], measured["ref"]
    ours_matrix = sum(by_cat.get(c, 0) for c in MATRIX_CATEGORIES)
    attention = ref.sdpa + sdpa_extra(ref, measured["graph"])
    assert ours_matrix == ref.counted + ref.grouped_mm + ref.bias + attention
    assert ours_matrix == ref.matrix_flops(measured["graph"])
    assert by_cat.get(Category.ATTENTION, 0) == attention


def test_total_flops_within_one_percent(measured):
    """All ops counted (norms, activations, softmax...) stay within 1% of the matmul
    reference (FlopCounterMode plus the CPU SDPA and MoE GEMMs it misses)."""
    ref = measured["ref"]
    total = sum(measured["by_cat"].values())
    reference = ref.counted + ref.sdpa + ref.grouped_mm
    assert total >= reference
    assert total == pytest.approx(reference, rel=0.01)


def test_parameter_count_exact(measured):
    model = measured["model"]
    assert measured["capture"].params == sum(p.numel() for p in model.parameters())


def test_no_unsupported_ops(measured):
    assert dict(measured["graph"].unsupported()) == {}


def test_registry_shapes_match_torch(measured):
    """Every op's inferred output shape and dtype equals what torch.export traced."""
    from perfcast.ir.registry import lookup

    graph = measured["graph"]
    for node in graph.nodes:
        inputs = [graph.tensors[i] for i in node.inputs]
        got = [(tuple(int(d) for d in s), d) for s, d in lookup(node.kind).infer(inputs,
                                                                                  node.attrs)]
        want = [(graph.tensors[o].shape, graph.tensors[o].dtype) for o in node.outputs]
        assert got == want, f"{node.name} ({node.kind})"


def test_mixtral_experts_counted_where_flop_counter_sees_none():
    model, inputs = build_example("mixtral-tiny", batch=2, seq_len=32, device="cpu")
    missed = measure(model, inputs)
    # 2 layers x (gate_up + down) grouped GEMMs over batch*seq*top_k = 2*32*2 routed rows
    rows, hidden, inter = 2 * 32 * 2, 256, 512
    expected = 2 * (2 * rows * hidden * 2 * inter + 2 * rows * inter * hidden)
    assert missed.grouped_mm == expected
    graph = capture(model, inputs).graph
    grouped = [n for n in graph.nodes if n.kind == "grouped_mm_fallback"]
    assert sum(int(graph.cost(n).flops) for n in grouped) == expected
