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


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch):
    """Benchmark runs in tests see an idle machine: whether a result is flagged unstable
    for machine load must not depend on what else runs on the test machine (tests that
    check that rule set the load themselves)."""
    from perfcast.bench import runner

    monkeypatch.setattr(runner, "machine_load", lambda: (0.0, 2))
