"""Synthetic networks for whole-network calibration, drawn from a seed.

MLPs (Linear, optional LayerNorm, GELU/ReLU/SiLU), VGG-style CNNs (conv-BN-ReLU,
optional depthwise convs and residual adds, max-pool) and pre-norm transformer stacks
(LayerNorm or RMSNorm, SDPA causal attention, GELU MLP or SwiGLU). Their dimensions are
drawn from sets that no validation model (:mod:`perfcast.validate.zoo`) uses, so
calibration never measures a validation shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MLP_WIDTHS = (160, 224, 320, 416, 640, 896, 1200, 1600, 2304)
CNN_CHANNELS = (12, 20, 28, 40, 56, 80, 112)
CNN_SIZES = (28, 40, 56, 72)
TRANSFORMER_DIMS = ((192, 3), (320, 5), (448, 7), (576, 9))  # (d_model, heads): head dim 64
TRANSFORMER_SEQS = (24, 40, 96)
VOCAB = 3000
KINDS = ("mlp", "cnn", "transformer")


@dataclass(frozen=True)
class SyntheticNet:
    """A generated network at one batch; ``build()`` gives (model, inputs) in eval mode."""

    name: str
    kind: str
    config: Mapping[str, Any]

    def build(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        torch.manual_seed(0)
        c = self.config
        if self.kind == "mlp":
            return _mlp(c).eval(), (torch.randn(c["batch"], c["widths"][0]),)
        if self.kind == "cnn":
            return _CNN(c).eval(), (torch.randn(c["batch"], 3, c["size"], c["size"]),)
        return _Transformer(c).eval(), (torch.randint(0, VOCAB, (c["batch"], c["seq"])),)


def synthetic_nets(seed: int = 0, count: int = 24) -> list[SyntheticNet]:
    """``count`` networks cycling MLP, CNN and transformer, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return [SyntheticNet(f"{KINDS[i % 3]}-{i}", KINDS[i % 3], _DRAWS[KINDS[i % 3]](rng))
            for i in range(count)]


def _pick(rng: np.random.Generator, values: Sequence[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


def _draw_mlp(rng: np.random.Generator) -> dict[str, Any]:
    depth = int(rng.integers(2, 9))
    return {"widths": [_pick(rng, MLP_WIDTHS) for _ in range(depth + 1)],
            "act": _pick(rng, ("gelu", "relu", "silu")), "norm": bool(rng.random() < 0.3),
            "batch": _pick(rng, (1, 2, 4, 16))}


def _draw_cnn(rng: np.random.Generator) -> dict[str, Any]:
    stages = int(rng.integers(2, 5))
    return {"channels": [_pick(rng, CNN_CHANNELS) for _ in range(stages)],
            "size": _pick(rng, CNN_SIZES), "depthwise": bool(rng.random() < 0.4),
            "residual": bool(rng.random() < 0.5), "batch": _pick(rng, (1, 2, 4))}


def _draw_transformer(rng: np.random.Generator) -> dict[str, Any]:
    d, heads = _pick(rng, TRANSFORMER_DIMS)
    return {"d": d, "heads": heads, "layers": int(rng.integers(1, 4)),
            "seq": _pick(rng, TRANSFORMER_SEQS), "swiglu": bool(rng.random() < 0.5),
            "rms": bool(rng.random() < 0.5), "batch": _pick(rng, (1, 2, 4))}


_DRAWS: dict[str, Callable[[np.random.Generator], dict[str, Any]]] = {
    "mlp": _draw_mlp, "cnn": _draw_cnn, "transformer": _draw_transformer}


def _mlp(c: Mapping[str, Any]) -> nn.Sequential:
    act = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}[c["act"]]
    widths = c["widths"]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers += [nn.LayerNorm(widths[i + 1])] if c["norm"] else []
            layers.append(act())
    return nn.Sequential(*layers)


class _CNN(nn.Module):
    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 3
        for c_out in c["channels"]:
            blocks.append(_conv_bn_relu(c_in, c_out, groups=1))
            if c["depthwise"]:
                blocks.append(_conv_bn_relu(c_out, c_out, groups=c_out))
            blocks.append(nn.MaxPool2d(2))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.residual = c["residual"]
        self.head = nn.Linear(c_in, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            y = block(x)
            x = x + y if self.residual and y.shape == x.shape else y
        return self.head(x.mean(dim=(2, 3)))


def _conv_bn_relu(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class _Block(nn.Module):
    """Pre-norm transformer block: causal SDPA attention, then a GELU MLP or SwiGLU."""

    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        d, self.heads, self.swiglu = c["d"], c["heads"], c["swiglu"]
        norm = nn.RMSNorm if c["rms"] else nn.LayerNorm
        self.norm1, self.norm2 = norm(d), norm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        hidden = 8 * d // 3 if self.swiglu else 4 * d
        self.up = nn.Linear(d, 2 * hidden if self.swiglu else hidden)
        self.down = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, -1).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, s, d))
        h = self.up(self.norm2(x))
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h)
        return x + self.down(h)


class _Transformer(nn.Module):
    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, c["d"])
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c["layers"]))
        self.norm = nn.LayerNorm(c["d"])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
