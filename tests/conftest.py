"""Shared fixtures: captured example graphs (captured once per session)."""

from __future__ import annotations

import pytest
import torch

from perfcast.compat.torchvision_cpu import ensure_importable

ensure_importable()  # before any test imports transformers (see the module's docstring)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
