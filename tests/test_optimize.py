"""perfcast.optimize: candidates and their skip reasons, output checks, ranking, the search
(failed / rejected / measured candidates, the store), the JSON report and the CLI."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import perfcast
from perfcast.bench.stats import format_seconds
from perfcast.cli.main import app
from perfcast.optimize import CANDIDATES, Candidate, ModelFacts, OptimizeError, Setting, optimize
from perfcast.optimize.candidates import with_sdpa
from perfcast.optimize.check import (
    OutputMismatch,
    compare_outputs,
    flatten_outputs,
    tolerance_for,
)
from perfcast.optimize.rank import Prediction, predict, promising, rank
from perfcast.optimize.report import to_markdown
from perfcast.optimize.result import STATUSES
from perfcast.store import Store

FAST = {"budget_s": 300.0, "max_timing_s": 0.3}  # tiny models: short timing, no budget cut
EAGER = CANDIDATES[0]


def _mlp() -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    return model, (torch.randn(4, 32),)


class FlattenByView(nn.Module):
    """A tiny CNN whose head uses .view(): fine on contiguous activations, an error on
    channels_last ones (the layout the channels-last candidate produces)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return self.fc(y.view(y.shape[0], -1))


def _tiny_gpt2(attn: str) -> tuple[nn.Module, tuple]:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32,
                                  vocab_size=128, use_cache=False)
    cfg._attn_implementation = attn
    model = transformers.GPT2LMHeadModel(cfg).eval()
    return model, (torch.randint(0, 128, (1, 16)),)


def _setting(facts: ModelFacts, device: str = "cpu", bf16: bool = True) -> Setting:
    return Setting(device=device, threads=1, bf16=bf16, facts=facts)


def _reasons(setting: Setting) -> dict[str, str | None]:
    return {c.name: c.applies(setting) for c in CANDIDATES}


# -- candidates -----------------------------------------------------------------------------


def test_model_facts_of_mlp_cnn_and_hf_model():
    assert ModelFacts.of(_mlp()[0]) == ModelFacts("float32", convs=0, linears=2, attention=None)
    assert ModelFacts.of(FlattenByView()) == ModelFacts("float32", 1, 1, None)
    gpt2 = _tiny_gpt2("eager")[0]
    assert ModelFacts.of(gpt2).attention == "eager"
    assert ModelFacts.of(with_sdpa(gpt2)).attention == "sdpa"
    assert gpt2.config._attn_implementation == "eager"  # the switch works on a copy


def test_mlp_on_cpu_skip_reasons():
    reasons = _reasons(_setting(ModelFacts.of(_mlp()[0]), bf16=False))
    assert reasons["eager"] is None and reasons["int8-dynamic"] is None
    assert "CUDA graphs" in reasons["compile-reduce-overhead"]
    assert "no native bf16" in reasons["bf16-autocast"]
    assert "CUDA only" in reasons["fp16-autocast"]
    assert "no nn.Conv2d" in reasons["channels-last"]
    assert "not a Hugging Face" in reasons["sdpa"]


def test_cnn_hf_and_cuda_reasons():
    cnn = _reasons(_setting(ModelFacts.of(FlattenByView())))
    assert cnn["channels-last"] is None and cnn["bf16-autocast"] is None
    hf_sdpa = _reasons(_setting(ModelFacts("float32", 0, 0, "sdpa")))
    assert "already uses attn_implementation='sdpa'" in hf_sdpa["sdpa"]
    assert "no nn.Linear" in hf_sdpa["int8-dynamic"]
    assert _reasons(_setting(ModelFacts("float32", 0, 0, "eager")))["sdpa"] is None
    gpu = _reasons(_setting(ModelFacts("float32", 0, 2, None), device="cuda"))
    assert gpu["fp16-autocast"] is None and gpu["compile-reduce-overhead"] is None
    assert "CPU kernels only" in gpu["int8-dynamic"]
    assert "CPUExecutionProvider" in gpu["onnxruntime"]
    assert "CPU only" in gpu["perfcast-runtime"]
    half = _reasons(_setting(ModelFacts("bfloat16", 0, 2, None), device="cuda"))
    assert "already bfloat16" in half["fp16-autocast"]


def test_perfcast_runtime_without_compile_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "perfcast.runtime", types.ModuleType("perfcast.runtime"))
    setting = _setting(ModelFacts.of(_mlp()[0]))
    runtime = next(c for c in CANDIDATES if c.name == "perfcast-runtime")
    assert runtime.applies(setting) == "perfcast.runtime has no compile() in this installation"


