"""Reading published GPU kernel tables: the layout, bad input, and fitted forms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfcast.calibrate.from_measurements import fit_measurements
from perfcast.calibrate.gpu_fit import fit_samples, samples_from
from perfcast.calibrate.measurements import MeasurementError, ReadReport, discover, read_table
from perfcast.estimate.gpu_profile import GpuProfile, ProfileError, device_figures
from perfcast.hardware import load_spec

SAMPLE = Path(__file__).parent / "data" / "kernel-measurements"


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    root = tmp_path / "measurements"
    shutil.copytree(SAMPLE, root)
    return root


def test_discover_reads_the_published_layout():
    tables = {(t.system, t.op, t.framework, t.table) for t in discover(SAMPLE)}
    assert ("h100_sxm", "gemm", "trtllm", "gemm_perf") in tables
    assert ("h100_sxm", "comm", "nccl", "nccl_perf") in tables


def test_read_table_converts_milliseconds_to_seconds():
    gemm = next(t for t in discover(SAMPLE) if t.table == "gemm_perf")
    df = read_table(gemm)
    np.testing.assert_allclose(df["latency_s"], df["latency"] * 1e-3)


def test_newest_version_wins(sample_copy: Path):
    old = sample_copy / "h100_sxm" / "gemm" / "trtllm" / "1.2.0"
    shutil.copytree(sample_copy / "h100_sxm" / "gemm" / "trtllm" / "1.3.0rc20", old)
    gemm = next(t for t in discover(sample_copy) if t.table == "gemm_perf")
    assert gemm.version == "1.3.0rc20"


def test_missing_column_is_named(sample_copy: Path):
    path = sample_copy / "h100_sxm" / "gemm" / "trtllm" / "1.3.0rc20" / "gemm_perf.parquet"
    pd.read_parquet(path).drop(columns=["k"]).to_parquet(path)
    with pytest.raises(MeasurementError, match=r"gemm_perf.parquet: missing columns \['k'\]"):
        fit_measurements(sample_copy)


def test_malformed_table_is_an_error_not_a_partial_profile(sample_copy: Path, tmp_path: Path):
    path = sample_copy / "h100_sxm" / "moe" / "trtllm" / "1.3.0rc20" / "moe_perf.parquet"
    path.write_text("not parquet")
    out = tmp_path / "profiles"
    with pytest.raises(MeasurementError, match=r"moe_perf\.parquet: not a readable Parquet"):
        fit_measurements(sample_copy, out)
    assert not out.exists()  # nothing written from the readable tables


def test_unknown_table_and_columns_are_named(sample_copy: Path):
    extra = sample_copy / "h100_sxm" / "gemm" / "trtllm" / "1.3.0rc20"
    pd.DataFrame({"x": [1]}).to_parquet(extra / "mystery_perf.parquet")
    path = extra / "gemm_perf.parquet"
    pd.read_parquet(path).assign(tile="128x128").to_parquet(path)
    report = ReadReport()
    for t in discover(sample_copy, report):
        read_table(t, report)
    assert any("unknown table 'mystery_perf'" in s for s in report.skipped)
    assert any("ignored unknown columns ['tile']" in n for n in report.notes)


def test_gpu_not_in_catalog_is_a_named_skip(sample_copy: Path):
    shutil.move(sample_copy / "h100_sxm", sample_copy / "x9000")
    for path in (sample_copy / "x9000").rglob("*.parquet"):
        pd.read_parquet(path).assign(device="NVIDIA X9000").to_parquet(path)
    report = fit_measurements(sample_copy)
    assert not report.profiles
    assert any("'NVIDIA X9000' is not in the catalog" in s for s in report.read.skipped)


def test_empty_directory_is_an_error(tmp_path: Path):
    with pytest.raises(MeasurementError, match="no measurement tables found"):
        discover(tmp_path)
    with pytest.raises(MeasurementError, match="not a directory"):
        discover(tmp_path / "missing")


def test_gemm_form_fits_held_out_shapes():
    """Fit on 70% of the sample's GEMM shapes; the other 30% within 10% MAPE."""
    gemm = next(t for t in discover(SAMPLE) if t.table == "gemm_perf")
    samples = next(samples_from("gemm_perf", read_table(gemm)))
    figures = device_figures(load_spec("h100-sxm"), samples.form, samples.key)
    held = samples.held_out()
    assert 0.2 < held.mean() < 0.4
    fit = fit_samples(samples.subset(~held), figures)
    test = samples.subset(held)
    ape = np.abs(fit.seconds(test.dims, figures) / test.seconds - 1)
    assert ape.mean() < 0.10
    assert 0.3 < fit.params["compute_eff"] <= 1.0  # a plausible fraction of the datasheet


def test_fit_writes_loadable_profiles(tmp_path: Path):
    report = fit_measurements(SAMPLE, tmp_path)
    assert [p.name for p in report.profiles] == ["h100-sxm/trtllm"]
    loaded = GpuProfile.load(report.written[0])
    assert loaded.fit("gemm", "bfloat16") is not None
    assert loaded.fit("moe", "fp8|balanced") is not None
    assert loaded.fit("collective", "all_reduce|engine") is not None
    assert "aiconfigurator" in loaded.source["measurements"]


def test_corrupt_profile_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "h100-sxm__trtllm.json.gz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ProfileError, match="cannot read GPU profile"):
        GpuProfile.load(path)
    plain = tmp_path / "old.json"
    plain.write_text('{"format_version": 99}')
    with pytest.raises(ProfileError, match="format_version 99"):
        GpuProfile.load(plain)


def test_moe_fit_refines_each_measured_configuration():
    """MoE is refined per measured (hidden, inter, top-k, experts, EP) model along tokens;
    held-out token counts of measured models come within 10%; an unmeasured model gets
    the form and grid alone."""
    moe = next(t for t in discover(SAMPLE) if t.table == "moe_perf")
    samples = next(samples_from("moe_perf", read_table(moe)))
    figures = device_figures(load_spec("h100-sxm"), samples.form, samples.key)
    held = samples.held_out()
    fit = fit_samples(samples.subset(~held), figures)
    test = samples.subset(held)
    ape = np.abs(fit.seconds(test.dims, figures) / test.seconds - 1)
    assert ape.mean() < 0.10
    assert fit.curves is not None and len(fit.curves.curves) > 5
    unmeasured = {**{k: v[:1] for k, v in test.dims.items()}, "hidden": np.array([1234.0])}
    assert fit.curves(unmeasured) == pytest.approx([0.0])
    again = type(fit).from_dict(fit.to_dict())
    np.testing.assert_allclose(again.seconds(test.dims, figures),
                               fit.seconds(test.dims, figures), rtol=2e-3)


def test_cli_calibrate_from_measurements(tmp_path: Path):
    from typer.testing import CliRunner

    from perfcast.cli.main import app

    out = tmp_path / "profiles"
    result = CliRunner().invoke(app, ["calibrate", "--from-measurements", str(SAMPLE), "-o",
                                      str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [p["gpu"] + "/" + p["engine"] for p in summary["profiles"]] == ["h100-sxm/trtllm"]
    assert (out / "h100-sxm__trtllm.json.gz").exists()
    bad = CliRunner().invoke(app, ["calibrate", "--from-measurements", str(tmp_path / "none")])
    assert bad.exit_code != 0 and "not a directory of measurements" in bad.output
    bad = CliRunner().invoke(app, ["calibrate", "--from-measurements", str(SAMPLE),
                                   "--engines", "tensorrt"])
    assert bad.exit_code != 0 and "unknown ['tensorrt']" in bad.output
