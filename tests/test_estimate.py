"""Roofline estimates against figures worked out by hand on two catalog devices.

Device figures used (dense, from the datasheets in the catalog):
  H100 SXM: bf16 989.4 TFLOP/s, fp32 (vector) 66.9 TFLOP/s, HBM3 3.35 TB/s, launch 4 us
  A100 SXM 80GB: bf16 312 TFLOP/s, fp32 19.5 TFLOP/s, HBM2e 2.039 TB/s, launch 4 us
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfcast.estimate.analyze import kernel_energy
from perfcast.estimate.efficiency import Confidence, TheoreticalEfficiency
from perfcast.estimate.memory import peak_activation_bytes
from perfcast.estimate.roofline import estimate_kernel
from perfcast.hardware import UnsupportedPrecisionError, load_spec
from perfcast.ir import Graph, Tensor
from perfcast.passes import partition

DEVICES = {
    "h100-sxm": {"bf16": 989.4e12, "fp32": 66.9e12, "bw": 3.35e12, "launch": 4e-6},
    "a100-sxm-80gb": {"bf16": 312e12, "fp32": 19.5e12, "bw": 2.039e12, "launch": 4e-6},
}


def _one_kernel(build) -> tuple[Graph, object]:
    g = Graph()
    build(g)
    g.validate()
    (kernel,) = partition(g, "eager")
    return g, kernel


def _gemm(g: Graph) -> None:
    g.add_tensor(Tensor("a", (4096, 4096), "bf16"))
    g.add_tensor(Tensor("b", (4096, 4096), "bf16", const=True))
    g.inputs = ["a"]
    (c,) = g.apply("mm", ["a", "b"])
    g.outputs = [c.name]


def _add(g: Graph) -> None:
    g.add_tensor(Tensor("a", (4096, 4096), "bf16"))
    g.add_tensor(Tensor("b", (4096, 4096), "bf16"))
    g.inputs = ["a", "b"]
    (c,) = g.apply("add", ["a", "b"])
    g.outputs = [c.name]


def _attention(g: Graph) -> None:
    for name in "qkv":
        g.add_tensor(Tensor(name, (1, 32, 4096, 128), "bf16"))
    g.inputs = list("qkv")
    (o,) = g.apply("scaled_dot_product_attention", ["q", "k", "v"])
    g.outputs = [o.name]


@pytest.mark.parametrize("device", list(DEVICES))
def test_gemm_is_compute_bound(device):
    d = DEVICES[device]
    _, kernel = _one_kernel(_gemm)
    flops, nbytes = 2 * 4096**3, 3 * 4096 * 4096 * 2
    assert (kernel.flops, kernel.bytes) == (flops, nbytes)
    est = estimate_kernel(kernel, load_spec(device), TheoreticalEfficiency())
    assert est.bound == "compute"
    assert est.time_s == pytest.approx(flops / d["bf16"] + d["launch"], rel=1e-9)
    # H100: 137.4 GFLOP / 989.4 TFLOP/s = 138.9 us (+4 us); A100: 440.5 us (+4 us)
    expected_us = {"h100-sxm": 142.9, "a100-sxm-80gb": 444.5}[device]
    assert est.time_s * 1e6 == pytest.approx(expected_us, abs=0.1)


@pytest.mark.parametrize("device", list(DEVICES))
def test_elementwise_add_is_memory_bound(device):
    d = DEVICES[device]
    _, kernel = _one_kernel(_add)
    nbytes = 3 * 4096 * 4096 * 2  # two reads, one write
    est = estimate_kernel(kernel, load_spec(device), TheoreticalEfficiency())
    assert est.bound == "memory"
    assert est.peak_flops == d["fp32"]  # vector units, not tensor cores
    assert est.time_s == pytest.approx(nbytes / d["bw"] + d["launch"], rel=1e-9)
    # H100: 100.7 MB / 3.35 TB/s = 30.0 us; A100: 49.4 us
    expected_us = {"h100-sxm": 34.0, "a100-sxm-80gb": 53.4}[device]
    assert est.time_s * 1e6 == pytest.approx(expected_us, abs=0.1)


@pytest.mark.parametrize("device", list(DEVICES))
def test_flash_attention_kernel(device):
    d = DEVICES[device]
    _, kernel = _one_kernel(_attention)
    scores = 32 * 4096 * 4096
    flops = 2 * scores * (128 + 128) + scores * 6
    nbytes = 4 * 32 * 4096 * 128 * 2  # q, k, v read, o written; scores stay on chip
    assert (kernel.flops, kernel.bytes) == (flops, nbytes)
    est = estimate_kernel(kernel, load_spec(device), TheoreticalEfficiency())
    assert est.bound == "compute"
    assert est.time_s == pytest.approx(flops / d["bf16"] + d["launch"], rel=1e-9)


def test_tiny_kernel_is_overhead_bound():
    def tiny(g: Graph) -> None:
        g.add_tensor(Tensor("x", (16,), "bf16"))
        g.inputs = ["x"]
        (y,) = g.apply("relu", ["x"])
        g.outputs = [y.name]

    _, kernel = _one_kernel(tiny)
    est = estimate_kernel(kernel, load_spec("h100-sxm"), TheoreticalEfficiency())
    assert est.bound == "overhead"
    assert est.time_s == pytest.approx(4e-6 + 64 / 3.35e12)


def test_efficiency_scales_the_roofline():
    _, kernel = _one_kernel(_gemm)
    est = estimate_kernel(kernel, load_spec("h100-sxm"), TheoreticalEfficiency(compute=0.5))
    assert est.time_s == pytest.approx(2 * 4096**3 / (0.5 * 989.4e12) + 4e-6)
    assert est.confidence is Confidence.THEORETICAL
    with pytest.raises(ValueError, match=r"compute efficiency must be in \(0, 1\]"):
        TheoreticalEfficiency(compute=1.5)


def test_missing_precision_fails_clearly():
    def fp8_gemm(g: Graph) -> None:
        g.add_tensor(Tensor("a", (64, 64), "fp8"))
        g.add_tensor(Tensor("b", (64, 64), "fp8", const=True))
        g.inputs = ["a"]
        (c,) = g.apply("mm", ["a", "b"])
        g.outputs = [c.name]

    _, kernel = _one_kernel(fp8_gemm)
    with pytest.raises(UnsupportedPrecisionError, match="a100-sxm-80gb"):
        estimate_kernel(kernel, load_spec("a100-sxm-80gb"), TheoreticalEfficiency())


def test_energy_is_dynamic_work_plus_idle_power():
    hw = load_spec("h100-sxm")
    # 1 GFLOP, 1 GB, 1 ms: 1e9 * 0.6367 pJ + 1e9 * 31.2 pJ + 70 W * 1 ms
    assert kernel_energy(1e9, 1e9, 1e-3, hw) == pytest.approx(0.6367e-3 + 31.2e-3 + 70e-3)


def test_vectorized_estimate_over_batch_sizes():
    batch = np.array([1, 16, 1024])  # H100 bf16 ridge: 989.4e12 / 3.35e12 = 295 FLOP/B
    g = Graph()
    g.add_tensor(Tensor("x", (batch, 4096), "bf16"))
    g.add_tensor(Tensor("w", (4096, 4096), "bf16", const=True))
    g.inputs = ["x"]
    (y,) = g.apply("linear", ["x", "w"])
    g.outputs = [y.name]
    (kernel,) = partition(g.validate(), "eager")
    est = estimate_kernel(kernel, load_spec("h100-sxm"), TheoreticalEfficiency())
    assert list(est.bound) == ["memory", "memory", "compute"]
    weights = 4096 * 4096 * 2
    np.testing.assert_allclose(est.memory_s, (weights + 2 * batch * 4096 * 2) / 3.35e12)


def test_peak_activations_from_liveness():
    g = Graph()
    g.add_tensor(Tensor("x", (1000,), "fp32"))  # 4 kB
    g.inputs = ["x"]
    (a,) = g.apply("relu", ["x"])  # x, a live: 8 kB
    (b,) = g.apply("neg", [a.name])  # a, b live (x freed after relu): 8 kB
    (c,) = g.apply("add", [a.name, b.name])  # a, b, c live: 12 kB
    g.outputs = [c.name]
    kernels = partition(g.validate(), "eager")
    assert peak_activation_bytes(g, kernels) == 12000
    # fused into one kernel, only x and c ever exist in memory
    assert peak_activation_bytes(g, partition(g, "compile")) == 8000


def test_analyze_api_and_result_views():
    import perfcast
    from perfcast.examples import build_example

    model, inputs = build_example("mlp", batch=4)
    est = perfcast.analyze(model, inputs, hardware="l4", dtype="fp16")
    d = est.to_dict()
    json.dumps(d)  # plain JSON
    assert set(d) >= {"model", "hardware", "dtype", "totals", "kernels", "unsupported_ops",
                      "confidence"}
    assert d["hardware"] == "l4" and d["dtype"] == "fp16" and d["confidence"] == "THEORETICAL"
    t = d["totals"]
    assert t["params"] == 1024 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1024 + 1024
    assert t["memory_bytes"]["weights"] == 2 * t["params"]
    assert t["flops_by_category"]["gemm"] == 2 * 4 * (1024 * 4096 * 2 + 4096 * 4096) + 4 * (
        4096 + 4096 + 1024)
    assert t["time_s"] == pytest.approx(sum(k["time_s"] for k in d["kernels"]))
    frame = est.to_pandas()
    assert len(frame) == len(d["kernels"]) and {"intensity", "bound"} <= set(frame.columns)
    assert "<table>" in est._repr_html_()
