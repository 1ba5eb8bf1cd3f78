"""LLM serving estimates: exact memory, hand-checked step times, the serving model, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import perfcast.llm as llm
from perfcast.cli.main import app
from perfcast.estimate.llm_efficiency import THEORETICAL, LLMEfficiency
from perfcast.estimate.serving import LLMPrecisionError
from perfcast.frontends.llm import ModelConfigError, UnknownModelError, list_models, load_model
from perfcast.frontends.llm.graph import build_phase_graph, kv_cache_bytes
from perfcast.frontends.llm.parallel import Parallelism, ParallelismError
from perfcast.frontends.llm.precision import PRESETS, parse_precision

BF16 = PRESETS["bf16"]
H100_BW = 3.35e12  # h100-sxm.yaml: HBM3 bandwidth
H100_BF16 = 989.4e12  # h100-sxm.yaml: dense bf16 tensor peak


def _params(name: str, **par) -> float:
    model = load_model(name)
    pg = build_phase_graph(model, "decode", 1, 1, 8, Parallelism(**par), BF16)
    return float(pg.parameter_count())


# -- exact memory ------------------------------------------------------------------------


@pytest.mark.parametrize("model", [m.name for m in list_models()])
def test_parameter_count_matches_published(model: str) -> None:
    cfg = load_model(model)
    assert cfg.published_params is not None, f"{model} lacks a published parameter count"
    assert _params(model) == pytest.approx(cfg.published_params.total, rel=0.005)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-120b"])
def test_weight_bytes_are_params_times_bytes_per_param(model: str) -> None:
    cfg = load_model(model)
    pg = build_phase_graph(cfg, "decode", 1, 1, 8, Parallelism(), BF16)
    assert pg.weight_bytes() == 2 * pg.parameter_count()
    fp8 = build_phase_graph(cfg, "decode", 1, 1, 8, Parallelism(), parse_precision("fp8"))
    # fp8 linear weights halve everything except embeddings, norms, router and biases
    assert 0.5 * pg.weight_bytes() < fp8.weight_bytes() < 0.6 * pg.weight_bytes()


def test_exact_llama_8b_counts() -> None:
    assert _params("llama-3.1-8b") == 8_030_261_248  # safetensors index of the checkpoint


def test_tp_and_ep_shard_weights() -> None:
    total = _params("mixtral-8x7b")
    # TP8 splits everything but the norms (and the 8 KV heads split 8 ways)
    per_gpu = _params("mixtral-8x7b", tp=8)
    norms = 32 * 2 * 4096 + 4096
    router = 32 * 8 * 4096  # replicated on every GPU
    assert per_gpu == pytest.approx((total - norms - router) / 8 + norms + router, rel=1e-9)


def test_kv_cache_per_token_gqa() -> None:
    # Llama-3.1-70B: 80 layers x (K and V) x 8 KV heads x 128 dims x 2 bytes = 327,680 B
    cfg = load_model("llama-3.1-70b")
    assert kv_cache_bytes(cfg, Parallelism(), BF16, 1, 1) == 80 * 2 * 8 * 128 * 2 == 327_680
    # TP8 puts one KV head on each GPU; fp8 halves it again
    fp8 = BF16.with_kv_cache("fp8")
    assert kv_cache_bytes(cfg, Parallelism(tp=8), fp8, 1, 1) == 80 * 2 * 1 * 128 * 1


def test_kv_cache_per_token_mla() -> None:
    # DeepSeek-V3: 61 layers x (512 latent + 64 rope key) x 2 bytes = 70,272 B, and TP
    # replicates the latent (it is shared by all heads) while DP attention splits requests.
    cfg = load_model("deepseek-v3")
    assert kv_cache_bytes(cfg, Parallelism(), BF16, 1, 1) == 61 * 576 * 2 == 70_272
    assert kv_cache_bytes(cfg, Parallelism(tp=8), BF16, 8, 1) == 8 * 70_272
    assert kv_cache_bytes(cfg, Parallelism(tp=8, dp_attention=True), BF16, 8, 1) == 70_272


def test_kv_cache_sliding_window_caps_half_the_layers() -> None:
    # gpt-oss-120b: 18 full layers keep all tokens, 18 sliding layers only the last 128
    cfg = load_model("gpt-oss-120b")
    per_token_layer = 2 * 8 * 64 * 2
    expected = (18 * 8192 + 18 * 128) * per_token_layer
    assert kv_cache_bytes(cfg, Parallelism(), BF16, 1, 8192) == expected


# -- hand-checked step times --------------------------------------------------------------


def test_decode_step_llama_8b_is_weights_plus_kv_over_bandwidth() -> None:
    """One decode step of Llama-3.1-8B, batch 1, 1,024 cached tokens, H100 SXM, bf16.

    Every kernel is memory-bound (a GEMV does 1 FLOP per byte; the H100's ridge is
    989.4e12 / 3.35e12 = 295 FLOP/B), so with the plain roofline (efficiency 1, no
    overheads) the step reads:
      weights: 8,030,261,248 params x 2 B = 16,060,522,496 B, less the embedding table
               (128,256 x 4,096 x 2 B = 1,050,673,152 B; a lookup reads one row)
               = 15,009,849,344 B
      KV:      32 layers x 2 x 8 heads x 1,024 tokens x 128 x 2 B = 134,217,728 B
      total    15,144,067,072 B / 3.35e12 B/s = 4.5206 ms
    plus the activations (a few MB), under 0.1% more.
    """
    est = llm.estimate("llama-3.1-8b", "h100-sxm", isl=1023, osl=3, concurrency=1,
                       efficiency=THEORETICAL)  # mean decode context: 1023 + 3 // 2 = 1024
    by_hand = (15_009_849_344 + 134_217_728) / H100_BW
    assert by_hand == pytest.approx(4.5206e-3, rel=1e-4)
    assert est.decode.by_part["compute"] == 0
    assert by_hand <= est.decode.total_s <= by_hand * 1.001


def test_prefill_llama_8b_is_matmul_flops_over_peak() -> None:
    """Prefill of 2,048 tokens: the GEMMs and attention are compute-bound.

    Linear weights per layer: qkv 4096x6144 + o 4096x4096 + gate_up 4096x28672 +
    down 14336x4096 = 218,103,808; x 32 layers = 6,979,321,856.
      GEMMs:     2 x 2,048 tokens x 6,979,321,856          = 2.8589e13 FLOP
      attention: 32 layers x 32 heads x 2,098,176 causal pairs (2048 x 2049 / 2)
                 x (2 x (128 + 128) + 6 softmax/scale)      = 1.1129e12 FLOP
      time = 2.9702e13 / 989.4e12 FLOP/s = 30.018 ms
    """
    est = llm.estimate("llama-3.1-8b", "h100-sxm", isl=2048, osl=2, concurrency=1,
                       efficiency=THEORETICAL)
    flops = 2 * 2048 * 6_979_321_856 + 32 * 32 * (2048 * 2049 // 2) * 518
    assert est.prefill.by_part["compute"] == pytest.approx(flops / H100_BF16, rel=1e-9)


def test_efficiency_scales_memory_bound_time() -> None:
    half = LLMEfficiency(gemm_memory=0.5, attention_memory=0.5, vector_memory=0.5,
                         kernel_launch_s=0.0)
    a = llm.estimate("llama-3.1-8b", "h100-sxm", concurrency=1, efficiency=THEORETICAL)
    b = llm.estimate("llama-3.1-8b", "h100-sxm", concurrency=1, efficiency=half)
    assert b.decode.total_s == pytest.approx(2 * a.decode.total_s, rel=1e-9)


def test_tp_adds_all_reduce_time() -> None:
    one = llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, concurrency=8, precision="fp8")
    assert one.decode.by_part["communication"] > 0
    # two all-reduces per layer of [8 tokens, 8192] bf16 plus the embedding's
    assert sum(v for k, v in one.decode.by_layer.items() if k.endswith("comm")) == \
        pytest.approx(one.decode.by_part["communication"])


# -- serving model ------------------------------------------------------------------------


def test_metrics_follow_inferencemax_definitions() -> None:
    est = llm.estimate("gpt-oss-120b", "h100-sxm", tp=2, isl=1024, osl=1024, concurrency=64,
                       precision="fp4-w4a16")
    assert est.e2el_s == pytest.approx(est.ttft_s + (1024 - 1) * est.tpot_s)
    assert est.interactivity == pytest.approx(1 / est.tpot_s)
    tokens_per_s = 64 * (1024 + 1024) / est.e2el_s
    assert est.throughput_per_gpu == pytest.approx(tokens_per_s / 2)
    assert est.output_throughput_per_gpu == pytest.approx(est.throughput_per_gpu / 2)


def test_higher_concurrency_more_throughput_less_interactivity() -> None:
    low = llm.estimate("llama-3.1-8b", "h200", concurrency=4)
    high = llm.estimate("llama-3.1-8b", "h200", concurrency=64)
    assert high.throughput_per_gpu > 4 * low.throughput_per_gpu
    assert high.interactivity < low.interactivity


def test_max_concurrency_is_where_memory_runs_out() -> None:
    est = llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, precision="fp8", concurrency=1)
    limit = int(est.max_concurrency)
    assert llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, precision="fp8",
                        concurrency=limit).feasible
    over = llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, precision="fp8",
                        concurrency=limit + 1)
    assert not over.feasible
    data = over.to_dict()
    assert data["feasible"] is False and data["tpot_s"] is None
    assert "largest concurrency that fits is" in data["infeasible_reason"]


def test_cost_per_million_tokens_from_catalog_price() -> None:
    est = llm.estimate("llama-3.1-8b", "h100-sxm", concurrency=32)
    price = 3.78  # h100-sxm.yaml price_per_hour_usd
    assert est.cost_per_million_tokens_usd == pytest.approx(
        price / 3600 / est.throughput_per_gpu * 1e6)


def test_arrays_evaluate_a_sweep_in_one_call() -> None:
    from perfcast.estimate.serving import Workload, estimate_serving
    from perfcast.hardware import load_spec

    model, hw = load_model("llama-3.1-8b"), load_spec("h100-sxm")
    conc = np.array([1, 8, 64])
    swept = estimate_serving(model, hw, Parallelism(), BF16, Workload(1024, 1024, conc))
    for i, c in enumerate(conc):
        one = llm.estimate(model, hw, concurrency=int(c))
        assert swept.tpot_s[i] == pytest.approx(one.tpot_s, rel=1e-9)
        assert swept.ttft_s[i] == pytest.approx(one.ttft_s, rel=1e-9)


# -- bad input -------------------------------------------------------------------------


def test_tp_that_does_not_divide_heads() -> None:
    with pytest.raises(ParallelismError, match=r"tp=3 does not divide the 32 attention heads.*"
                                               r"allowed tp: 1, 2, 4, 8, 16, 32"):
        llm.estimate("llama-3.1-8b", "h100-sxm", tp=3)


def test_ep_larger_than_experts() -> None:
    with pytest.raises(ParallelismError, match="ep=16 is larger than the 8 experts"):
        llm.estimate("mixtral-8x7b", "h100-sxm", tp=16, ep=16)
    with pytest.raises(ParallelismError, match="needs a mixture-of-experts model"):
        llm.estimate("llama-3.1-8b", "h100-sxm", tp=2, ep=2)


def test_precision_the_device_lacks() -> None:
    with pytest.raises(LLMPrecisionError, match=r"h100-sxm has no fp4 compute rate.*weight-only"):
        llm.estimate("llama-3.1-8b", "h100-sxm", precision="fp4")
    with pytest.raises(LLMPrecisionError, match="a100-sxm-80gb has no fp8"):
        llm.estimate("llama-3.1-8b", "a100-sxm-80gb", precision="fp8")
    llm.estimate("llama-3.1-8b", "h100-sxm", precision="fp4-w4a16")  # weight-only is fine


def test_unknown_precision_name() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp5'; presets: bf16"):
        llm.estimate("llama-3.1-8b", "h100-sxm", precision="fp5")
    with pytest.raises(ValueError, match="bad precision component 'wieghts=fp8'"):
        llm.estimate("llama-3.1-8b", "h100-sxm", precision="wieghts=fp8")


def test_model_that_fits_at_no_concurrency_is_flagged() -> None:
    est = llm.estimate("llama-3.1-405b", "l4")
    assert not est.feasible and est.max_concurrency == 0
    assert "does not fit on l4 with tp1 at any concurrency" in est.infeasible_reason()


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError, match=r"did you mean llama-3\.1-70b"):
        llm.estimate("llama-3.1-71b", "h100-sxm")


def test_malformed_config_json(tmp_path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 64,')
    with pytest.raises(ModelConfigError, match="not valid JSON"):
        llm.estimate(str(bad), "h100-sxm")


def test_non_positive_workload() -> None:
    with pytest.raises(ValueError, match="concurrency must be a positive integer, got 0"):
        llm.estimate("llama-3.1-8b", "h100-sxm", concurrency=0)


# -- CLI ---------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_json_has_documented_keys() -> None:
    res = runner.invoke(app, ["llm", "estimate", "--model", "llama-3.1-70b", "--hardware",
                              "h100-sxm", "--tp", "4", "--isl", "1024", "--osl", "1024",
                              "--concurrency", "64", "--precision", "fp8", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    for key in ("ttft_s", "tpot_s", "throughput_per_gpu", "output_throughput_per_gpu",
                "interactivity", "max_concurrency", "feasible", "confidence"):
        assert key in data
    assert set(data["memory_bytes"]) >= {"weights", "kv_cache", "activations", "total",
                                         "capacity"}
    assert data["memory_bytes"]["weights"] == pytest.approx(
        llm.estimate("llama-3.1-70b", "h100-sxm", tp=4, precision="fp8").weights_bytes)


def test_cli_human_output_and_errors() -> None:
    res = runner.invoke(app, ["llm", "estimate", "-m", "qwen3-30b-a3b", "-H", "h200", "-c", "8"])
    assert res.exit_code == 0, res.output
    assert "TPOT" in res.output and "Memory per GPU" in res.output
    bad = runner.invoke(app, ["llm", "estimate", "-m", "llama-3.1-8b", "--tp", "3"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    listing = runner.invoke(app, ["llm", "models", "--json"])
    names = {m["name"] for m in json.loads(listing.output)}
    assert {"deepseek-r1", "gpt-oss-120b", "gemma-3-27b", "qwen3-235b-a22b"} <= names
