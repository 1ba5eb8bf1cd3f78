"""Built-in example models, addressed as ``examples:NAME`` on the command line.

Transformer architectures come from ``models.yaml`` (each with its config.json
source); CNNs and the MLP are defined in :mod:`perfcast.examples.cnn`. Models are
built on the meta device by default: analysis needs shapes, not weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

CNN_EXAMPLES = {
    "mlp": "Three-layer MLP 1024-4096-4096-1024, input [batch, 1024]",
    "resnet50": "ResNet-50 (v1.5), input [batch, 3, 224, 224]",
    "convmix": "Small CNN: grouped/depthwise/dilated conv, hardswish, SiLU, pooling",
}


@dataclass(frozen=True)
class ExampleSpec:
    name: str
    description: str
    source: str


class UnknownExampleError(ValueError):
    """No built-in example of that name."""


@cache
def _transformer_configs() -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("models.yaml").read_text()
    return yaml.safe_load(text)


def list_examples() -> list[ExampleSpec]:
    """Every built-in example with a one-line description and its source."""
    specs = [ExampleSpec(n, d, "perfcast.examples.cnn") for n, d in CNN_EXAMPLES.items()]
    for name, entry in _transformer_configs().items():
        cfg = entry["config"]
        layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
        specs.append(ExampleSpec(name, f"{entry['family']} architecture, {layers} layers, "
                                 "input token ids [batch, seq_len]", entry["source"]))
    return specs


def build_example(name: str, *, batch: int = 1, seq_len: int = 128,
                  device: str = "meta") -> tuple[Any, tuple]:
    """``(model, example_inputs)`` for the example ``name`` on ``device``."""
    import torch

    from perfcast.examples import cnn

    if name in CNN_EXAMPLES:
        with torch.device(device):
            model = {"mlp": cnn.MLP, "resnet50": cnn.ResNet50, "convmix": cnn.ConvMix}[name]()
            shape = (batch, 1024) if name == "mlp" else (batch, 3, 224, 224)
            if name == "convmix":
                shape = (batch, 3, 64, 64)
            x = torch.zeros(shape) if device == "meta" else torch.randn(shape)
        return model.eval(), (x,)
    configs = _transformer_configs()
    if name not in configs:
        import difflib

        names = sorted([*CNN_EXAMPLES, *configs])
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownExampleError(f"unknown example {name!r}: {hint}available: {', '.join(names)}")
    from perfcast.examples.transformer import build_transformer

    entry = configs[name]
    return build_transformer(entry["family"], dict(entry["config"]), batch=batch,
                             seq_len=seq_len, device=device)
