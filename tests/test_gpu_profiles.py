"""The packaged GPU kernel profiles as a kernel-time model: values, shape, confidence, use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import perfcast.llm as llm
from perfcast.cli.main import app
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.engine_profiles import EngineError
from perfcast.estimate.gpu_profile import (
    device_figures,
    figures_for,
    find_profile,
    shipped_profiles,
)
from perfcast.estimate.sweep import sweep
from perfcast.hardware import load_spec

H100 = load_spec("h100-sxm")
NINE = {"h100-sxm", "h200", "b200", "gb200", "b300", "gb300", "a100-sxm-80gb", "l40s",
        "rtx-pro-6000"}


def gemm(engine: str = "trtllm", dtype: str = "bfloat16", gpu: str = "h100-sxm"):
    profile = find_profile(gpu, engine)
    assert profile is not None
    fit = profile.fit("gemm", dtype)
    assert fit is not None
    return fit, device_figures(load_spec(gpu), fit.form, fit.key)


def test_profiles_ship_for_the_nine_gpus_and_three_engines():
    shipped = set(shipped_profiles())
    assert {g for g, _ in shipped} == NINE
    assert {e for _, e in shipped} == {"trtllm", "sglang", "vllm"}
    for gpu, engine in shipped:
        profile = find_profile(gpu, engine)
        assert profile is not None and profile.gpu == gpu and profile.engine == engine
        assert "095f58a51c4ca8e61b66ec108d86f223f8d559ce" in profile.source["measurements"]


def test_published_check_value():
    """The README's check: bf16 GEMM 32768 x 65536 x 12288 on H100 takes 60.3 ms (vLLM's
    table; TensorRT-LLM measured 35.6 ms at m=16384). The fitted surface is smooth: this
    point, at the corner of the measured range, comes out 10.5% slow (66.7 ms)."""
    fit, hw = gemm("vllm")
    assert float(fit.seconds({"m": 32768, "n": 65536, "k": 12288}, hw)) == \
        pytest.approx(60.3e-3, rel=0.12)  # 66.7 ms: the corner of the measured range
    fit, hw = gemm("trtllm")
    assert float(fit.seconds({"m": 16384, "n": 65536, "k": 12288}, hw)) == \
        pytest.approx(35.56e-3, rel=0.05)


def test_gemm_is_monotone_in_each_dimension():
    """More work never takes much less time. The measurements themselves are not
    monotone (library tile choices: in TensorRT-LLM's H100 bf16 table 8% of steps to the
    next larger M are over 5% faster, the worst 44%), so the smooth fit may dip a little;
    it dips at most 8% on this grid."""
    fit, hw = gemm()
    sizes = np.array([1, 4, 16, 64, 256, 1024, 4096, 16384])
    m, n, k = np.meshgrid(sizes, sizes * 2, sizes, indexing="ij")
    t = fit.seconds({"m": m, "n": n, "k": k}, hw)
    for axis in range(3):
        steps = np.diff(t, axis=axis) / np.take(t, range(t.shape[axis] - 1), axis=axis)
        assert steps.min() > -0.08, f"time falls by {-steps.min():.0%} along axis {axis}"


def test_sweep_arrays_equal_scalar_calls():
    fit, hw = gemm()
    m = np.array([1, 37, 512, 3000])
    vector = fit.seconds({"m": m, "n": 4096, "k": 4096}, hw)
    scalar = [float(fit.seconds({"m": int(x), "n": 4096, "k": 4096}, hw)) for x in m]
    np.testing.assert_allclose(vector, scalar, rtol=1e-12)


def test_confidence_by_distance_from_measurements():
    fit, _ = gemm()
    assert fit.confidence({"m": 512, "n": 4096, "k": 4096}) is Confidence.CALIBRATED
    assert fit.confidence({"m": 512, "n": 4096, "k": 65536 * 1.5}) is Confidence.INTERPOLATED
    assert fit.confidence({"m": 512, "n": 4096, "k": 65536 * 10}) is Confidence.THEORETICAL


def test_decode_attention_grows_with_context_and_batch():
    profile = find_profile("h100-sxm", "trtllm")
    fit = profile.fit("generation_attention", "bfloat16")
    dims = {"batch": 32, "heads": 32, "kv_heads": 8, "head_dim": 128, "window": 0}
    ctx = np.array([512, 1024, 2048, 4096, 8192, 16384])
    t = fit.seconds({**dims, "context": ctx}, figures_for(H100, "bf16"))
    assert np.all(np.diff(t) > 0)
    # long contexts stream the KV cache: close to bytes / bandwidth, never faster
    kv_bytes = 32 * 16384 * 8 * 128 * 2 * 2
    assert kv_bytes / H100.memory_bandwidth < t[-1] < 3 * kv_bytes / H100.memory_bandwidth


def test_llm_estimate_uses_the_engine_profile():
    fitted = llm.estimate("llama-3.1-8b", "h100-sxm", isl=1024, osl=256, concurrency=16)
    measured = llm.estimate("llama-3.1-8b", "h100-sxm", isl=1024, osl=256, concurrency=16,
                            engine="trtllm")
    assert fitted.profile is None and measured.profile == "h100-sxm/trtllm"
    shares = measured.to_dict()["phases"]["decode_step"]["share_by_confidence"]
    assert shares["CALIBRATED"] > 0.8  # GEMMs and attention dominate a decode step
    assert sum(shares.values()) == pytest.approx(1.0)
    assert float(measured.tpot_s) != float(fitted.tpot_s)
    assert 0.5 < float(measured.tpot_s / fitted.tpot_s) < 2


def test_moe_model_with_engine_profile_and_skew():
    kwargs = dict(tp=8, ep=8, isl=1024, osl=256, concurrency=64, precision="fp8")
    balanced = llm.estimate("qwen3-235b-a22b", "h200", engine="sglang",
                            moe_distribution="balanced", **kwargs)
    skewed = llm.estimate("qwen3-235b-a22b", "h200", engine="sglang",
                          moe_distribution="power_law_1.2", **kwargs)
    assert balanced.profile == "h200/sglang"
    # skew overloads some experts: slower where MoE is compute-bound (a 1024-token
    # prefill); in a 64-token decode step it mostly changes which experts are read
    moe = "full_attention+moe.moe"
    assert float(skewed.prefill.by_layer[moe]) > 1.05 * float(balanced.prefill.by_layer[moe])
    assert float(skewed.decode_step_s) == pytest.approx(float(balanced.decode_step_s),
                                                        rel=0.15)


def test_gpu_without_profile_falls_back_to_fitted():
    est = llm.estimate("llama-3.1-8b", "mi300x", engine="vllm")
    assert est.profile is None


def test_bad_engine_and_distribution_are_named():
    with pytest.raises(EngineError, match="unknown engine 'tensorrt'; choose one of fitted"):
        llm.estimate("llama-3.1-8b", "h100-sxm", engine="tensorrt")
    with pytest.raises(EngineError, match="unknown MoE token distribution 'zipf'"):
        llm.estimate("llama-3.1-8b", "h100-sxm", engine="vllm", moe_distribution="zipf")


def test_sweep_with_engine_matches_single_estimate():
    result = sweep("llama-3.1-8b", ["h100-sxm"], concurrency=[8, 64], tp=[1, 2],
                   precision=["bf16"], isl=[1024], osl=[512], engine="vllm")
    row = result.frame.query("tp == 2 and concurrency == 64").iloc[0]
    single = llm.estimate("llama-3.1-8b", "h100-sxm", tp=2, isl=1024, osl=512,
                          concurrency=64, engine="vllm")
    assert row["tpot_s"] == pytest.approx(float(single.tpot_s), rel=1e-9)


def test_cli_estimate_names_the_profile():
    result = CliRunner().invoke(app, ["llm", "estimate", "-m", "llama-3.1-8b", "-H", "b200",
                                      "--engine", "trtllm", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["profile"] == "b200/trtllm"
    bad = CliRunner().invoke(app, ["llm", "estimate", "-m", "llama-3.1-8b", "-H", "b200",
                                   "--engine", "trt"])
    assert bad.exit_code != 0 and "unknown engine 'trt'" in bad.output


def test_random_routing_hits_fewer_experts_than_balanced():
    from perfcast.estimate.measured_time import random_routing_tokens

    tokens = np.array([1, 8, 32, 256, 4096])
    eff = random_routing_tokens(tokens, topk=4, experts=128)
    assert eff[0] == pytest.approx(1.0)  # one token: the same experts either way
    assert eff[2] == pytest.approx(128 * (1 - (1 - 4 / 128) ** 32) / 4)  # 63% of 128 hit
    assert eff[-1] == pytest.approx(4096, rel=1e-6)  # every expert hit either way


def test_measured_moe_op_includes_routing_and_activation():
    """The MoE tables time routing, both grouped GEMMs, the activation and the combine:
    those kernels take no time of their own; the residual add and norms still do."""
    from perfcast.estimate.engine_profiles import serving_time_model
    from perfcast.estimate.serving import _kernels
    from perfcast.frontends.llm.catalog import load_model
    from perfcast.frontends.llm.parallel import Parallelism
    from perfcast.frontends.llm.precision import parse_precision

    b200 = load_spec("b200")
    pg, kernels = _kernels(load_model("gpt-oss-120b"), "decode", 32, 1, 2048,
                           Parallelism(1, 1, 1, 1, False), parse_precision("fp4-w4a16"))
    timer = serving_time_model(b200, None, "vllm")[0].for_graph(pg.graph)
    times = {k.kernel.op: float(timer.time(k.kernel, b200).time_s) for k in kernels
             if k.collective is None and "moe" in k.kernel.module}
    activation = next(op for op in times if op.startswith("silu"))
    assert times["topk"] == times["moe_combine"] == times[activation] == 0.0
    assert times["grouped_gemm"] > 10e-6
    assert times[next(op for op in times if "rms_norm" in op)] > 0  # norms are not in it


def test_transfer_weights_favour_the_same_design():
    from perfcast.validate.gpu_kernels import similarity

    h200 = load_spec("h200")
    weights = {g: similarity(h200, load_spec(g)) for g in ("h100-sxm", "b200", "a100-sxm-80gb")}
    assert weights["h100-sxm"] > 20 * max(weights["b200"], weights["a100-sxm-80gb"])


def test_analyze_with_engine_profile():
    result = CliRunner().invoke(app, ["analyze", "examples:gpt2", "-H", "h100-sxm", "--dtype",
                                      "bf16", "--engine", "vllm", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert any("measured profile h100-sxm/vllm" in n for n in data["notes"])
    gemms = [k for k in data["kernels"] if k["op"].startswith(("addmm", "linear", "mm"))]
    assert gemms and all(k["confidence"] in ("CALIBRATED", "INTERPOLATED") for k in gemms)


def test_hw_profiles_lists_the_packaged_profiles():
    result = CliRunner().invoke(app, ["hw", "profiles", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {(r["gpu"], r["engine"]) for r in rows} == set(shipped_profiles())
    assert all(r["where"] == "packaged" and r["fits"] > 5 for r in rows)


def test_validate_llm_with_each_rows_engine():
    """``--engine row`` times each published row with its own engine's profile."""
    from perfcast.validate.llm import load_rows, reconcile, row_engine

    assert [row_engine(f) for f in ("trt", "dynamo-trt", "sglang", "vllm", "atom")] == \
        ["trtllm", "trtllm", "sglang", "vllm", None]
    rows = [r for r in load_rows("inferencemax")][:400]
    fitted = reconcile(rows, hardware=["h200"])
    measured = reconcile(rows, hardware=["h200"], engine="row")
    ok = [(a, b) for a, b in zip(fitted.rows, measured.rows, strict=True)
          if a.status == b.status == "ok"]
    assert len(ok) >= 10
    assert all(a.predicted["tpot_s"] != b.predicted["tpot_s"] for a, b in ok)
    result = CliRunner().invoke(app, ["validate", "llm", "-d", "mlperf", "-H", "h200",
                                      "--engine", "tensorrt"])
    assert result.exit_code != 0 and "unknown engine 'tensorrt'" in result.output


def test_moe_sweep_over_layouts_matches_single_estimates():
    """Layouts are swept as arrays (tp, ep); the MoE fits must take them vectorized."""
    result = sweep("qwen3-235b-a22b", ["b200"], concurrency=[16, 64], tp=[4, 8],
                   precision=["fp8"], isl=[1024], osl=[1024], engine="trtllm")
    for _, row in result.frame.query("concurrency == 64").iterrows():
        single = llm.estimate("qwen3-235b-a22b", "b200", tp=int(row["tp"]), ep=int(row["ep"]),
                              isl=1024, osl=1024, concurrency=64, precision="fp8",
                              engine="trtllm")
        assert row["tpot_s"] == pytest.approx(float(single.tpot_s), rel=1e-9)
