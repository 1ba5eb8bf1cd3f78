"""The kernel-time model of a measured GPU: fitted kernel forms from a
:class:`~perfcast.estimate.gpu_profile.GpuProfile`, per engine.

GEMMs, MoE grouped GEMMs, attention (prefill, decode, MLA) and collectives are timed
by the profile's fits (CALIBRATED inside the measured range, INTERPOLATED near it,
THEORETICAL beyond); kernels it has no fit for (elementwise, norms, a dtype not
measured) go to the ``fallback`` model. A MoE layer was measured as one op (routing,
both grouped GEMMs and the activation between them, the combine); each of its two
grouped-GEMM kernels gets its share of the layer's time by FLOPs, and the kernels made
only of the op's other parts take no time of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.gpu_profile import GpuProfile, KernelFit, device_figures, figures_for
from perfcast.estimate.kernel_time import KernelTime, KernelTimeModel, peak_flops_for
from perfcast.hardware.spec import normalize_dtype
from perfcast.ir import Category
from perfcast.ir.tensor import Dim

if TYPE_CHECKING:
    from perfcast.hardware import HardwareSpec
    from perfcast.ir import Graph, Node
    from perfcast.passes import Kernel

RANDOM = "random"
DISTRIBUTIONS = (RANDOM, "balanced", "power_law_1.01", "power_law_1.2")
_MEASURED_KEY = {"bf16": "bfloat16", "fp16": "bfloat16", "fp8": "fp8", "fp4": "nvfp4"}
_COLLECTIVES = {"all_reduce", "all_gather", "reduce_scatter", "alltoall"}


_ALSO = {"fp8": ("fp8", "fp8_block"), "nvfp4": ("nvfp4", "w4a16_mxfp4")}  # same tensor cores
# MoE formats measured, by (expert weights, activations), the closest first
_MOE_KEYS = {
    ("fp4", "fp8"): ("w4a8_mxfp4_mxfp8", "nvfp4", "w4a16_mxfp4"),
    ("fp4", "fp4"): ("nvfp4", "w4a8_mxfp4_mxfp8", "w4a16_mxfp4"),
    ("fp4", "bf16"): ("w4a16_mxfp4", "nvfp4", "w4a8_mxfp4_mxfp8"),
    ("int4", "bf16"): ("int4_wo", "w4a16_mxfp4"),
    ("fp8", "fp8"): ("fp8", "fp8_block"),
    ("fp8", "bf16"): ("fp8", "fp8_block"),
    ("bf16", "bf16"): ("bfloat16",),
    ("fp16", "fp16"): ("bfloat16",),
}


def measured_key(dtype: object) -> str | None:
    """The measurement tables' name for a perfcast dtype (``bf16`` -> ``bfloat16``)."""
    return _MEASURED_KEY.get(normalize_dtype(dtype) or "")


def _first_fit(profile: GpuProfile, form: str, key: str | None) -> KernelFit | None:
    """The fit of ``key``, else of a format that runs on the same tensor cores (an engine
    that measured only block-scaled fp8 GEMMs times per-tensor fp8 with them)."""
    for k in _ALSO.get(key or "", (key,) if key else ()):
        fit = profile.fit(form, k)
        if fit is not None:
            return fit
    return None


