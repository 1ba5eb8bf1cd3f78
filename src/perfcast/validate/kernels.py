"""Ground truth per kernel: predicted eager kernels vs aten ops measured on this CPU.

The model runs ``iterations`` forwards in PyTorch eager under ``torch.profiler`` (CPU),
each inside a ``record_function`` range. Per forward, the *top-level* aten ops (no aten
ancestor) are taken in execution order; an op's time is its CPU total (itself plus its
aten children, e.g. ``linear`` includes its ``addmm``). Ops that do no work in the
estimator's eyes (views, and casts/dropouts/contiguous that launched no child op) are
left out of the sequence to align. Each position's time is the median over the forwards
that ran the most common op sequence (robust to a noisy neighbour, like the wall time).

That sequence is aligned with the estimate's eager kernels in graph order: both sides
become op families (:func:`normalize`, which folds spellings that differ between eager
and torch.export, e.g. ``addmm``/``linear``, ``native_layer_norm``/``layer_norm``, the
SDPA variants) and :class:`difflib.SequenceMatcher` pairs them. Where the model's graph
is given, ops are first paired on family *and* first-input shape, then the gaps on
family alone. Kernels left unpaired have ``measured_s=None``; measured ops left unpaired
(views included) are summed by aten name in ``unmatched_measured``: nothing is dropped.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import pairwise
from typing import Any

import numpy as np

from perfcast.bench import allocator
from perfcast.bench.timer import torch_threads
from perfcast.estimate.efficiency import EfficiencyModel
from perfcast.estimate.result import Estimate
from perfcast.frontends import aten_names
from perfcast.frontends.torch_export import split_inputs
from perfcast.hardware import HardwareSpec
from perfcast.ir import Graph
from perfcast.ir.registry import is_known, lookup

SCHEMA_VERSION = 1

# Spellings of one computation in eager and in the exported graph -> one family name.
_FAMILIES = {
    **dict.fromkeys(("addmm", "mm", "matmul", "bmm", "baddbmm", "addbmm"), "linear"),
    **dict.fromkeys(("convolution", "_convolution", "conv1d", "conv2d", "conv3d",
                     "mkldnn_convolution", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"), "convolution"),
    **dict.fromkeys(("_scaled_dot_product_flash_attention_for_cpu",
                     "_scaled_dot_product_flash_attention",
                     "_scaled_dot_product_efficient_attention",
                     "_scaled_dot_product_cudnn_attention",
                     "_scaled_dot_product_attention_math"), "scaled_dot_product_attention"),
    **dict.fromkeys(("batch_norm", "native_batch_norm", "_native_batch_norm_legit",
                     "_native_batch_norm_legit_no_training", "_batch_norm_impl_index"),
                    "batch_norm"),
    **dict.fromkeys(aten_names.CASTS, "cast"),
    **dict.fromkeys(aten_names.DROPOUTS, "dropout"),
    "native_layer_norm": "layer_norm",
    "_softmax": "softmax",
    "_log_softmax": "log_softmax",
    "max_pool2d_with_indices": "max_pool2d",
    "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "bitwise_and": "__and__",
    "bitwise_or": "__or__",
}
# Families that do nothing when eager launches no child op (same-dtype cast, eval dropout).
_MAYBE_ALIAS = frozenset({"cast", "dropout", "contiguous"})


def normalize(name: str) -> str:
    """Op family of an aten op name (``aten::addmm``) or IR kind (``linear``)."""
    kind = aten_names.ir_kind(name.removeprefix("aten::"))
    return _FAMILIES.get(kind, kind)


@dataclass(frozen=True)
class KernelMatch:
    """One estimated eager kernel and the measured aten op(s) aligned with it."""

    kernel: str
    op: str
    category: str | None
    module: str
    predicted_s: float
    measured_s: float | None  # None when no measured op matched
    measured_ops: tuple[str, ...]  # aten names that matched

    @property
    def error(self) -> float | None:
        """Signed relative error of the prediction, (predicted - measured) / measured."""
        if not self.measured_s:
            return None
        return (self.predicted_s - self.measured_s) / self.measured_s


@dataclass
class KernelReport:
    """Predicted vs measured time per kernel of one model on this machine."""

    model: str
    threads: int
    batch: int
    matches: list[KernelMatch]
    unmatched_measured: dict[str, float]  # aten op -> seconds mapped to no kernel
    measured_total_s: float  # wall time of one forward (median over iterations)
    engine: str = "eager"  # "eager" (PyTorch under the profiler) | "perfcast" (runtime steps)

    @property
    def matched(self) -> list[KernelMatch]:
        return [m for m in self.matches if m.measured_s is not None]

    @property
    def match_rate(self) -> float:
        return len(self.matched) / len(self.matches) if self.matches else 0.0

    def by_category(self) -> dict[str, dict[str, Any]]:
        """Predicted and measured seconds, APE and kernel count per category (matched only)."""
        rows: dict[str, dict[str, Any]] = {}
        for m in self.matched:
            row = rows.setdefault(m.category or "unsupported",
                                  {"predicted_s": 0.0, "measured_s": 0.0, "kernels": 0})
            row["predicted_s"] += m.predicted_s
            row["measured_s"] += m.measured_s
            row["kernels"] += 1
        for row in rows.values():
            row["ape"] = _ape(row["predicted_s"], row["measured_s"])
        return rows

    def worst(self, top: int = 20) -> list[KernelMatch]:
        """Matched kernels by decreasing absolute error."""
        return sorted(self.matched, key=lambda m: abs(m.predicted_s - (m.measured_s or 0.0)),
                      reverse=True)[:top]

    def to_dict(self) -> dict[str, Any]:
        matched = self.matched
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "engine": self.engine,
            "threads": self.threads,
            "batch": self.batch,
            "measured_total_s": self.measured_total_s,
            "kernels": len(self.matches),
            "matched": len(matched),
            "match_rate": self.match_rate,
            "predicted_matched_s": sum(m.predicted_s for m in matched),
            "measured_matched_s": sum(m.measured_s or 0.0 for m in matched),
            "by_category": self.by_category(),
            "matches": [{
                "kernel": m.kernel, "op": m.op, "category": m.category, "module": m.module,
                "predicted_s": m.predicted_s, "measured_s": m.measured_s,
                "measured_ops": list(m.measured_ops),
            } for m in self.matches],
            "unmatched_measured": dict(self.unmatched_measured),
        }

    def to_markdown(self, top: int = 20) -> str:
        """Summary, the ``top`` worst kernels by absolute error, and the category table."""
        lines = [f"# Kernel ground truth: {self.model} ({self.engine})", "",
                 f"batch {self.batch}, {self.threads} threads; "
                 f"{len(self.matched)}/{len(self.matches)} kernels matched; forward "
                 f"{_us(self.measured_total_s)} us measured, "
                 f"{_us(sum(self.unmatched_measured.values()))} us in unmatched ops.", "",
                 "| kernel | module | predicted us | measured us | error % |",
                 "|---|---|---:|---:|---:|"]
        lines += [f"| {m.kernel} | {m.module or '-'} | {_us(m.predicted_s)} | "
                  f"{_us(m.measured_s)} | {_signed_pct(m.error)} |"
                  for m in self.worst(top)]
        lines += ["", "| category | kernels | predicted us | measured us | APE % |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {cat} | {row['kernels']} | {_us(row['predicted_s'])} | "
                  f"{_us(row['measured_s'])} | {_pct(row['ape'])} |"
                  for cat, row in self.by_category().items()]
        return "\n".join(lines) + "\n"


# -- measurement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    """One top-level aten op of a forward."""

    name: str
    family: str
    shape: tuple[int, ...] | None  # first input's shape, when recorded
    seconds: float


def measure_kernels(model: Any, example_inputs: Any, *, estimate: Estimate,
                    threads: int | None = None, iterations: int = 5, warmup: int = 2,
                    graph: Graph | None = None, batch: int | None = None) -> KernelReport:
    """Profile ``model`` in eager on CPU and align its aten ops with ``estimate``'s kernels.

    ``estimate`` must be for the ``eager`` target; ``graph`` (the captured graph it was
    estimated from) lets shapes guide the alignment. ``batch`` defaults to the leading
    dimension of the first input tensor.
    """

    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if estimate.target != "eager":
        raise ValueError(f"per-kernel ground truth needs an eager estimate, "
                         f"got target {estimate.target!r}")
    allocator.fix_for_timing()  # the allocator settings model timings run under
    with torch_threads(threads) as used:
        forwards, walls = _profile(model, example_inputs, iterations, warmup)
    ops = _median_forward(forwards)
    matches, unmatched = _align(estimate, ops, graph)
    return KernelReport(estimate.model, used, batch or _batch_of(example_inputs), matches,
                        unmatched, statistics.median(walls))


def measure_target(target: str, *, batch: int = 1, seq_len: int = 32,
                   threads: int | None = None, hardware: HardwareSpec | None = None,
                   efficiency: EfficiencyModel | None = None, iterations: int = 5,
                   warmup: int = 2) -> KernelReport:
    """Build ``target`` on CPU, estimate its eager kernels, then measure them.

    The estimate runs on ``hardware`` (default: ``local`` scaled to the thread count)
    with ``efficiency`` (default: theoretical).
    """
    import torch

    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.frontends import load_target
    from perfcast.hardware import load_spec
    from perfcast.hardware.detect import scale_to_threads
    from perfcast.passes import get_target

    loaded = load_target(target, batch=batch, seq_len=seq_len, device="cpu")
    prepared = prepare(loaded.model, loaded.example_inputs, name=loaded.name)
    spec = hardware or scale_to_threads(load_spec("local"), threads or torch.get_num_threads())
    estimate = estimate_prepared(prepared, spec, target="eager", efficiency=efficiency)
    return measure_kernels(loaded.model, loaded.example_inputs, estimate=estimate,
                           threads=threads, iterations=iterations, warmup=warmup,
                           graph=prepared.graph_for(get_target("eager")), batch=batch)


def _forward(model: Any, example_inputs: Any) -> Any:
    args, kwargs = split_inputs(example_inputs)
    return model(*args, **kwargs)


def _profile(model: Any, example_inputs: Any, iterations: int,
             warmup: int) -> tuple[list[list[_Op]], list[float]]:
    """Top-level aten ops of each profiled forward, and each forward's wall time (s)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    if hasattr(model, "eval"):
        model.eval()
    labels = [f"perfcast.forward.{k}" for k in range(iterations)]
    with torch.inference_mode():
        for _ in range(warmup):
            _forward(model, example_inputs)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for label in labels:
                with record_function(label):
                    _forward(model, example_inputs)
    events = prof.events()
    ranges = {e.name: e for e in events if e.name in labels}
    walls = [ranges[label].time_range.elapsed_us() * 1e-6 for label in labels]
    per_forward: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        if e.name.startswith("aten::"):
            root = _forward_of(e)
            if root is not None:
                per_forward[root].append(e)
    forwards = [[_op(e) for e in sorted(per_forward[label], key=lambda e: e.time_range.start)]
                for label in labels]
    return forwards, walls


