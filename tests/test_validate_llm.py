"""``perfcast validate llm``: reading published tables, mapping rows to perfcast
configurations, the error arithmetic, and the command line.

The rows under tests/data/published/ are copied from the bundled tables (see its README).
No test depends on how accurate the model is, beyond a sanity bound.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perfcast.cli.main import app
from perfcast.estimate.llm_efficiency import THEORETICAL
from perfcast.validate import (
    BUNDLED,
    METRICS,
    PublishedRow,
    Reconciliation,
    RowResult,
    ValidationDataError,
    load_rows,
    map_row,
    reconcile,
)
from perfcast.validate.llm import (
    INFERENCEMAX_PRECISION,
    MLPERF_BENCHMARKS,
    mlperf_accelerator,
    mlperf_framework,
)

PUBLISHED = Path(__file__).parent / "data" / "published"
IMAX = PUBLISHED / "inferencemax_subset.csv"
MLPERF = PUBLISHED / "mlperf_subset.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def imax_rows():
    return load_rows(IMAX)


@pytest.fixture(scope="module")
def mlperf_rows():
    return load_rows(MLPERF)


@pytest.fixture(scope="module")
def subset_result(imax_rows, mlperf_rows):
    return reconcile(imax_rows + mlperf_rows)


def _by(rows, **match):
    """The mapped configs of rows whose raw fields equal ``match``."""
    out = [map_row(r) for r in rows if all(r.fields[k] == v for k, v in match.items())]
    assert out, match
    return out


# ---------------------------------------------------------------------------- loading


def test_formats_are_detected_by_columns(imax_rows, mlperf_rows):
    assert len(imax_rows) == 30 and {r.source for r in imax_rows} == {"inferencemax"}
    assert len(mlperf_rows) == 10 and {r.source for r in mlperf_rows} == {"mlperf"}
    assert len({r.row_id for r in imax_rows}) == 30


def test_bundled_tables_load_by_name():
    assert set(BUNDLED) == {"inferencemax", "mlperf"}
    assert len(load_rows("inferencemax")) == 1622
    assert len(load_rows("MLPerf")) == 416


def test_foreign_csv_is_rejected_naming_the_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValidationDataError, match=r"tput_per_gpu.*Performance_Result"):
        load_rows(path)


def test_partial_table_names_its_missing_columns(tmp_path):
    path = tmp_path / "partial.csv"
    path.write_text("hw,tput_per_gpu\nh100,1.0\n")
    with pytest.raises(ValidationDataError, match="InferenceMAX table lacks columns: model"):
        load_rows(path)


@pytest.mark.parametrize("make", ["missing", "directory", "empty"])
def test_unreadable_data_is_a_clear_error(tmp_path, make):
    if make == "missing":
        target, match = tmp_path / "nope.csv", "unknown data"
    elif make == "directory":
        target, match = tmp_path, "not a file"
    else:
        target = tmp_path / "empty.csv"
        target.write_text("")
        match = "cannot read"
    with pytest.raises(ValidationDataError, match=match):
        load_rows(target)


# ------------------------------------------------------------------ InferenceMAX rows


@pytest.mark.parametrize(("hw", "model", "expected"), [
    ("h100", "openai/gpt-oss-120b", "weights=bf16,experts=fp4,activations=bf16,kv=bf16"),
    ("h200", "openai/gpt-oss-120b", "weights=bf16,experts=fp4,activations=bf16,kv=bf16"),
    ("b200", "openai/gpt-oss-120b", "weights=bf16,experts=fp4,activations=fp8,kv=bf16"),
    ("b200-trt", "openai/gpt-oss-120b", "weights=bf16,experts=fp4,activations=fp8,kv=bf16"),
    ("h200", "deepseek-ai/DeepSeek-R1-0528", "weights=fp8,activations=fp8,kv=bf16"),
    ("b200", "nvidia/DeepSeek-R1-0528-FP4-V2", "weights=fp8,experts=fp4,activations=fp4,kv=fp8"),
])
def test_precision_depends_on_the_device(imax_rows, hw, model, expected):
    for cfg in _by(imax_rows, hw=hw, model=model):
        assert cfg.skip is None
        assert cfg.precision == expected


def test_precision_table_covers_fp4_and_non_fp4_devices():
    hopper = INFERENCEMAX_PRECISION[("gpt-oss-120b", "fp4", False)]
    assert hopper.endswith("activations=bf16,kv=bf16")
    assert "activations=fp8" in INFERENCEMAX_PRECISION[("gpt-oss-120b", "fp4", True)]


def test_models_hardware_and_framework_map_to_the_catalog(imax_rows):
    names = {(c.model, c.hardware, c.framework) for c in map(map_row, imax_rows) if not c.skip}
    assert {m for m, _, _ in names} == {"gpt-oss-120b", "deepseek-r1"}
    assert {h for _, h, _ in names} == {"h100-sxm", "h200", "b200"}
    assert ("gpt-oss-120b", "b200", "trt") in names  # b200-trt is a B200 running TRT-LLM


def test_effective_lengths_concurrency_and_parallelism(imax_rows):
    for row in imax_rows:
        cfg = map_row(row)
        if cfg.skip:
            continue
        f = row.fields
        assert cfg.isl == round(0.9 * f["isl"]) and cfg.osl == round(0.9 * f["osl"])
        assert cfg.concurrency == f["conc"] and cfg.requests == 10 * f["conc"]
        assert (cfg.tp, cfg.ep) == (int(f["tp"]), int(f["ep"]))
    (dp_attn, *_) = _by(imax_rows, hw="b200-trt", osl=8192)
    assert dp_attn.dp_attention and dp_attn.parallelism == "tp2-ep2-dp-attn"
    assert {c.isl for c in map(map_row, imax_rows) if not c.skip} == {922, 7373}


def test_disaggregated_and_mtp_rows_are_skipped_with_reasons(imax_rows):
    (disagg,) = [map_row(r) for r in imax_rows
                 if r.fields["disagg"] and r.fields["spec_decoding"] == "none"]
    (mtp,) = [map_row(r) for r in imax_rows if r.fields["spec_decoding"] == "mtp"]
    assert disagg.skip == "disaggregated prefill/decode not modeled"
    assert mtp.skip == "speculative decoding (mtp) not modeled"
    assert disagg.model == "deepseek-r1" and mtp.model == "deepseek-r1"  # labels still mapped


# ------------------------------------------------------------------------ MLPerf rows


def test_mlperf_rows_map_to_per_accelerator_output_throughput(mlperf_rows):
    (offline,) = _by(mlperf_rows, ID="5.1-0014", Scenario="Offline")
    raw = next(r for r in mlperf_rows if r.row_id == offline.row_id).fields
    assert offline.skip is None
    assert offline.model == "llama-2-70b" and offline.hardware == "h200"
    assert offline.framework == "trt"
    assert offline.precision == "weights=fp8,activations=fp8,kv=fp8"
    assert offline.measured["output_throughput_per_gpu"] == pytest.approx(
        raw["Performance_Result"] / (raw["Nodes"] * raw["a#"]))
    assert offline.measured["throughput_per_gpu"] is None  # MLPerf counts output tokens
    bench = MLPERF_BENCHMARKS["llama2-70b"]
    assert (offline.isl, offline.osl) == (round(bench.isl), round(bench.osl)) == (222, 294)
    assert offline.bounds is None
    (server,) = _by(mlperf_rows, ID="5.1-0014", Scenario="Server")
    (interactive,) = _by(mlperf_rows, ID="5.1-0014", Scenario="Interactive")
    assert server.bounds == (2.0, 0.2) and interactive.bounds == (0.45, 0.04)
    (fp4,) = _by(mlperf_rows, ID="5.1-0024", Model="llama2-70b-99")
    assert fp4.hardware == "b200" and fp4.precision == "fp4"


@pytest.mark.parametrize(("match", "reason"), [
    ({"Category": "open"}, "open division (the model may be modified)"),
    ({"Model": "llama3.1-405b"}, "llama3.1-405b: no citable mean input length of its dataset"),
    ({"Accelerator": "NVIDIA H200-NVL-141GB"},
     "accelerator 'NVIDIA H200-NVL-141GB' not in the hardware catalog"),
    ({"Performance_Units": "Queries/s"}, "result in Queries/s, not tokens/s"),
    ({"ID": "5.1-0065"}, "mixed accelerators"),
])
def test_mlperf_skip_reasons(mlperf_rows, match, reason):
    (cfg,) = _by(mlperf_rows, **match)
    assert cfg.skip == reason


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H200-SXM-141GB", "h200"),
    ("NVIDIA B200-SXM-180GB", "b200"),
    ("NVIDIA H100-SXM-80GB", "h100-sxm"),
    ("Virtualized NVIDIA H200-SXM-141GB", "h200"),
    ("AMD Instinct MI325X 256GB HBM3e", "mi325x"),
    ("NVIDIA GB200", "gb200"),
    ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("NVIDIA H200-NVL-141GB", None),
    ("NVIDIA GB300", "gb300"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000"),
])
def test_mlperf_accelerator_names(name, expected):
    assert mlperf_accelerator(name) == expected


def test_mlperf_framework_names():
    assert mlperf_framework("TensorRT 10.11, CUDA 12.9") == "trt"
    assert mlperf_framework("vLLM 0.9.0, PyTorch 2.7.0") == "vllm"
    assert mlperf_framework("Mango LLMBoost AI Enterprise Platform, vllm-0.9") == "llmboost"


# ------------------------------------------------------------------------- arithmetic


def _row(hw, model, measured, predicted, status="ok", framework="vllm"):
    meas = dict.fromkeys(METRICS)
    meas["throughput_per_gpu"] = measured
    pred = dict.fromkeys(METRICS)
    pred["throughput_per_gpu"] = predicted
    return RowResult("inferencemax", f"{hw}-{measured}", model, hw, framework, None, "fp8",
                     "tp1", 922, 922, 8, status, None if status == "ok" else "why", meas, pred)


def test_ape_mape_and_median_by_hand():
    rows = [
        _row("h100-sxm", "a", 100.0, 110.0),  # APE 0.10
        _row("h100-sxm", "a", 200.0, 150.0),  # APE 0.25
        _row("h200", "b", 50.0, 100.0, framework="sglang"),  # APE 1.00
        _row("h200", "b", 10.0, 1.0, status="infeasible"),  # not counted
        _row("h200", "b", 10.0, None, status="skipped"),  # not counted
        _row("h200", "b", None, 5.0),  # nothing measured: not counted
    ]
    assert rows[0].ape["throughput_per_gpu"] == pytest.approx(0.1)
    assert rows[3].ape["throughput_per_gpu"] is None
    summary = Reconciliation(rows).summary()
    overall = summary["overall"]["throughput_per_gpu"]
    assert overall["count"] == 3
    assert overall["mape"] == pytest.approx((0.1 + 0.25 + 1.0) / 3)
    assert overall["median_ape"] == pytest.approx(0.25)
    h100 = summary["by_hardware"]["h100-sxm"]["throughput_per_gpu"]
    assert h100["count"] == 2 and h100["mape"] == pytest.approx(0.175)
    assert h100["median_ape"] == pytest.approx(0.175)
    assert summary["by_framework"]["sglang"]["throughput_per_gpu"]["mape"] == pytest.approx(1.0)
    assert summary["overall"]["ttft_s"] == {"count": 0, "mape": None, "median_ape": None}
    counts = Reconciliation(rows).counts()
    assert counts == {"rows": 6, "ok": 4, "skipped": 1, "infeasible": 1, "error": 0}


# -------------------------------------------------------------------------- reconcile


def test_every_subset_row_is_accounted_for(subset_result):
    result = subset_result
    assert result.counts()["rows"] == 40
    assert sum(result.counts()[s] for s in ("ok", "skipped", "infeasible", "error")) == 40
    imax = result.subset("inferencemax")
    assert imax.reasons("skipped") == {"disaggregated prefill/decode not modeled": 1,
                                       "speculative decoding (mtp) not modeled": 1}
    assert sum(result.subset("mlperf").reasons("skipped").values()) == 5
    for row in result.rows:
        assert row.status in ("ok", "skipped", "infeasible", "error")
        assert (row.reason is None) == (row.status == "ok")
        if row.status == "ok":
            observed = [m for m in METRICS if row.measured[m] is not None]
            assert observed and all(math.isfinite(row.predicted[m]) for m in observed)
            assert all(row.ape[m] is not None for m in observed)


def test_mlperf_rows_pick_a_deployment_within_the_bounds(subset_result):
    rows = {r.row_id: r for r in subset_result.subset("mlperf").rows if r.status == "ok"}
    assert len(rows) == 5
    interactive = rows["5.1-0014/llama2-70b-99/Interactive"]
    assert interactive.predicted["ttft_s"] <= 0.45 and interactive.predicted["tpot_s"] <= 0.04
    assert interactive.concurrency & (interactive.concurrency - 1) == 0  # a power of two
    offline = rows["5.1-0014/llama2-70b-99/Offline"]
    assert 1 <= offline.concurrency <= 1024 and offline.parallelism.startswith("tp")


def test_sanity_bound_on_throughput_error(subset_result):
    apes = [r.ape["throughput_per_gpu"] for r in subset_result.subset("inferencemax").rows
            if r.status == "ok"]
    assert len(apes) >= 20
    assert sorted(apes)[len(apes) // 2] < 1.0  # median APE below 100%


def test_outputs_pandas_dict_markdown(subset_result):
    frame = subset_result.to_pandas()
    assert len(frame) == 40
    for m in METRICS:
        assert {f"measured_{m}", f"predicted_{m}", f"ape_{m}"} <= set(frame.columns)
    data = subset_result.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["counts"]["rows"] == 40
    assert set(data["by_source"]) == {"inferencemax", "mlperf"}
    assert {"by_hardware", "by_model", "by_framework", "overall"} <= set(data["summary"])
    assert len(data["rows"]) == 40 and "ape" in data["rows"][0]
    md = subset_result.to_markdown()
    assert "## inferencemax" in md and "## mlperf" in md
    assert "| hardware |" in md and "disaggregated prefill/decode not modeled" in md


def _variant(row, **changes):
    return PublishedRow(row.source, row.row_id + "-variant", {**row.fields, **changes})


def test_rejected_and_infeasible_configs_are_reported_not_dropped(imax_rows):
    gpt = next(r for r in imax_rows if r.fields["hw"] == "h100")
    ds = next(r for r in imax_rows if r.fields["model"] == "deepseek-ai/DeepSeek-R1-0528")
    rows = [_variant(gpt, tp=3.0), _variant(ds, hw="h100", tp=1.0)]
    result = reconcile(rows)
    bad_tp, too_big = result.rows
    assert bad_tp.status == "error" and "tp=3" in bad_tp.reason
    assert too_big.status == "infeasible" and "does not fit" in too_big.reason
    assert result.counts() == {"rows": 2, "ok": 0, "skipped": 0, "infeasible": 1, "error": 1}
    assert result.summary()["overall"]["throughput_per_gpu"]["count"] == 0


def test_efficiency_is_passed_through(imax_rows):
    rows = imax_rows[:4]
    default = reconcile(rows).to_pandas()["predicted_throughput_per_gpu"]
    ideal = reconcile(rows, efficiency=THEORETICAL).to_pandas()["predicted_throughput_per_gpu"]
    assert list(default) != list(ideal)


def test_hardware_filter(imax_rows):
    result = reconcile(imax_rows, hardware=["h100"])
    assert result.counts()["rows"] == 6 and {r.hardware for r in result.rows} == {"h100-sxm"}


@pytest.mark.slow
def test_bundled_tables_reconcile_quickly_and_completely():
    rows = load_rows("inferencemax") + load_rows("mlperf")
    start = time.perf_counter()
    result = reconcile(rows)
    assert time.perf_counter() - start < 60
    assert result.counts()["rows"] == len(rows) == 1622 + 416
    assert result.counts()["error"] == 0


# ------------------------------------------------------------------------------- CLI


def test_cli_prints_tables():
    result = runner.invoke(app, ["validate", "llm", "--data", str(IMAX), "--data", str(MLPERF)])
    assert result.exit_code == 0, result.output
    for text in ("inferencemax", "mlperf", "MAPE/median APE", "h100-sxm", "skipped"):
        assert text in result.output


def test_cli_json_and_report(tmp_path):
    report = tmp_path / "report.md"
    result = runner.invoke(app, ["validate", "llm", "-d", str(IMAX), "--hardware", "h100,b200",
                                 "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"schema_version", "metrics", "counts", "skipped_by_reason", "summary",
            "by_source", "rows"} <= set(data)
    assert {r["hardware"] for r in data["rows"]} == {"h100-sxm", "b200"}
    assert report.read_text().startswith("# perfcast validate llm")


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "nonesuch"], "unknown data 'nonesuch'"),
    (["--data", "{foreign}"], "neither an InferenceMAX table"),
    (["--data", str(IMAX), "--hardware", "h900"], "unknown hardware 'h900'"),
])
def test_cli_bad_input_exits_2_without_traceback(tmp_path, args, message):
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("x,y\n1,2\n")
    args = [a.replace("{foreign}", str(foreign)) for a in args]
    result = runner.invoke(app, ["validate", "llm", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
