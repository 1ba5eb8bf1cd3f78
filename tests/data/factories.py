"""Model factories used by the CLI and bad-input tests."""

import torch
from torch import nn


def small_mlp(batch: int = 1):
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return model, (torch.randn(batch, 64),)


def broken_factory():
    raise RuntimeError("weights file 'ckpt.bin' not found")


def not_a_pair():
    return nn.Linear(4, 4)


class _DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on data: torch.export cannot trace it
            return x * 2
        return x


def fails_export():
    return _DataDependent(), (torch.randn(4),)


@torch.library.custom_op("perfcast_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


class _WithCustomOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x):
        return mystery(self.fc(x)) + mystery(x)


def with_custom_op():
    return _WithCustomOp(), (torch.randn(2, 32),)
