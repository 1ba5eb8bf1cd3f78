"""Results that cannot mislead: noisy or loaded timings are 'unstable', NaN checks fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perfcast.bench import runner as bench_runner
from perfcast.bench.suites._common import check_rel_error
from perfcast.cli.main import app
from perfcast.store import Store

DEMO = Path(__file__).parent / "data" / "bench_demo.py"
cli = CliRunner()


def _run(db: Path, *args: str) -> tuple[int, dict]:
    result = cli.invoke(app, ["bench", "run", *args, "--budget", "0.05", "--min-samples", "5",
                              "--json", "--db", str(db)])
    return result.exit_code, json.loads(result.stdout)


def test_loaded_machine_marks_results_unstable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench_runner, "machine_load", lambda: (6.0, 2))
    code, d = _run(tmp_path / "r.db", "demo:sum", "--path", str(DEMO), "--run-id", "loaded")
    assert code == 0
    assert {r["status"] for r in d["results"]} == {"unstable"}
    assert all("machine loaded: load average 6.00 on 2 core(s)" in r["error"]
               for r in d["results"])
    with Store(tmp_path / "r.db") as store:
        assert {r.status for r in store.results("loaded")} == {"unstable"}


def test_wide_ci_is_unstable_and_narrow_is_not() -> None:
    from types import SimpleNamespace

    from perfcast.bench.stats import StopRule

    rule = StopRule()
    wide = SimpleNamespace(ci95_s=(0.5e-3, 5.0e-3), median_s=1.45e-3)  # n=256 at +-216%
    assert "95% CI ±155%" in bench_runner.instability(wide, rule, 0.0, 2)
    narrow = SimpleNamespace(ci95_s=(0.99e-3, 1.01e-3), median_s=1e-3)
    assert bench_runner.instability(narrow, rule, 0.5, 2) is None


def test_elementwise_div_passes_its_check(tmp_path: Path) -> None:
    code, d = _run(tmp_path / "r.db", "micro:elementwise", "-p", "op=div",
                   "-p", "numel=65536")
    assert code == 0, d
    assert d["results"][0]["status"] in ("ok", "unstable")


def test_nan_in_a_check_fails_naming_the_case(tmp_path: Path, monkeypatch) -> None:
    import torch

    from perfcast.bench.suites.micro import Elementwise

    with pytest.raises(AssertionError, match="1 non-finite output value"):
        check_rel_error(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]), "float32")
    monkeypatch.setattr(Elementwise, "check", lambda self: check_rel_error(
        self.run() * float("nan"), self.reference(), self.dtype))
    code, d = _run(tmp_path / "r.db", "micro:elementwise", "-p", "op=div", "-p", "numel=65536")
    [failed] = d["results"]
    assert code == 1 and failed["status"] == "failed"
    assert failed["error"].startswith("micro:elementwise[") and "op=div" in failed["error"]
    assert "non-finite output value" in failed["error"]