@dataclass(frozen=True)
class MeasuredTime:
    """Kernel times from a GPU profile, falling back to ``fallback`` for the rest.

    ``distribution``: the MoE token distribution over experts: ``random`` (default:
    each token picks its experts independently and uniformly), or one as measured:
    ``balanced`` (tokens spread evenly, so as many experts as possible are hit), a
    power-law skew ``power_law_1.01`` / ``power_law_1.2``.
    """

    profile: GpuProfile
    fallback: KernelTimeModel
    distribution: str = RANDOM
    graph: Graph | None = field(default=None, repr=False, compare=False)
    # of the graph: grouped-GEMM node -> (fit, dims, share), and the nodes a measured MoE
    # op includes (both found once per graph, not per kernel timed)
    moe: dict[str, tuple[KernelFit, dict, Dim]] = field(default_factory=dict, repr=False,
                                                        compare=False)
    inside_moe: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def for_graph(self, graph: Graph) -> MeasuredTime:
        timed = replace(self, fallback=self.fallback.for_graph(graph), graph=graph)
        moe = {n.name: hit for n in graph.nodes
               if n.kind == "grouped_gemm" and (hit := timed._moe(n)) is not None}
        return replace(timed, moe=moe, inside_moe=timed._moe_op_parts(moe))

    def time(self, kernel: Kernel, hardware: HardwareSpec) -> KernelTime:
        if kernel.nodes and all(n.name in self.inside_moe for n in kernel.nodes):
            return KernelTime(0.0, 0.0, 0.0, Confidence.CALIBRATED)  # in the measured MoE op
        hit = self._fit_for(kernel)
        if hit is None:
            return self.fallback.time(kernel, hardware)
        fit, dims, share = hit
        figures = device_figures(hardware, fit.form, fit.key)
        if figures is None:
            return self.fallback.time(kernel, hardware)
        seconds = fit.seconds(dims, figures) * share
        overhead = min(fit.params["latency_s"], float(np.min(seconds)))
        busy = seconds - overhead
        compute_bound = kernel.flops / peak_flops_for(kernel, hardware) \
            >= kernel.bytes / hardware.memory_bandwidth
        return KernelTime(np.where(compute_bound, busy, 0.0), np.where(compute_bound, 0.0, busy),
                          overhead, fit.confidence(dims), busy=busy)

    def collective(self, kind: str, payload: Dim, group: Dim,
                   hardware: HardwareSpec) -> tuple[Dim, Confidence] | None:
        """Seconds of a collective from the measured NCCL (and, for all-reduce, the
        engine's own) tables, the faster where both apply; None if not measured."""
        if kind not in _COLLECTIVES:
            return None
        fits = [f for f in (self.profile.fit("collective", f"{kind}|nccl"),
                            self.profile.fit("collective", "all_reduce|engine")
                            if kind == "all_reduce" else None) if f is not None]
        if not fits:
            return None
        dims = {"bytes": np.maximum(payload, 1.0), "gpus": group, "op": kind}
        figures = figures_for(hardware, None)
        seconds = np.minimum.reduce([np.asarray(f.seconds(dims, figures)) for f in fits])
        seconds = np.where(np.asarray(group) > 1, seconds, 0.0)
        confidence = Confidence.weakest([f.confidence(dims) for f in fits])
        return (seconds if np.ndim(seconds) else float(seconds)), confidence

    def _moe_op_parts(self, moe: dict) -> frozenset[str]:
        """Nodes of MoE layers timed by a fit (in ``moe``) that the measured op already
        includes: routing (top-k, dispatch), what runs between the two grouped GEMMs, the
        combine."""
        assert self.graph is not None
        g = self.graph
        parts: set[str] = set()
        modules = dict.fromkeys(n.module for n in g.nodes if n.kind == "grouped_gemm")
        for module in modules:
            gemms = [n for n in g.nodes if n.kind == "grouped_gemm" and n.module == module]
            if len(gemms) != 2 or gemms[0].name not in moe:
                continue  # not the up/down pair of a MoE layer timed by a fit
            parts |= {n.name for n in g.nodes if n.module == module
                      and n.kind in ("topk", "moe_dispatch", "moe_combine")}
            up, down = gemms
            frontier = set(up.outputs)
            for n in g.nodes[g.nodes.index(up) + 1:g.nodes.index(down)]:
                if frontier & set(n.inputs):
                    parts.add(n.name)
                    frontier |= set(n.outputs)
        return frozenset(parts)

    # -- which fit times a kernel ---------------------------------------------------------
    def _fit_for(self, kernel: Kernel) -> tuple[KernelFit, dict, Dim] | None:
        if self.graph is None or kernel.category not in (Category.GEMM, Category.ATTENTION):
            return None
        node = next((n for n in kernel.nodes if n.kind in _TIMED), None)
        if node is None:
            return None
        if node.kind == "grouped_gemm":
            return self.moe.get(node.name)
        if node.kind in ("cached_attention", "scaled_dot_product_attention"):
            return self._attention(node)
        shape = kernel.shape
        fit = _first_fit(self.profile, "gemm", measured_key(kernel.dtype))
        if fit is None or shape is None or shape.call is not None or np.any(shape.batch != 1):
            return None
        return fit, {"m": shape.m, "n": shape.n, "k": shape.k}, 1.0

    def _shape(self, name: str) -> tuple:
        assert self.graph is not None
        return self.graph.tensors[name].shape

    def _attention(self, node: Node) -> tuple[KernelFit, dict, Dim] | None:
        assert self.graph is not None
        q, k, v = (self._shape(n) for n in node.inputs[:3])
        batch, heads, q_len, head_dim = q
        kv_heads, cached = k[1], k[2]
        window = node.attrs.get("window") or 0
        q_key = measured_key(self.graph.tensors[node.inputs[0]].dtype)
        kv_key = measured_key(self.graph.tensors[node.inputs[1]].dtype)
        decode = bool(np.all(np.asarray(q_len) == 1))
        if node.kind == "scaled_dot_product_attention":
            if not node.attrs.get("is_causal") or len(q) != 4:
                return None
            decode = False
        if node.attrs.get("value_in_key"):
            fit = self.profile.fit("mla_generation", kv_key) if kv_key else None
            return (fit, {"batch": batch, "context": cached, "heads": heads}, 1.0) \
                if fit else None
        if head_dim != v[-1]:  # MLA prefill: qk 192, v 128 per head
            fit = self.profile.fit("mla_context", kv_key) if kv_key else None
            return (fit, {"batch": batch, "isl": q_len, "heads": heads}, 1.0) if fit else None
        dims = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim,
                "window": window}
        form, key = ("generation_attention", kv_key) if decode else ("context_attention", q_key)
        if key is None:
            return None
        fit = (self.profile.fit(form, key + "|window") if window else None) \
            or self.profile.fit(form, key)
        return (fit, {**dims, "context" if decode else "isl": cached if decode else q_len},
                1.0) if fit else None

    def _moe(self, node: Node) -> tuple[KernelFit, dict, Dim] | None:
        assert self.graph is not None
        dispatch = next((n for n in self.graph.nodes
                         if n.kind == "moe_dispatch" and n.module == node.module), None)
        weight = self.graph.tensors[node.inputs[1]]
        activation = self.graph.tensors[node.inputs[0]].dtype
        keys = _MOE_KEYS.get((normalize_dtype(weight.dtype) or "",
                              normalize_dtype(activation) or ""), ())
        shape = "balanced" if self.distribution == RANDOM else self.distribution
        fit = next((f for k in keys if (f := self.profile.fit("moe", f"{k}|{shape}"))), None)
        if dispatch is None or fit is None:
            return None
        tokens, hidden = self._shape(dispatch.inputs[0])
        groups, n, k = weight.shape
        pair = [g for g in self.graph.nodes if g.kind == "grouped_gemm"
                and g.module == node.module]
        inter = self._shape(pair[-1].inputs[1])[2]  # the down projection's K
        ep = dispatch.attrs.get("shards", 1)
        share = n * k / (3 * inter * hidden)  # of a gated MLP's three matrices
        topk = dispatch.attrs.get("top_k", 1)
        experts = groups * ep
        if self.distribution == RANDOM:
            tokens = random_routing_tokens(tokens, topk, experts)
        dims = {"tokens": tokens, "hidden": hidden, "inter_local": inter, "topk": topk,
                "experts": experts, "ep": ep}
        return fit, dims, share


def random_routing_tokens(tokens: Dim, topk: int, experts: int) -> Dim:
    """Tokens that, spread evenly (the ``balanced`` measurements), hit as many experts as
    ``tokens`` routed at random do: ``experts (1 - (1 - topk/experts)^tokens)`` expected
    distinct experts, against ``min(experts, tokens topk)`` when balanced. Fewer than
    ``tokens`` where few tokens meet many experts (decode), about ``tokens`` once every
    expert is hit (prefill)."""
    t = np.asarray(tokens, dtype=float)
    hit_random = experts * (1 - (1 - topk / experts) ** t)
    hit_balanced = np.minimum(experts, t * topk)
    return t * hit_random / hit_balanced


_TIMED = {"linear", "addmm", "mm", "matmul", "bmm", "grouped_gemm", "cached_attention",
          "scaled_dot_product_attention"}
