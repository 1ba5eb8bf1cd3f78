"""Capture on the meta device: full-size models are analyzed without allocating weights."""

from __future__ import annotations

import resource

import pytest

from perfcast.estimate.analyze import estimate_prepared, prepare
from perfcast.examples import build_example

# Parameter counts of the published checkpoints (safetensors index totals):
# Llama-3.1-8B 8,030,261,248; Llama-3.1-70B 70,553,706,496.
LLAMA_8B_PARAMS = 8_030_261_248
LLAMA_70B_PARAMS = 70_553_706_496


def test_llama3_8b_on_meta_device():
    model, inputs = build_example("llama3-8b", batch=1, seq_len=256, device="meta")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prepared = prepare(model, inputs, dtype="bf16")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert prepared.capture.params == LLAMA_8B_PARAMS
    assert prepared.capture.param_bytes == 2 * LLAMA_8B_PARAMS
    assert grown_mb < 1500  # 16 GB of bf16 weights were never allocated
    est = estimate_prepared(prepared, "h100-sxm")
    # prefill FLOPs ~ 2 * params * tokens (matmuls) plus attention; within 10%
    assert est.totals.flops == pytest.approx(2 * LLAMA_8B_PARAMS * 256, rel=0.10)
    assert est.unsupported_ops == {}


@pytest.mark.slow
def test_llama3_70b_on_meta_device():
    model, inputs = build_example("llama3-70b", batch=1, seq_len=128, device="meta")
    prepared = prepare(model, inputs, dtype="bf16")
    assert prepared.capture.params == LLAMA_70B_PARAMS
