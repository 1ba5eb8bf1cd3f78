"""Measuring this machine's kernels into the published table layout (on CPU here; one test
needs a CUDA GPU), reading them back, fitting them, and the ``calibrate --gpu`` entry."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import typer

from perfcast.calibrate import gpu_collect
from perfcast.calibrate.from_measurements import fit_measurements
from perfcast.calibrate.gpu_collect import collect, system_name
from perfcast.calibrate.gpu_fit import samples_from
from perfcast.calibrate.measurements import ReadReport, discover, read_table
from perfcast.cli.calibrate_measured import calibrate_this_gpu

BUDGET = 3.0
COMMON = {"framework", "version", "device", "op_name", "kernel_source", "latency"}
ATTENTION = {"batch_size", "isl", "num_heads", "num_key_value_heads", "head_dim",
             "window_size", "beam_width", "attn_dtype", "kv_cache_dtype", "step"}
COLUMNS = {"gemm_perf": COMMON | {"gemm_dtype", "m", "n", "k"},
           "context_attention_perf": COMMON | ATTENTION,
           "generation_attention_perf": COMMON | ATTENTION}
H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, Path, float, list[str]]:
    """One CPU collect shared by the tests: (root, system dir, seconds, progress lines)."""
    root = tmp_path_factory.mktemp("measured")
    lines: list[str] = []
    start = time.monotonic()
    system_dir = collect(root, budget_s=BUDGET, device="cpu", engine="vllm",
                         progress=lines.append)
    return root, system_dir, time.monotonic() - start, lines


def renamed(src: Path, dst: Path, device: str) -> Path:
    """A copy of measured tables under a system named after ``device``, as a GPU writes."""
    system = dst / system_name(device)
    for path in src.rglob("*.parquet"):
        df = pd.read_parquet(path).assign(device=device)
        out = system / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(out, index=False)
    return system


def test_cpu_tables_have_the_published_layout_and_columns(measured):
    root, system_dir, elapsed, lines = measured
    assert elapsed < BUDGET + 3, lines
    assert system_dir.parent == root
    report = ReadReport()
    tables = discover(root, report)
    assert {t.table for t in tables} == set(COLUMNS)
    assert {(t.system, t.framework, t.version) for t in tables} == {
        (system_dir.name, "vllm", torch.__version__.split("+")[0])}
    assert {t.op for t in tables} == {"gemm", "attention"}
    for tf in tables:
        df = read_table(tf, report)
        assert set(df.columns) - {"latency_s"} == COLUMNS[tf.table]
        assert len(df) >= 3 and (df["latency"] > 0).all()  # ~10-25 rows each in 3 s here
    assert report.skipped == [] and report.notes == []
    assert any("all-reduce: skipped" in line for line in lines)
    assert any("fp8 GEMM: skipped" in line for line in lines)


def test_cpu_tables_become_samples(measured):
    root = measured[0]
    samples = {}
    for tf in discover(root):
        df = read_table(tf)
        for s in samples_from(tf.table, df):
            samples[(s.form, s.key)] = (s, df)
    assert set(samples) == {("gemm", "bfloat16"), ("context_attention", "bfloat16"),
                            ("generation_attention", "bfloat16")}
    decode, df = samples[("generation_attention", "bfloat16")]
    assert (df["isl"] == 1).all()
    assert set(decode.dims["context"]) <= {float(2**i) for i in range(6, 18)}  # isl + step
    prefill, df = samples[("context_attention", "bfloat16")]
    assert (df["step"] == 0).all() and (df["head_dim"] == 128).all()
    assert (prefill.seconds > 0).all()


def test_tables_fit_into_a_profile_when_the_device_is_in_the_catalog(measured, tmp_path):
    renamed(measured[1], tmp_path / "gpu", H100)  # CPU latencies stand in: the format is tested
    report = fit_measurements(tmp_path / "gpu", tmp_path / "profiles", engines=["vllm"])
    assert [(p.gpu, p.engine) for p in report.profiles] == [("h100-sxm", "vllm")]
    fitted = {form for form, _ in report.profiles[0].fits}
    for form in ("gemm", "context_attention", "generation_attention"):  # fitted from 8 rows
        assert form in fitted or any(f"{form} bfloat16 not fitted" in n for n in report.read.notes)
    assert fitted and report.written[0].exists()


def test_calibrate_this_gpu_prints_tables_and_profile(measured, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def fake_collect(out_root: Path, **kwargs) -> Path:  # the CPU tables, named as an H100's
        assert kwargs["engine"] == "vllm" and kwargs["budget_s"] == 5
        return renamed(measured[1], out_root, H100)

    monkeypatch.setattr(gpu_collect, "collect", fake_collect)
    calibrate_this_gpu("5s", "vllm", tmp_path / "profiles", as_json=False)
    out = capsys.readouterr().out
    assert "measured:" in out and "gemm_perf.parquet" in out
    assert (tmp_path / "profiles" / "h100-sxm__vllm.json.gz").exists()
    assert any((tmp_path / ".perfcast" / "gpu-measurements").rglob("gemm_perf.parquet"))


def test_fp8_gemm_call_runs():
    kinds = gpu_collect._kinds(torch, torch.device("cpu"), fp8=True)
    fp8 = next(k for k in kinds if k.fixed.get("gemm_dtype") == "fp8")
    assert fp8.make({"m": 3, "n": 32, "k": 64})().shape == (3, 32)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"budget_s": 0}, "time budget must be a positive"),
    ({"budget_s": -1}, "time budget must be a positive"),
    ({"budget_s": float("nan")}, "time budget must be a positive"),
    ({"engine": "torch"}, "engine 'torch': unknown; choose from trtllm, sglang, vllm"),
    ({"device": "mps"}, "only 'cuda', 'cuda:N' and 'cpu'"),
    ({"device": "not a device"}, "not a device name"),
])
def test_bad_input_is_refused(tmp_path, kwargs, message):
    args = {"budget_s": 1.0, "engine": "vllm", "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=message):
        collect(tmp_path, **args)
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        collect(tmp_path, budget_s=1, engine="vllm")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(typer.Exit) as exc:
        calibrate_this_gpu("5s", "vllm", None, as_json=False)
    assert exc.value.exit_code == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert not (tmp_path / ".perfcast").exists()


def test_calibrate_this_gpu_refuses_a_bad_budget(capsys):
    with pytest.raises(typer.Exit):
        calibrate_this_gpu("soon", "vllm", None, as_json=False)
    assert "--budget" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_collect_fits_a_profile(tmp_path):
    lines: list[str] = []
    start = time.monotonic()
    system_dir = collect(tmp_path / "m", budget_s=20, engine="vllm", progress=lines.append)
    assert time.monotonic() - start < 20 + 10, lines
    report = fit_measurements(tmp_path / "m", tmp_path / "profiles", engines=["vllm"])
    if not report.profiles:
        pytest.skip(f"{system_dir.name}: {report.read.skipped}")  # GPU not in the catalog
    fits = report.profiles[0].fits
    assert {form for form, _ in fits} >= {"gemm", "context_attention", "generation_attention"}