# -- output checks --------------------------------------------------------------------------


def test_compare_outputs_hand_computed():
    ref = flatten_outputs((torch.tensor([1.0, -4.0, 2.0]), {"b": torch.tensor([[0.5]])}))
    err = compare_outputs([np.array([1.0, -4.02, 2.0]), np.array([[0.5]])], ref, 1e-2)
    assert err.max_abs == pytest.approx(0.02) and err.max_rel == pytest.approx(0.02 / 4)
    assert err.ok
    assert not compare_outputs((torch.tensor([1.0, -4.0, 2.1]), torch.tensor([[0.5]])),
                               ref, 1e-2).ok  # 0.1 / 4 = 0.025 > 0.01
    nan = compare_outputs((torch.tensor([1.0, float("nan"), 2.0]), torch.tensor([[0.5]])),
                          ref, 1.0)
    assert not nan.ok and nan.to_dict()["max_rel"] is None
    with pytest.raises(OutputMismatch, match="1 output tensor"):
        compare_outputs(torch.zeros(3), ref, 1e-2)
    with pytest.raises(OutputMismatch, match=r"shape \(2,\)"):
        compare_outputs((torch.zeros(2), torch.zeros(1, 1)), ref, 1e-2)


def test_tolerances_per_dtype():
    assert tolerance_for(None, "float32") == 1e-4
    assert tolerance_for("bfloat16", "float32") == 2e-2
    assert tolerance_for("float16", "float32") == 1e-2
    assert tolerance_for("int8", "float32") == 5e-2
    assert tolerance_for(None, "bfloat16") == 2e-2  # a bf16 model: its own precision
    assert tolerance_for("bfloat16", "float32", {"bfloat16": 0.1}) == 0.1
    with pytest.raises(ValueError, match="no tolerance for dtype 'int4'"):
        tolerance_for("int4", "float32")


# -- ranking --------------------------------------------------------------------------------


def _fake(name: str, touches: tuple[str, ...] = ()) -> Candidate:
    return Candidate(name, name, lambda s: None, lambda m, i, s: lambda: None, touches=touches)


def test_rank_predicted_by_time_then_unknown_by_share():
    cands = [_fake("eager"), _fake("a"), _fake("b"), _fake("c"), _fake("d"), _fake("e")]
    preds = {
        "eager": Prediction(1.0, 1.0, "est"),
        "a": Prediction(None, None, "unknown", share=0.2),
        "b": Prediction(0.5, 2.0, "est"),
        "c": Prediction(None, None, "unknown", share=None),
        "d": Prediction(None, None, "unknown", share=0.9),
        "e": Prediction(0.8, 1.25, "est"),
    }
    assert [c.name for c in rank(cands, preds)] == ["eager", "b", "e", "d", "a", "c"]
    assert promising(preds["a"]) and promising(Prediction(1.1, 0.91, "est"))
    assert not promising(Prediction(2.0, 0.5, "est"))


def test_predictions_come_from_the_estimator():
    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.hardware import load_spec

    model, inputs = _mlp()
    spec = load_spec("h100-sxm")
    names = {"eager", "compile", "bf16-autocast", "channels-last", "onnxruntime"}
    preds = predict(model, inputs, [c for c in CANDIDATES if c.name in names], hardware=spec)
    eager_s = float(estimate_prepared(prepare(model, inputs), spec).totals.time_s)
    bf16_s = float(estimate_prepared(prepare(_mlp()[0], inputs, dtype="bf16"), spec)
                   .totals.time_s)
    assert preds["eager"].latency_s == pytest.approx(eager_s)
    assert preds["bf16-autocast"].speedup == pytest.approx(eager_s / bf16_s)
    assert preds["bf16-autocast"].confidence == "THEORETICAL"
    assert preds["channels-last"].latency_s is None and preds["channels-last"].share == 0.0
    assert preds["onnxruntime"].share == 1.0
    assert model[0].weight.dtype == torch.float32  # the bf16 capture used a copy


# -- the search -----------------------------------------------------------------------------


def _broken_build(model, inputs, setting):
    raise RuntimeError("kernel library missing")


def _broken_call(model, inputs, setting):
    def forward():
        raise ValueError("shape mismatch in fused op")
    return forward


def _perturbed(model, inputs, setting):
    def forward():
        with torch.inference_mode():
            return model(*inputs) * 1.01
    return forward