def _forward_of(event: Any) -> str | None:
    """The forward label above a top-level aten op; None if an aten op is above it."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return None
        if parent.name.startswith("perfcast.forward."):
            return parent.name
        parent = parent.cpu_parent
    return None


def _op(event: Any) -> _Op:
    family = normalize(event.name)
    if family in _MAYBE_ALIAS and not any(c.name.startswith("aten::")
                                          for c in event.cpu_children):
        family = "alias"
    shapes = event.input_shapes or []
    shape = next((tuple(s) for s in shapes if s), None)
    return _Op(event.name, family, shape, event.cpu_time_total * 1e-6)


def _median_forward(forwards: list[list[_Op]]) -> list[_Op]:
    """Per-position median time over the forwards that ran the most common op sequence."""
    keys = [tuple(op.name for op in ops) for ops in forwards]
    common = Counter(keys).most_common(1)[0][0]
    same = [ops for ops, key in zip(forwards, keys, strict=True) if key == common]
    return [_Op(ops[0].name, ops[0].family, ops[0].shape,
                statistics.median(op.seconds for op in ops)) for ops in zip(*same, strict=True)]


def _batch_of(example_inputs: Any) -> int:
    import torch

    values = (example_inputs.values() if isinstance(example_inputs, dict) else
              example_inputs if isinstance(example_inputs, list | tuple) else [example_inputs])
    for v in values:
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return int(v.shape[0])
    return 1


# -- alignment -----------------------------------------------------------------------------


def _is_work(op: _Op) -> bool:
    """Whether the estimator would give this measured op a kernel (views get none)."""
    if op.family == "alias":
        return False
    return not (is_known(op.family) and lookup(op.family).view)


def _kernel_shape(graph: Graph | None, node: Any) -> tuple[int, ...] | None:
    if graph is None or not node.inputs:
        return None
    shape = graph.tensors[node.inputs[0]].shape
    return tuple(shape) if all(isinstance(d, int) for d in shape) else None


def _pairs(a: list, b: list) -> list[tuple[int, int]]:
    """Index pairs of equal items in the best alignment of ``a`` and ``b``."""
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [(i + k, j + k) for i, j, n in matcher.get_matching_blocks() for k in range(n)]


def _two_pass(families: tuple[list, list], shaped: tuple[list, list]) -> list[tuple[int, int]]:
    """Pairs on (family, shape) first, then on family alone inside the gaps between them."""
    strict = _pairs(*shaped)
    bounds = [(-1, -1), *strict, (len(families[0]), len(families[1]))]
    pairs = list(strict)
    for (i0, j0), (i1, j1) in pairwise(bounds):
        gap = _pairs(families[0][i0 + 1:i1], families[1][j0 + 1:j1])
        pairs += [(i0 + 1 + i, j0 + 1 + j) for i, j in gap]
    return sorted(pairs)


def _align(estimate: Estimate, ops: list[_Op],
           graph: Graph | None) -> tuple[list[KernelMatch], dict[str, float]]:
    kernels = estimate.kernels
    work = [op for op in ops if _is_work(op)]
    anchors = [k.kernel.nodes[0] for k in kernels]
    k_families = [normalize(n.kind) for n in anchors]
    o_families = [op.family for op in work]
    k_shaped = [(f, _kernel_shape(graph, n)) for f, n in zip(k_families, anchors, strict=True)]
    o_shaped = [(op.family, op.shape) for op in work]
    measured = {i: work[j] for i, j in _two_pass((k_families, o_families), (k_shaped, o_shaped))}
    matches = [KernelMatch(
        kernel=k.kernel.name, op=k.kernel.op,
        category=str(k.kernel.category) if k.kernel.category else None,
        module=k.kernel.module, predicted_s=float(np.max(k.time_s)),
        measured_s=measured[i].seconds if i in measured else None,
        measured_ops=(measured[i].name,) if i in measured else ()) for i, k in enumerate(kernels)]
    used = {id(op) for op in measured.values()}
    unmatched: dict[str, float] = defaultdict(float)
    for op in ops:
        if id(op) not in used:
            unmatched[op.name] += op.seconds
    return matches, dict(unmatched)


def _ape(predicted: float, measured: float) -> float | None:
    return abs(predicted - measured) / measured if measured > 0 else None


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def _signed_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.0f}"
