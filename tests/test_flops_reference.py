"""FLOPs and parameter counts checked against torch.utils.flop_counter and PyTorch.

FlopCounterMode counts matmuls, convolutions and (on GPU) SDPA. perfcast also counts
arithmetic it leaves out, and each term of the difference is computed here
independently and named:

- bias adds of Linear/Conv layers: 1 FLOP per output element (counted by hooks);
- SDPA on CPU: FlopCounterMode has no formula for
  ``_scaled_dot_product_flash_attention_for_cpu`` and counts 0; the reference adds
  flop_counter's own ``sdpa_flop_count`` plus scale and softmax arithmetic per score,
  and 1 FLOP per score for the mask add where the exported SDPA takes a mask
  (Hugging Face models materialize the causal mask when traced, but call SDPA with
  ``is_causal=True`` in eager);
- MoE experts: ``aten._grouped_mm`` is counted 0 by FlopCounterMode; the reference
  adds 2*M*K*N per grouped matmul, read from the call's operand shapes.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from perfcast.examples import build_example
from perfcast.frontends.torch_export import capture
from perfcast.ir import Category
from perfcast.ir.ops.attention import SOFTMAX_FLOPS_PER_ELEMENT

MATRIX = (Category.GEMM, Category.CONV, Category.ATTENTION)


class _MissedByFlopCounter(TorchDispatchMode):
    """Counts what FlopCounterMode misses, with flop_counter's own formulas."""

    def __init__(self) -> None:
        super().__init__()
        self.sdpa = 0
        self.scores: list[int] = []  # attention scores per SDPA call, in call order
        self.grouped_mm = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        if "_scaled_dot_product_flash_attention_for_cpu" in name:
            q, k, v = args[:3]
            self.sdpa += sdpa_flop_count(q.shape, k.shape, v.shape)
            self.scores.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
        elif name == "aten._grouped_mm.default":
            a, b = args[0], args[1]
            self.grouped_mm += 2 * a.shape[0] * a.shape[1] * b.shape[-1]
        return func(*args, **kwargs)


def _bias_elements(model: torch.nn.Module, inputs) -> int:
    from transformers.pytorch_utils import Conv1D

    total = 0

    def hook(module, _args, output):
        nonlocal total
        total += output.numel()

    layers = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, Conv1D)
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, layers) and getattr(m, "bias", None) is not None]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total


def _sdpa_extra(missed: _MissedByFlopCounter, graph) -> int:
    """Scale + softmax per score, plus the mask add where the exported SDPA has a mask."""
    sdpa_nodes = [n for n in graph.nodes if n.kind == "scaled_dot_product_attention"]
    assert len(sdpa_nodes) == len(missed.scores)
    return sum(scores * (1 + SOFTMAX_FLOPS_PER_ELEMENT + int("attn_mask" in n.attrs["tensor_args"]))
               for scores, n in zip(missed.scores, sdpa_nodes, strict=True))


def _reference(model, inputs):
    missed = _MissedByFlopCounter()
    with FlopCounterMode(display=False) as counter, missed, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops(), missed


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
    counted, missed = _reference(model, inputs)
    cap = capture(model, inputs)
    graph = cap.graph  # eager runs dead code too (BERT's unused pooler), as the reference does
    by_cat: dict[Category, int] = {}
    for node in graph.nodes:
        cat = graph.category(node)
        if cat is not None and not graph.is_view(node):
            by_cat[cat] = by_cat.get(cat, 0) + int(graph.cost(node).flops)
    return {"name": name, "model": model, "inputs": inputs, "counted": counted,
            "missed": missed, "capture": cap, "graph": graph, "by_cat": by_cat}


def test_matrix_flops_match_flop_counter_exactly(measured):
    """gemm + conv + attention FLOPs equal the reference term by term."""
    by_cat, missed = measured["by_cat"], measured["missed"]
    bias = _bias_elements(measured["model"], measured["inputs"])
    ours_matrix = sum(by_cat.get(c, 0) for c in MATRIX)
    attention = missed.sdpa + _sdpa_extra(missed, measured["graph"])
    assert ours_matrix == measured["counted"] + missed.grouped_mm + bias + attention
    assert by_cat.get(Category.ATTENTION, 0) == attention


def test_total_flops_within_one_percent(measured):
    """All ops counted (norms, activations, softmax...) stay within 1% of the matmul
    reference (FlopCounterMode plus the CPU SDPA and MoE GEMMs it misses)."""
    missed = measured["missed"]
    total = sum(measured["by_cat"].values())
    reference = measured["counted"] + missed.sdpa + missed.grouped_mm
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
    _counted, missed = _reference(model, inputs)
    # 2 layers x (gate_up + down) grouped GEMMs over batch*seq*top_k = 2*32*2 routed rows
    rows, hidden, inter = 2 * 32 * 2, 256, 512
    expected = 2 * (2 * rows * hidden * 2 * inter + 2 * rows * inter * hidden)
    assert missed.grouped_mm == expected
    graph = capture(model, inputs).graph
    grouped = [n for n in graph.nodes if n.kind == "grouped_mm_fallback"]
    assert sum(int(graph.cost(n).flops) for n in grouped) == expected