def test_failed_and_rejected_candidates_do_not_stop_the_search(tmp_path):
    model, inputs = _mlp()
    cands = [EAGER,
             Candidate("broken-build", "raises while building", lambda s: None, _broken_build),
             Candidate("broken-call", "raises when called", lambda s: None, _broken_call),
             Candidate("off-by-1pct", "scales outputs by 1.01", lambda s: None, _perturbed),
             next(c for c in CANDIDATES if c.name == "int8-dynamic")]
    with Store(tmp_path / "p.db") as store:
        report = optimize(model, inputs, candidates=cands, store=store, name="mlp",
                          params={"batch": 4}, **FAST)
        rows = {r.target: r for r in store.results(report.run_id)}
        run = store.run(report.run_id)
    by = {c.name: c for c in report.candidates}
    assert by["broken-build"].status == "failed"
    assert by["broken-build"].reason == "build failed: RuntimeError: kernel library missing"
    assert by["broken-call"].status == "failed"
    assert by["broken-call"].reason == ("first call failed: ValueError: shape mismatch in "
                                        "fused op")
    rejected = by["off-by-1pct"]
    assert rejected.status == "rejected" and rejected.error.max_rel == pytest.approx(0.01)
    assert "exceeds tolerance 0.0001" in rejected.reason
    int8 = by["int8-dynamic"]
    assert int8.status == "measured" and int8.stats.n >= 6
    assert 0 < int8.error.max_rel < 5e-2 and int8.comparison is not None
    assert by["eager"].status == "measured" and by["eager"].speedup == 1.0
    assert sum(c.chosen for c in report.candidates) == 1
    assert report.chosen in {"eager", "int8-dynamic"}
    # the chosen forward runs and gives the checked result
    assert report.forward().shape == (4, 8)
    # the store: one complete run, one row per candidate
    assert run.status == "complete" and run.n_results == 5
    assert rows["optimize:broken-build"].status == "failed"
    assert rows["optimize:off-by-1pct"].error.startswith("outputs differ from eager")
    assert rows["optimize:int8-dynamic"].status == "ok"
    assert rows["optimize:eager"].params == {"model": "mlp", "batch": 4}
    assert (store.run_dir(report.run_id) / "report.md").read_text().startswith(
        "# perfcast optimize: mlp")


