"""The models ``perfcast validate models`` predicts and measures by default.

MLPs and CNNs of several widths and depths, GPT-2, BERT and a Llama-style decoder,
all with random weights. None of them is run by calibration, which only times single
ops (:mod:`perfcast.calibrate.sampler`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

TRANSFORMER_SEQ = 64
LLAMA_SMALL = {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 4,
               "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 8192,
               "max_position_embeddings": 2048, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
               "tie_word_embeddings": False}


@dataclass(frozen=True)
class ZooModel:
    """A validation model: how to build it at a batch size."""

    name: str
    kind: str
    description: str

    def build(self, batch: int) -> tuple[Any, tuple]:
        """``(model, example_inputs)`` on the CPU in eval mode, with random weights."""
        return _BUILDERS[self.name](batch)


def _mlp(widths: list[int]) -> Any:
    from torch import nn

    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def _cnn(width: int, depth: int) -> Any:
    """A VGG-style CNN: ``depth`` stages of two 3x3 conv-BN-ReLU, widths doubling."""
    from torch import nn

    layers: list[nn.Module] = []
    c_in = 3
    for stage in range(depth):
        c_out = width * 2**stage
        for _ in range(2):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU()]
            c_in = c_out
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 100)]
    return nn.Sequential(*layers)


def _vector_model(widths: list[int]):
    def build(batch: int) -> tuple[Any, tuple]:
        import torch

        torch.manual_seed(0)
        return _mlp(widths).eval(), (torch.randn(batch, widths[0]),)
    return build


def _image_model(width: int, depth: int, size: int = 64):
    def build(batch: int) -> tuple[Any, tuple]:
        import torch

        torch.manual_seed(0)
        return _cnn(width, depth).eval(), (torch.randn(batch, 3, size, size),)
    return build


def _example(name: str):
    def build(batch: int) -> tuple[Any, tuple]:
        from perfcast.examples import build_example

        return build_example(name, batch=batch, seq_len=TRANSFORMER_SEQ, device="cpu")
    return build


def _llama_small(batch: int) -> tuple[Any, tuple]:
    from perfcast.examples.transformer import build_transformer

    return build_transformer("llama", dict(LLAMA_SMALL), batch=batch, seq_len=TRANSFORMER_SEQ,
                             device="cpu")


_BUILDERS = {
    "mlp-narrow": _vector_model([256, 512, 512, 256]),
    "mlp-deep": _vector_model([768] * 7),
    "mlp-wide": _vector_model([1024, 4096, 4096, 1024]),
    "cnn-narrow": _image_model(16, 3),
    "cnn-wide": _image_model(48, 3),
    "cnn-deep": _image_model(24, 4, size=96),
    "convmix": _example("convmix"),
    "resnet50": _example("resnet50"),
    "gpt2": _example("gpt2"),
    "bert": _example("bert"),
    "llama-small": _llama_small,
}
ZOO = {
    "mlp-narrow": ZooModel("mlp-narrow", "mlp", "MLP 256-512-512-256, GELU"),
    "mlp-deep": ZooModel("mlp-deep", "mlp", "MLP of six 768x768 layers, GELU"),
    "mlp-wide": ZooModel("mlp-wide", "mlp", "MLP 1024-4096-4096-1024, GELU"),
    "cnn-narrow": ZooModel("cnn-narrow", "cnn", "VGG-style, width 16, 3 stages, 64x64"),
    "cnn-wide": ZooModel("cnn-wide", "cnn", "VGG-style, width 48, 3 stages, 64x64"),
    "cnn-deep": ZooModel("cnn-deep", "cnn", "VGG-style, width 24, 4 stages, 96x96"),
    "convmix": ZooModel("convmix", "cnn", "grouped/depthwise/dilated convs, 64x64"),
    "resnet50": ZooModel("resnet50", "cnn", "ResNet-50, 224x224"),
    "gpt2": ZooModel("gpt2", "transformer", f"GPT-2 small, {TRANSFORMER_SEQ} tokens"),
    "bert": ZooModel("bert", "transformer", f"BERT-base, {TRANSFORMER_SEQ} tokens"),
    "llama-small": ZooModel("llama-small", "transformer",
                            f"Llama-style (GQA, SwiGLU, RoPE), 4x512, {TRANSFORMER_SEQ} tokens"),
}
