"""Models whose results are not plain tensors: flatten them so torch.export takes them.

``transformers`` models return ``ModelOutput`` objects, and with their default config
(``use_cache=True``) one of the fields is a ``Cache`` object (``DynamicCache`` holding
per-layer key/value tensors) that torch.export cannot return. The present key/value
tensors are real results of a prefill — the engine keeps them — so they stay outputs:
:class:`FlatOutputs` wraps a model and returns every tensor reachable from its result
(mappings, sequences and plain objects' attributes, in a fixed order, each tensor once).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from perfcast.frontends.torch_export import WRAPPED

_MAX_DEPTH = 6


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor reachable from ``value``, depth-first, each object once."""
    found: list[torch.Tensor] = []
    _walk(value, found, set(), 0)
    return found


def _walk(value: Any, found: list[torch.Tensor], seen: set[int], depth: int) -> None:
    if isinstance(value, torch.Tensor):
        if id(value) not in seen:
            seen.add(id(value))
            found.append(value)
        return
    if value is None or isinstance(value, str | bytes | int | float | bool | torch.dtype
                                   | torch.device) or depth > _MAX_DEPTH or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Mapping):
        items: Any = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif hasattr(value, "__dict__") and not isinstance(value, nn.Module | type):
        items = vars(value).values()  # e.g. a Cache: .layers -> [.keys, .values]
    else:
        return
    for item in items:
        _walk(item, found, seen, depth + 1)


class FlatOutputs(nn.Module):
    """Calls the wrapped model and returns its result's tensors as a flat tuple.

    It takes the model's training mode and its ``forward``'s signature: torch.export names
    the graph inputs after forward's parameters (``input_ids``, not ``args_0``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        setattr(self, WRAPPED, model)
        self.training = model.training
        forward = functools.partial(FlatOutputs.forward, self)
        forward.__signature__ = inspect.signature(model.forward)  # type: ignore[attr-defined]
        self.forward = forward

    def forward(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_tensors(getattr(self, WRAPPED)(*args, **kwargs)))
