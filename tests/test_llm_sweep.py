"""`perfcast llm sweep`: vectorized sweep vs scalar estimates, skips, Pareto fronts, plots, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import perfcast.llm as llm
from perfcast.cli.llm_sweep import sweep_command
from perfcast.estimate.sweep import COLUMNS, pareto_front, sweep
from perfcast.estimate.sweep_plot import PlotFormatError, plot_pareto

NUMERIC = ("gpus", "ttft_s", "tpot_s", "interactivity", "throughput_per_gpu",
           "output_throughput_per_gpu", "memory_total_bytes", "max_concurrency",
           "cost_per_million_tokens_usd")


@pytest.fixture(scope="module")
def moe_sweep():
    return sweep("gpt-oss-120b", ["h100-sxm", "b200"], concurrency=[1, 3, 64, 512, 4096],
                 tp=[1, 2, 4, 8], ep=None, pp=[1, 2], dp_attention=[False, True],
                 precision=["bf16", "fp8"], isl=[1024, 8192], osl=[128, 1024])


def _scalar_check(result, model: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(result), size=min(n, len(result)), replace=False):
        row = result.frame.iloc[int(i)]
        est = llm.estimate(model, row.hardware, tp=int(row.tp), ep=int(row.ep),
                           pp=int(row.pp), dp_attention=bool(row.dp_attention),
                           isl=int(row.isl), osl=int(row.osl),
                           concurrency=int(row.concurrency), precision=row.precision)
        for col in NUMERIC:
            expected = float(np.asarray(getattr(est, col)))
            assert row[col] == pytest.approx(expected, rel=1e-9, abs=0), (col, dict(row))
        assert bool(row.feasible) == bool(est.feasible), dict(row)


def test_sweep_matches_scalar_estimate_moe(moe_sweep):
    frame = moe_sweep.frame
    assert list(frame.columns) == list(COLUMNS)
    assert set(frame["pp"]) == {1, 2} and set(frame["dp_attention"]) == {False, True}
    assert set(frame["ep"]) == {1, 2, 4, 8}  # ep=None: every divisor of tp for a MoE model
    assert (~frame["feasible"]).any() and frame["feasible"].any()  # 4096 requests do not fit
    _scalar_check(moe_sweep, "gpt-oss-120b", 24, seed=0)


@pytest.mark.parametrize("model", ["llama-3.1-70b", "deepseek-r1", "gemma-3-27b"])
def test_sweep_matches_scalar_estimate(model):
    result = sweep(model, ["h200", "mi300x"], concurrency=[1, 16, 256], tp=[2, 8], ep=None,
                   dp_attention=[False, True], precision=["fp8"], isl=[1024, 4096],
                   osl=[1024])
    assert result.evaluated > 0
    _scalar_check(result, model, 10, seed=1)


def test_invalid_layouts_skipped_and_counted():
    hw, prec, conc, isl, osl = ["h100-sxm", "h200"], ["bf16"], [1, 8, 64], [1024], [256, 1024]
    result = sweep("llama-3.1-70b", hw, concurrency=conc, tp=[1, 3, 8], ep=[1, 2],
                   precision=prec, isl=isl, osl=osl)
    per_layout = len(conc) * len(isl) * len(osl) * len(hw) * len(prec)
    layouts = [s for s in result.skipped if s.kind == "layout"]
    assert sorted(s.layout for s in layouts) == ["tp1-ep2", "tp3", "tp3-ep2", "tp8-ep2"]
    assert all(s.configurations == per_layout for s in layouts)
    assert result.skipped_count == 4 * per_layout
    assert result.evaluated == 2 * per_layout  # tp1 and tp8 with ep1
    assert set(zip(result.frame["tp"], result.frame["ep"], strict=True)) == {(1, 1), (8, 1)}
    reasons = {s.layout: s.reason for s in layouts}
    assert "does not divide the 64 attention heads" in reasons["tp3"]
    assert "needs a mixture-of-experts model" in reasons["tp8-ep2"]


def test_precision_the_device_lacks_is_skipped_with_reason():
    result = sweep("llama-3.1-8b", ["h100-sxm", "a100"], concurrency=[1, 32], tp=[1, 2],
                   precision=["bf16", "fp8"], isl=[512], osl=[512])
    pairs = set(zip(result.frame["hardware"], result.frame["precision"], strict=True))
    assert pairs == {("h100-sxm", "bf16"), ("h100-sxm", "fp8"), ("a100-sxm-80gb", "bf16")}
    [skip] = result.skipped
    assert (skip.kind, skip.hardware, skip.precision) == ("precision", "a100-sxm-80gb", "fp8")
    assert "has no fp8 compute rate" in skip.reason and "w8a16" in skip.reason
    assert skip.configurations == 2 * 2  # two layouts x two concurrencies
    assert result.evaluated == 3 * 4


def test_layout_no_link_reaches_is_skipped():
    # l4 has PCIe only (one host of 8 devices) and no scale-out link
    result = sweep("llama-3.1-8b", ["l4"], concurrency=[1, 8], tp=[4, 16], precision=["bf16"],
                   isl=[128], osl=[128])
    [skip] = result.skipped
    assert (skip.kind, skip.layout, skip.configurations) == ("communication", "tp16", 2)
    assert "exceeds its pcie domain" in skip.reason
    assert set(result.frame["tp"]) == {4} and result.evaluated == 2


@pytest.mark.parametrize("kwargs", [
    {"concurrency": []}, {"tp": [0]}, {"isl": [1.5]}, {"precision": []}, {"hardware": []},
    {"tp": [True]},
])
def test_bad_sweep_arguments_raise_value_error(kwargs):
    args = {"hardware": ["h100"], "concurrency": [1], "tp": [1], "precision": ["bf16"],
            "isl": [128], "osl": [128], **kwargs}
    with pytest.raises(ValueError):
        sweep("llama-3.1-8b", args.pop("hardware"), **args)


def _brute_force(frame: pd.DataFrame, x: str, y: str, by: list[str]) -> set[tuple]:
    front = set()
    for key, g in frame.groupby(by) if by else [((), frame)]:
        key = key if isinstance(key, tuple) else (key,)
        pts = g[[x, y]].to_numpy(float)
        for px, py in pts:
            dominated = any(qx >= px and qy >= py and (qx > px or qy > py) for qx, qy in pts)
            if not dominated:
                front.add((*key, px, py))
    return front


@pytest.mark.parametrize("seed", range(6))
def test_pareto_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame({
        "hardware": rng.choice(["a", "b", "c"], n),
        "precision": rng.choice(["bf16", "fp8"], n),
        "x": rng.integers(0, 30, n).astype(float),  # small ranges: many ties
        "y": rng.integers(0, 30, n).astype(float),
    })
    for by in (["hardware", "precision"], ["hardware"], []):
        front = pareto_front(frame, "x", "y", by)
        got = [(*r[:-2], r[-2], r[-1]) for r in front[[*by, "x", "y"]].itertuples(index=False)]
        assert len(got) == len(set(got))
        assert set(got) == _brute_force(frame, "x", "y", by)
        for _, g in front.groupby(by) if by else [((), front)]:
            assert g["x"].is_monotonic_increasing and g["y"].is_monotonic_decreasing


def test_sweep_pareto_is_feasible_and_matches_brute_force(moe_sweep):
    by = ["hardware", "precision", "isl", "osl"]
    front = moe_sweep.pareto()  # several workloads: isl and osl are added to the groups
    assert set(by) <= set(front.columns)
    assert front["feasible"].all()
    feasible = moe_sweep.frame[moe_sweep.frame["feasible"]]
    expected = _brute_force(feasible, "interactivity", "throughput_per_gpu", by)
    got = {(*r[:-2], r[-2], r[-1]) for r in
           front[[*by, "interactivity", "throughput_per_gpu"]].itertuples(index=False)}
    assert got == expected
    one = moe_sweep.pareto(by=["hardware", "precision", "isl", "osl"])
    assert len(one) == len(front)


def test_plot_files(tmp_path, moe_sweep):
    png = plot_pareto(moe_sweep, tmp_path / "front.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = plot_pareto(moe_sweep, tmp_path / "front.html").read_text()
    assert "<svg" in page and "gpt-oss-120b" in page and "<table>" in page
    assert "<script" not in page and 'src="http' not in page and "<link" not in page
    assert "<svg" in plot_pareto(moe_sweep, tmp_path / "front.svg").read_text()
    with pytest.raises(PlotFormatError, match="suffix"):
        plot_pareto(moe_sweep, tmp_path / "front.pdf")


# -- CLI ---------------------------------------------------------------------------------
app = typer.Typer()
app.command("sweep")(sweep_command)


@app.callback()
def _root() -> None:
    """Test app around sweep_command."""


runner = CliRunner()
SMALL = ["sweep", "-m", "gpt-oss-120b", "-H", "h100,b200", "--tp", "4,8", "-c", "1,16,256"]


def test_cli_human_output():
    result = runner.invoke(app, [*SMALL, "--precision", "bf16,fp8", "--dp-attention", "both"])
    assert result.exit_code == 0, result.output
    assert "gpt-oss-120b on b200, fp8: Pareto front" in result.output
    assert "configurations evaluated" in result.output and "infeasible" in result.output
    assert "tok/s/GPU" in result.output


def test_cli_json_csv_plot(tmp_path):
    csv, plot = tmp_path / "all.csv", tmp_path / "front.html"
    result = runner.invoke(app, [*SMALL, "--json", "--csv", str(csv), "--plot", str(plot),
                                 "--precision", "fp8,bf16", "-H", "h100,a100"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["rows_kind"] == "pareto" and d["model"] == "gpt-oss-120b"
    assert {r["precision"] for r in d["rows"]} == {"fp8", "bf16"}
    assert [s["kind"] for s in d["skipped_detail"]] == ["precision"]
    frame = pd.read_csv(csv)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == d["evaluated"]
    assert "<svg" in plot.read_text()
    every = runner.invoke(app, [*SMALL, "--json", "--all"])
    assert len(json.loads(every.output)["rows"]) == json.loads(every.output)["evaluated"]


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "no-such-model"], "no-such-model"),
    (["-m", "llama-3.1-8b", "-H", "h100,h1000"], "h1000"),
    (["-m", "llama-3.1-8b", "--precision", "fp7"], "unknown precision"),
    (["-m", "llama-3.1-8b", "--tp", ""], "--tp needs a comma-separated list"),
    (["-m", "llama-3.1-8b", "--tp", "1,,2"], "--tp needs a comma-separated list"),
    (["-m", "llama-3.1-8b", "-c", "1,two"], "'two' is not an integer"),
    (["-m", "llama-3.1-8b", "--osl", "0"], "--osl: 0 must be at least 1"),
    (["-m", "llama-3.1-8b", "--plot", "front.pdf"], "suffix must be one of"),
    (["-m", "llama-3.1-8b", "-H", "a100", "--precision", "fp8"], "nothing to evaluate"),
    (["-m", "llama-3.1-8b", "--dp-attention", "maybe"], "maybe"),
])
def test_cli_bad_input_exits_2(args, message):
    result = runner.invoke(app, ["sweep", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
