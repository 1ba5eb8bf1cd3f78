"""LLM config -> IR graph of one GPU for one prefill or one decode step.

The graph holds one copy of each distinct layer kind (attention type x dense/MoE)
and :attr:`PhaseGraph.repeats` says how many layers of that kind the model has, so a
61-layer model is a graph of two or three layers. Node ``module`` names are
``<group>.<part>`` (``full_attention+moe.attention``), which the estimator uses for the
per-layer and per-part breakdown.

Shapes are per GPU, after :class:`Parallelism` sharding; every dimension may be a NumPy
array, so one graph describes a whole sweep of batch sizes, contexts and layouts.

Phases (``new`` tokens per request appended to a cache holding ``context - new``):
- prefill: ``new`` = ``context`` = input length; logits only for the last token.
- decode: ``new`` = 1, ``context`` = tokens already in the cache + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from perfcast.frontends.llm.config import ModelConfig
from perfcast.frontends.llm.parallel import Parallelism
from perfcast.frontends.llm.precision import RESIDUAL_DTYPE, Precision
from perfcast.ir import Graph, Tensor
from perfcast.ir.dtypes import itemsize
from perfcast.ir.tensor import Dim, ceil_div

Phase = Literal["prefill", "decode"]
_ACT_KIND = {"silu": "silu", "gelu": "gelu", "gelu_tanh": "gelu", "relu": "relu"}


@dataclass
class PhaseGraph:
    """A per-GPU graph of one phase plus how often each layer group repeats."""

    graph: Graph
    repeats: dict[str, Dim]
    phase: Phase
    batch: Dim  # requests per replica
    new_tokens: Dim
    context: Dim
    pp: Dim = 1

    def weight_bytes(self) -> Dim:
        """Weight bytes held by one GPU of one pipeline stage (all stages summed / pp)."""
        total: Dim = 0
        for t in self.graph.constants():
            total = total + t.nbytes * self.repeats[t.meta["group"]]
        return total / self.pp

    def parameter_count(self) -> Dim:
        """Parameters on one GPU summed over all layers (the model's total at tp=ep=1)."""
        total: Dim = 0
        for t in self.graph.constants():
            total = total + t.numel * self.repeats[t.meta["group"]]
        return total


class _Builder:
    """Appends the ops of one layer group to a graph, keeping names unique."""

    def __init__(self, model: ModelConfig, par: Parallelism, prec: Precision, phase: Phase,
                 batch: Dim, new: Dim, context: Dim) -> None:
        self.m, self.par, self.prec, self.phase = model, par, prec, phase
        self.g = Graph(f"{model.name}:{phase}")
        self.new, self.context = new, context
        self.batch_attn = ceil_div(batch, par.attention_dp)  # requests per GPU in attention
        self.tokens_attn = self.batch_attn * new
        self.tokens_ffn = batch * new  # tokens per stage GPU in dense MLP / MoE
        self.group = ""
        self.part = ""

    # -- primitives ------------------------------------------------------------------
    def module(self) -> str:
        return f"{self.group}.{self.part}"

    def weight(self, name: str, shape: tuple, dtype: str) -> str:
        full = f"{self.group}.{name}"
        self.g.add_tensor(Tensor(full, shape, dtype, const=True, meta={"group": self.group}))
        return full

    def input(self, name: str, shape: tuple, dtype: str) -> str:
        full = f"{self.group}.{name}"
        self.g.add_tensor(Tensor(full, shape, dtype))
        self.g.inputs.append(full)
        return full

    def op(self, kind: str, inputs: list[str], **attrs) -> list[str]:
        name = f"{self.group}.{self.part}.{kind}_{len(self.g.nodes)}"
        outs = self.g.apply(kind, inputs, attrs, name=name, module=self.module())
        return [t.name for t in outs]

    def op1(self, kind: str, inputs: list[str], **attrs) -> str:
        return self.op(kind, inputs, **attrs)[0]

    def shape(self, name: str) -> tuple:
        return self.g.tensors[name].shape

    def quantize(self, x: str, weight_dtype: str) -> str:
        """Cast activations to the GEMM's input format (fused into the producer)."""
        dtype = self.prec.gemm_dtype(weight_dtype)
        return x if self.g.tensors[x].dtype == dtype else self.op1("cast", [x], dtype=dtype)

    def linear(self, x: str, name: str, out_features: Dim, *, bias: bool = False,
               dtype: str | None = None) -> str:
        dtype = dtype or self.prec.weights
        in_features = self.shape(x)[-1]
        w = self.weight(name, (out_features, in_features), dtype)
        ins = [self.quantize(x, dtype), w]
        if bias:
            ins.append(self.weight(f"{name}.bias", (out_features,), RESIDUAL_DTYPE))
        return self.op1("linear", ins, out_dtype=RESIDUAL_DTYPE)

    def norm(self, x: str, name: str) -> str:
        w = self.weight(name, (self.shape(x)[-1],), RESIDUAL_DTYPE)
        return self.op1("rms_norm", [x, w])

    def view(self, x: str, *shape: Dim) -> str:
        return self.op1("view", [x], size=list(shape))

    def cols(self, x: str, start: Dim, end: Dim) -> str:
        return self.op1("slice", [x], dim=-1, start=start, end=end)

    def append(self, new: str) -> None:
        """Write this step's keys/values into the cache (an output of the step)."""
        self.g.outputs.append(self.op1("cast", [new], dtype=self.prec.kv_cache))

    def collective(self, kind: str, x: str, group: Dim) -> str:
        return self.op1(kind, [x], group_size=group)

    def gated(self, h: str, width: Dim) -> str:
        """act(gate) * up over the two halves of a merged gate/up projection."""
        act = _ACT_KIND[self.m.hidden_act]
        if not self.m.gated_mlp:
            return self.op1(act, [h])
        gate = self.op1(act, [self.cols(h, 0, width)])
        return self.op1("mul", [gate, self.cols(h, width, 2 * width)])

    # -- layer parts -----------------------------------------------------------------
    def attention(self, x: str, sliding: bool) -> str:
        self.part = "attention"
        m, par = self.m, self.par
        h = self.norm(x, "input_norm")
        tp = par.attention_tp
        heads = m.num_attention_heads // tp
        window = m.sliding_window if sliding else None
        cached = self.context if window is None else np.minimum(self.context, window)
        if m.mla:
            out, width = self._mla(h, heads, cached, window)
        else:
            out, width = self._gqa(h, heads, tp, cached, window)
        out = self.view(out, self.tokens_attn, width)
        o = self.linear(out, "o_proj", m.hidden_size, bias=m.attention_output_bias)
        if not par.dp_attention:
            self.part = "comm"
            o = self.collective("all_reduce", o, tp)
        self.part = "attention"
        return self.op1("add", [x, o])

    def _cache(self, name: str, heads: Dim, cached: Dim, dim: int) -> str:
        """The part of one layer's KV cache that this pass reads."""
        return self.input(name, (self.batch_attn, heads, cached, dim), self.prec.kv_cache)

    def _gqa(self, h: str, heads: Dim, tp: Dim, cached: Dim, window) -> tuple[str, Dim]:
        m = self.m
        d = m.head_dim
        kv_heads = np.maximum(m.num_key_value_heads // tp, 1)
        if isinstance(kv_heads, np.integer):
            kv_heads = int(kv_heads)
        qkv = self.linear(h, "qkv_proj", (heads + 2 * kv_heads) * d, bias=m.attention_bias)
        q = self.view(self.cols(qkv, 0, heads * d), self.tokens_attn, heads, d)
        k_new = self.view(self.cols(qkv, heads * d, (heads + kv_heads) * d),
                          self.tokens_attn, kv_heads, d)
        v_new = self.cols(qkv, (heads + kv_heads) * d, (heads + 2 * kv_heads) * d)
        if m.qk_norm:
            q = self.norm(q, "q_norm")
            k_new = self.norm(k_new, "k_norm")
        q = self.op1("rotary_embedding", [q])
        k_new = self.op1("rotary_embedding", [k_new])
        for new in (k_new, v_new):
            self.append(new)
        k = self._cache("k_cache", kv_heads, cached, d)
        v = self._cache("v_cache", kv_heads, cached, d)
        q = self.view(q, self.batch_attn, heads, self.new, d)
        out = self.op1("cached_attention", [q, k, v], causal=True, window=window,
                       context=self.context, sinks=m.attention_sinks)
        return out, heads * d

    def _mla(self, h: str, heads: Dim, cached: Dim, window) -> tuple[str, Dim]:
        mla = self.m.mla
        assert mla is not None
        nope, rope, rank, vdim = (mla.qk_nope_head_dim, mla.qk_rope_head_dim,
                                  mla.kv_lora_rank, mla.v_head_dim)
        t = self.tokens_attn
        if mla.q_lora_rank:
            q_lat = self.norm(self.linear(h, "q_a_proj", mla.q_lora_rank), "q_a_norm")
            q = self.linear(q_lat, "q_b_proj", heads * (nope + rope))
        else:
            q = self.linear(h, "q_proj", heads * (nope + rope))
        kv_a = self.linear(h, "kv_a_proj", rank + rope)
        latent = self.norm(self.cols(kv_a, 0, rank), "kv_a_norm")
        k_rope = self.op1("rotary_embedding", [self.cols(kv_a, rank, rank + rope)])
        self.append(latent)  # the latent and the shared rope key are what MLA caches
        self.append(k_rope)
        q = self.view(q, t, heads, nope + rope)
        q_nope = self.op1("slice", [q], dim=-1, start=0, end=nope)
        q_rope = self.op1("rotary_embedding", [self.op1("slice", [q], dim=-1, start=nope,
                                                        end=nope + rope)])
        kv_b = self.prec.weights
        if self.phase == "decode":
            # Absorbed form: attend in the latent space, shared by all heads like MQA.
            w_uk = self.weight("w_uk", (heads, nope, rank), kv_b)
            q_lat = self.op1("bmm", [self.op1("transpose", [q_nope], dim0=0, dim1=1), w_uk])
            q_lat = self.op1("transpose", [q_lat], dim0=0, dim1=1)
            q_full = self.op1("cat", [q_lat, q_rope], dim=-1)
            q_full = self.view(q_full, self.batch_attn, heads, self.new, rank + rope)
            cache = self._cache("latent_cache", 1, cached, rank + rope)
            v = self.view(self.cols(cache, 0, rank), self.batch_attn, 1, cached, rank)
            out = self.op1("cached_attention", [q_full, cache, v], causal=True,
                           window=window, context=self.context, value_in_key=True)
            out = self.op1("transpose", [self.view(out, t, heads, rank)], dim0=0, dim1=1)
            w_uv = self.weight("w_uv", (heads, rank, vdim), kv_b)
            out = self.op1("transpose", [self.op1("bmm", [out, w_uv])], dim0=0, dim1=1)
            return out, heads * vdim
        # Prefill: expand the latent of every cached token to per-head K and V.
        cache = self._cache("latent_cache", 1, cached, rank + rope)
        rows = self.view(self.cols(cache, 0, rank), self.batch_attn * cached, rank)
        kv = self.linear(rows, "kv_b_proj", heads * (nope + vdim))
        k = self.view(self.cols(kv, 0, heads * nope), self.batch_attn, heads, cached, nope)
        k = self.op1("cat", [k, self.op1("expand", [self.cols(cache, rank, rank + rope)],
                                         size=[self.batch_attn, heads, cached, rope])], dim=-1)
        v = self.view(self.cols(kv, heads * nope, heads * (nope + vdim)),
                      self.batch_attn, heads, cached, vdim)
        q_full = self.view(self.op1("cat", [q_nope, q_rope], dim=-1),
                           self.batch_attn, heads, self.new, nope + rope)
        out = self.op1("cached_attention", [q_full, k, v], causal=True, window=window,
                       context=self.context)
        return out, heads * vdim

    def _gather(self, x: str) -> str:
        """DP attention: collect every request's tokens before the stage-wide FFN."""
        if not self.par.dp_attention:
            return x
        self.part = "comm"
        return self.collective("all_gather", x, self.par.tp)

    def _reduce(self, y: str) -> str:
        self.part = "comm"
        if self.par.dp_attention:
            return self.collective("reduce_scatter", y, self.par.tp)
        return self.collective("all_reduce", y, self.par.tp)

    def mlp(self, x: str, width: int, name: str = "mlp") -> str:
        self.part = "mlp"
        h = self._gather(self.norm(x, "post_attention_norm"))
        self.part = "mlp"
        y = self._dense(h, width // self.par.tp, name)
        y = self._reduce(y)
        self.part = "mlp"
        return self.op1("add", [x, y])

    def _dense(self, h: str, width: Dim, name: str) -> str:
        up = self.linear(h, f"{name}.gate_up_proj", (2 if self.m.gated_mlp else 1) * width,
                         bias=self.m.mlp_bias)
        return self.linear(self.gated(up, width), f"{name}.down_proj", self.m.hidden_size,
                           bias=self.m.mlp_bias)

    def moe(self, x: str) -> str:
        self.part = "moe"
        m, par = self.m, self.par
        moe = m.moe
        assert moe is not None
        h = self._gather(self.norm(x, "post_attention_norm"))
        self.part = "moe"
        logits = self.linear(h, "router", moe.num_experts, bias=moe.expert_bias,
                             dtype=RESIDUAL_DTYPE)
        self.op("topk", [logits], k=moe.experts_per_token, dim=-1)
        local = moe.num_experts // par.ep
        width = moe.expert_intermediate_size // par.expert_tp
        hit = 1 - (1 - moe.experts_per_token / moe.num_experts) ** self.tokens_ffn
        active = local * hit  # expected experts on this GPU that receive tokens
        xq = self.quantize(h, self.prec.experts)
        rows = self.op1("moe_dispatch", [xq], top_k=moe.experts_per_token, shards=par.ep)
        gated = 2 if m.gated_mlp else 1
        w1 = [self.weight("experts.w1", (local, gated * width, m.hidden_size),
                          self.prec.experts)]
        w2 = [self.weight("experts.w2", (local, m.hidden_size, width), self.prec.experts)]
        if moe.expert_bias:
            w1.append(self.weight("experts.b1", (local, gated * width), RESIDUAL_DTYPE))
            w2.append(self.weight("experts.b2", (local, m.hidden_size), RESIDUAL_DTYPE))
        up = self.op1("grouped_gemm", [rows, *w1], active_groups=active,
                      out_dtype=RESIDUAL_DTYPE)
        act = self.quantize(self.gated(up, width), self.prec.experts)
        down = self.op1("grouped_gemm", [act, *w2], active_groups=active,
                        out_dtype=RESIDUAL_DTYPE)
        y = self.op1("moe_combine", [down, h])
        if moe.num_shared_experts:
            shared = self._dense(h, moe.shared_size // par.tp, "shared_experts")
            y = self.op1("add", [y, shared])
        y = self._reduce(y)
        self.part = "moe"
        return self.op1("add", [x, y])

    # -- model ends ----------------------------------------------------------------
    def embed(self) -> str:
        self.group, self.part = "embed", "embed"
        vocab = self.m.vocab_size // self.par.attention_tp
        w = self.weight("embed_tokens", (vocab, self.m.hidden_size), RESIDUAL_DTYPE)
        ids = self.input("input_ids", (self.tokens_attn,), "int64")
        x = self.op1("embedding", [w, ids])
        if not self.par.dp_attention:
            self.part = "comm"
            x = self.collective("all_reduce", x, self.par.attention_tp)
        return x

    def head(self, x: str) -> str:
        self.group, self.part = "lm_head", "lm_head"
        m = self.m
        last = self.op1("slice", [self.view(x, self.batch_attn, self.new, m.hidden_size)],
                        dim=1, start=self.new - 1, end=self.new)
        h = self.norm(self.view(last, self.batch_attn, m.hidden_size), "norm")
        vocab = m.vocab_size // self.par.attention_tp
        if m.tie_word_embeddings:
            w = "embed.embed_tokens"
            logits = self.op1("linear", [h, w])
        else:
            logits = self.linear(h, "lm_head", vocab, dtype=RESIDUAL_DTYPE)
        if not self.par.dp_attention:
            self.part = "comm"
            logits = self.collective("all_gather", self.op1("transpose", [logits], dim0=0,
                                                            dim1=1), self.par.attention_tp)
        self.part = "lm_head"
        return self.op1("argmax", [logits], dim=0)


def build_phase_graph(model: ModelConfig, phase: Phase, batch: Dim, new_tokens: Dim,
                      context: Dim, par: Parallelism, precision: Precision) -> PhaseGraph:
    """The per-GPU graph of one forward pass over ``batch`` requests of one replica."""
    b = _Builder(model, par, precision, phase, batch, new_tokens, context)
    x = b.embed()
    counts: dict[str, int] = {}
    for attn, routed in model.layer_kinds():
        group = f"{attn}+{'moe' if routed else 'mlp'}"
        counts[group] = counts.get(group, 0) + 1
    for group in counts:
        b.group = group
        attn, ffn = group.split("+")
        x = b.attention(x, sliding=attn == "sliding_attention")
        x = b.moe(x) if ffn == "moe" else b.mlp(x, model.intermediate_size)
    out = b.head(x)
    b.g.outputs.append(out)
    repeats: dict[str, Dim] = {"embed": 1, "lm_head": 1, **counts}
    return PhaseGraph(b.g, repeats, phase, batch, new_tokens, context, pp=par.pp)


def kv_cache_bytes(model: ModelConfig, par: Parallelism, precision: Precision, batch: Dim,
                   context: Dim) -> Dim:
    """KV-cache bytes on one GPU holding ``batch`` requests (per replica) of ``context`` tokens.

    Per layer and token: 2 x KV heads x head_dim for GQA (heads split by attention TP,
    replicated when TP exceeds them), the latent plus rope key for MLA (replicated
    under TP). Sliding-window layers keep only the last ``sliding_window`` tokens.
    Layers are split over ``pp`` stages and requests over DP-attention ranks.
    """
    tp = par.attention_tp
    if model.mla:
        per_token = model.mla.cache_dim
    else:
        per_token = 2 * np.maximum(model.num_key_value_heads // tp, 1) * model.head_dim
    total: Dim = 0.0  # float64: exact below 2**53 bytes, never wraps around above
    for attn, _ in model.layer_kinds():
        sliding = attn == "sliding_attention"
        tokens = np.minimum(context, model.sliding_window) if sliding else context
        total = total + np.multiply(tokens, per_token, dtype=np.float64)
    requests = ceil_div(batch, par.attention_dp)
    return requests * total * itemsize(precision.kv_cache) / par.pp