class Sleepy(nn.Module):
    """A linear layer behind a 6 ms sleep: candidates that skip part of the sleep are
    faster by a known margin whatever the machine's load."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.006)
        return self.fc(x)


def _sleeping(seconds: float):
    def build(model, inputs, setting):
        def forward():
            time.sleep(seconds)
            with torch.inference_mode():
                return model.fc(*inputs)
        return forward
    return build


def test_final_round_picks_the_fastest_finalist():
    torch.manual_seed(0)
    cands = [EAGER, Candidate("sleep-3ms", "", lambda s: None, _sleeping(0.003)),
             Candidate("sleep-1ms", "", lambda s: None, _sleeping(0.001))]
    report = optimize(Sleepy().eval(), (torch.randn(2, 8),), candidates=cands, **FAST)
    by = {c.name: c for c in report.candidates}
    assert by["sleep-3ms"].comparison.verdict.value == "faster"
    assert by["sleep-1ms"].comparison.verdict.value == "faster"
    assert report.chosen == "sleep-1ms" and by["sleep-1ms"].chosen
    assert by["sleep-1ms"].final.median < by["sleep-3ms"].final.median
    assert by["eager"].final is None
    assert any(n.startswith("final round") and "sleep-1ms is fastest" in n for n in report.notes)
    assert 2.0 < report.speedup < 6.5  # 6 ms over 1 ms, minus the linear layer and overheads


def test_a_tie_in_the_final_round_goes_to_the_more_accurate(monkeypatch):
    import perfcast.optimize.run as run
    from perfcast.bench import Stats

    def approx(model, inputs, setting):
        def forward():
            time.sleep(0.001)
            with torch.inference_mode():
                return model.fc(*inputs) * (1 + 1e-5)
        return forward

    def tie(forwards, **kwargs):  # "approx" 0.5% faster by median: within the 3% of a tie
        base = [0.00100, 0.00101, 0.00099, 0.00100, 0.00102, 0.00098]
        return {n: Stats.from_samples([t * (0.995 if n == "approx" else 1.0) for t in base])
                for n in forwards}

    monkeypatch.setattr(run, "final_round", tie)
    torch.manual_seed(0)
    cands = [EAGER, Candidate("exact", "", lambda s: None, _sleeping(0.001)),
             Candidate("approx", "", lambda s: None, approx)]
    report = optimize(Sleepy().eval(), (torch.randn(2, 8),), candidates=cands, **FAST)
    assert report.candidate("approx").error.max_rel == pytest.approx(1e-5, rel=0.1)
    assert report.candidate("exact").error.max_rel == 0.0
    assert report.chosen == "exact"
    assert any("approx is fastest, but not significantly faster than exact (same" in n
               and "the more accurate exact is chosen" in n for n in report.notes)


def test_a_real_candidate_failing_on_the_model_is_marked_failed():
    torch.manual_seed(0)
    model, inputs = FlattenByView().eval(), (torch.randn(2, 3, 8, 8),)
    report = optimize(model, inputs, only=["channels-last", "int8-dynamic"], **FAST)
    failed = report.candidate("channels-last")
    assert failed.status == "failed" and failed.reason.startswith("first call failed: ")
    assert "view" in failed.reason
    assert report.candidate("int8-dynamic").status == "measured"
    assert [c.name for c in report.candidates] == ["eager", "int8-dynamic", "channels-last"]


def test_bf16_with_a_strict_tolerance_is_rejected_with_its_error():
    model, inputs = _mlp()
    report = optimize(model, inputs, only=["bf16-autocast"],
                      tolerances={"bfloat16": 1e-6}, **FAST)
    bf16 = report.candidate("bf16-autocast")
    if bf16.status == "skipped":  # a CPU without native bf16
        assert "no native bf16" in bf16.reason
        return
    assert bf16.status == "rejected" and bf16.error.max_rel > 1e-6
    assert bf16.reason == f"outputs differ from eager: {bf16.error.describe()}"
    assert report.chosen == "eager" and report.speedup == 1.0


def test_sdpa_switch_on_a_tiny_gpt2():
    model, inputs = _tiny_gpt2("eager")
    report = optimize(model, inputs, only=["sdpa"], **FAST)
    sdpa = report.candidate("sdpa")
    assert sdpa.status == "measured" and sdpa.error.max_rel < 1e-4
    assert sdpa.prediction.latency_s is not None  # captured after the switch
    assert model.config._attn_implementation == "eager"


def test_perfcast_runtime_failure_is_reported(monkeypatch):
    runtime = types.ModuleType("perfcast.runtime")

    def compile(model, example_inputs, backend="auto", threads=None):
        raise NotImplementedError("op kind 'relu' has no C kernel")

    runtime.compile = compile
    monkeypatch.setitem(sys.modules, "perfcast.runtime", runtime)
    model, inputs = _mlp()
    report = optimize(model, inputs, only=["perfcast-runtime"], **FAST)
    result = report.candidate("perfcast-runtime")
    assert result.status == "failed"
    assert result.reason == ("build failed: NotImplementedError: op kind 'relu' has no C "
                             "kernel")


def test_report_json_schema_and_markdown():
    model, inputs = _mlp()
    report = perfcast.optimize(model, inputs, only=["int8-dynamic"], **FAST)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["schema_version"] == 1 and d["device"] == "cpu" and d["model"] == "model"
    assert set(d) == {"schema_version", "model", "device", "hardware", "threads", "budget_s",
                      "elapsed_s", "chosen", "speedup", "reference_s", "estimator", "run_id",
                      "notes", "candidates"}
    assert [c["name"] for c in d["candidates"]][:2] == ["eager", "int8-dynamic"]
    keys = {"name", "description", "status", "chosen", "reason", "rank", "precision",
            "prediction", "measured_s", "measured_ci95_s", "samples", "speedup",
            "speedup_ci95", "verdict", "p_value", "final_s", "memory_bytes", "build_s", "error",
            "notes"}
    for c in d["candidates"]:
        assert set(c) == keys and c["status"] in STATUSES
    int8 = d["candidates"][1]
    assert int8["precision"] == "int8" and int8["error"]["tolerance"] == 5e-2
    lo, hi = int8["speedup_ci95"]
    assert lo <= int8["speedup"] <= hi
    assert d["candidates"][0]["prediction"]["basis"].startswith("estimator: target=eager")
    md = to_markdown(report)
    assert "| 2 | int8-dynamic | measured" in md and "heuristic: " in md


def test_bad_input_is_refused_clearly():
    model, inputs = _mlp()
    with pytest.raises(OptimizeError, match=r"unknown candidate 'compile-max'.*did you mean"):
        optimize(model, inputs, only=["compile-max"])
    with pytest.raises(OptimizeError, match="'eager' cannot be skipped"):
        optimize(model, inputs, skip=["eager"])
    with pytest.raises(OptimizeError, match="budget_s must be > 0"):
        optimize(model, inputs, budget_s=0)
    with pytest.raises(OptimizeError, match=r"tolerance int4=0\.1"):
        optimize(model, inputs, tolerances={"int4": 0.1})
    with pytest.raises(OptimizeError, match=r"fails in eager PyTorch.*mat1 and mat2"):
        optimize(model, (torch.randn(4, 31),))


# -- CLI ------------------------------------------------------------------------------------

FACTORY = '''
import torch
from torch import nn

def mlp(batch: int = 1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval(), \\
        (torch.randn(batch, 16),)
'''


def test_cli_json_report_file_and_store(tmp_path: Path):
    factory = tmp_path / "models.py"
    factory.write_text(FACTORY)
    db, md = tmp_path / "o.db", tmp_path / "report.md"
    result = CliRunner().invoke(app, [
        "optimize", f"{factory}:mlp", "--batch", "2", "--only", "int8-dynamic", "--budget",
        "2m", "--db", str(db), "--report", str(md), "--profile", "none", "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["model"] == "models:mlp" and d["run_id"]
    assert {c["name"]: c["status"] for c in d["candidates"]}["int8-dynamic"] == "measured"
    assert md.read_text().startswith("# perfcast optimize: models:mlp")
    with Store(db) as store:
        rows = store.results(d["run_id"])
    assert {r.params["batch"] for r in rows} == {2}


@pytest.mark.parametrize(("args", "message"), [
    (["examples:mlp", "--hardware", "h100"], "optimize measures candidates on this machine"),
    (["examples:mlp", "--budget", "soon"], "--budget: duration 'soon'"),
    (["examples:mlp", "--tolerance", "bf16=0.1"], "DTYPE=VALUE with DTYPE one of"),
    (["examples:nope"], "unknown example 'nope'"),
    (["examples:mlp", "--only", "turbo"], "unknown candidate 'turbo'"),
    (["examples:mlp", "--report", "out.txt"], "must end in .md or .json"),
])
def test_cli_bad_input_exit_code_2(tmp_path: Path, args: list[str], message: str):
    result = CliRunner().invoke(app, ["optimize", *args, "--db", str(tmp_path / "o.db"),
                                      "--profile", "none"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


# -- longer checks --------------------------------------------------------------------------


@pytest.mark.slow
def test_convmix_all_candidates():
    from perfcast.examples import build_example

    torch.manual_seed(0)
    model, inputs = build_example("convmix", batch=1, device="cpu")
    report = optimize(model, inputs, budget_s=300, max_timing_s=2.0,
                      skip=["compile-max-autotune"])
    by = {c.name: c for c in report.candidates}
    for name in ("compile", "onnxruntime", "channels-last"):
        assert by[name].status == "measured", by[name].reason
        assert by[name].error.max_rel < 1e-4
    assert by["fp16-autocast"].status == "skipped"


def test_theoretical_predictions_do_not_rank_or_skip():
    cands = [_fake("eager"), _fake("slow"), _fake("fast")]
    preds = {"eager": Prediction(1.0, 1.0, "est", "THEORETICAL"),
             "slow": Prediction(50.0, 0.02, "est", "THEORETICAL"),  # 50x off, as in issue 18
             "fast": Prediction(0.5, 2.0, "est", "THEORETICAL")}
    assert [c.name for c in rank(cands, preds)] == ["eager", "slow", "fast"]  # declared order
    assert promising(preds["slow"])


def test_table_and_verdict_share_one_eager_baseline():
    torch.manual_seed(0)
    cands = [EAGER, Candidate("sleep-3ms", "", lambda s: None, _sleeping(0.003)),
             Candidate("sleep-1ms", "", lambda s: None, _sleeping(0.001))]
    report = optimize(Sleepy().eval(), (torch.randn(2, 8),), candidates=cands, **FAST)
    eager_s = report.reference.median
    for c in report.candidates:
        if c.name != "eager" and c.comparison is not None:
            assert c.comparison.baseline_median == pytest.approx(eager_s)
            assert c.speedup == pytest.approx(eager_s / c.stats.median)
    assert f"({format_seconds(eager_s)} ->" in to_markdown(report)
