"""How a model is split over the GPUs of one replica: TP, PP, EP and DP-attention.

- ``tp``: GPUs of one pipeline stage. Attention heads, dense MLPs, shared experts and
  the vocabulary are split ``tp`` ways, unless ``dp_attention``: then each of the
  ``tp`` GPUs runs attention for its own share of the requests with all heads
  (SGLang's DP attention) and keeps only those requests' KV cache.
- ``ep``: expert parallelism inside the stage: experts are spread over ``ep`` groups,
  and each expert's width is split ``tp / ep`` ways within its group.
- ``pp``: pipeline stages; layers are split evenly.
- ``dp``: independent replicas; they add GPUs and divide the concurrency.

Dimensions may be NumPy arrays (one value per sweep point); :func:`check` validates
scalars with messages that say what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfcast.frontends.llm.config import ModelConfig
from perfcast.ir.tensor import Dim


class ParallelismError(ValueError):
    """A parallel layout that the model's shapes cannot be split into."""


@dataclass(frozen=True)
class Parallelism:
    tp: Dim = 1
    pp: Dim = 1
    ep: Dim = 1
    dp: Dim = 1
    dp_attention: bool = False

    @property
    def gpus_per_replica(self) -> Dim:
        return self.tp * self.pp

    @property
    def gpus(self) -> Dim:
        return self.tp * self.pp * self.dp

    @property
    def attention_tp(self) -> Dim:
        """Ways the attention heads are split (1 under DP attention)."""
        return 1 if self.dp_attention else self.tp

    @property
    def attention_dp(self) -> Dim:
        """Ways the requests are split among the stage's GPUs for attention."""
        return self.tp if self.dp_attention else 1

    @property
    def expert_tp(self) -> Dim:
        """Ways each expert's width is split."""
        return self.tp // self.ep

    def describe(self) -> str:
        parts = [f"tp{self.tp}"]
        for key in ("pp", "ep", "dp"):
            value = getattr(self, key)
            if np.any(np.asarray(value) != 1):
                parts.append(f"{key}{value}")
        if self.dp_attention:
            parts.append("dp-attn")
        return "-".join(parts)


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def problems(model: ModelConfig, par: Parallelism) -> list[str]:
    """What is wrong with ``par`` for ``model`` (empty when it is valid); scalars only."""
    out: list[str] = []
    tp, pp, ep, dp = (int(par.tp), int(par.pp), int(par.ep), int(par.dp))
    for key, value in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp)):
        if value < 1:
            out.append(f"{key}={value} must be at least 1")
    if out:
        return out
    heads, kv = model.num_attention_heads, model.kv_heads
    if not par.dp_attention:
        if heads % tp:
            out.append(f"tp={tp} does not divide the {heads} attention heads of {model.name} "
                       f"(allowed tp: {_divisors(heads)}; or use DP attention)")
        elif not model.mla and kv % tp and tp % kv:
            out.append(f"tp={tp} and the {kv} KV heads of {model.name} do not divide each "
                       "other (KV heads can be split or replicated, not both)")
    if pp > model.num_hidden_layers:
        out.append(f"pp={pp} exceeds the {model.num_hidden_layers} layers of {model.name}")
    if model.moe is None:
        if ep != 1:
            out.append(f"ep={ep} needs a mixture-of-experts model; {model.name} is dense")
    else:
        experts = model.moe.num_experts
        if ep > experts:
            out.append(f"ep={ep} is larger than the {experts} experts of {model.name}")
        elif experts % ep:
            out.append(f"ep={ep} does not divide the {experts} experts of {model.name} "
                       f"(allowed ep: {_divisors(experts)})")
        if tp % ep:
            out.append(f"ep={ep} must divide tp={tp} (experts are spread over the stage's "
                       "GPUs)")
    if par.dp_attention and tp == 1:
        out.append("dp_attention needs tp > 1 (it spreads requests over the tp GPUs)")
    return out


def check(model: ModelConfig, par: Parallelism) -> Parallelism:
    """Return ``par`` if valid for ``model``, else raise :class:`ParallelismError`."""
    found = problems(model, par)
    if found:
        raise ParallelismError("; ".join(found))
    return par
