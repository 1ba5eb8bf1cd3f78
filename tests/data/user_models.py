"""Models as a user writes them: factories with their own defaults, and a model that
branches on tensor values (which torch.export cannot capture)."""

import torch
from torch import nn


def wide_mlp(batch=16):
    """A factory whose own default batch is 16."""
    model = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 512))
    return model.eval(), (torch.randn(batch, 512),)


def token_model(batch=2, seq_len=32):
    """A factory with its own batch and sequence length."""
    model = nn.Sequential(nn.Embedding(100, 64), nn.Linear(64, 64))
    return model.eval(), (torch.zeros(batch, seq_len, dtype=torch.long),)


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return x * 2
        return x


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.proj(x))


def branchy():
    return Branchy().eval(), (torch.randn(2, 8),)
