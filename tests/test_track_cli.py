"""``perfcast track`` on histories planted through the Store API: exit codes, JSON, plots,
environments kept apart, accuracy series, --since, thresholds files and bad input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from perfcast.bench.runner import ExitCode
from perfcast.cli.main import app
from perfcast.store import Store
from perfcast.track import ThresholdBook, ThresholdError, Thresholds

runner = CliRunner(env={"COLUMNS": "220"})
TARGET = "demo:sum"
PARAMS = {"n": 100}


def plant(db: Path, levels: Sequence[float], *, fingerprint: str = "fp-a", seed: int = 0,
          target: str = TARGET, noise: float = 0.02, prefix: str = "r") -> list[str]:
    """One run per level: 30 samples around ``level * 1 ms`` with run-to-run noise."""
    rng = np.random.default_rng(seed)
    ids = []
    with Store(db) as store:
        env = store.environment_id(fingerprint, f"cpu-{fingerprint}", {"fp": fingerprint})
        for i, level in enumerate(levels):
            run_id = store.begin_run(command="perfcast bench run", environment_id=env,
                                     git_commit=f"{prefix}commit{i:03d}",
                                     run_id=f"{prefix}{i:03d}-{fingerprint}")
            centre = 1e-3 * level * np.exp(rng.normal(0.0, noise))
            samples = centre * np.exp(rng.normal(0.0, 0.01, 30))
            lo, hi = np.quantile(samples, [0.1, 0.9])
            store.add_result(run_id, target=target, params=PARAMS, status="ok",
                             median_s=float(np.median(samples)), ci_low_s=float(lo),
                             ci_high_s=float(hi), n=30, samples=samples.tolist())
            store.finish_run(run_id, "complete")
            ids.append(run_id)
    return ids


def track(db: Path, *args: str) -> tuple[int, dict | str]:
    result = runner.invoke(app, ["track", *args, "--db", str(db)])
    if "--json" in args and result.stdout.strip():
        return result.exit_code, json.loads(result.stdout)
    return result.exit_code, result.output


def test_planted_20_percent_slowdown_fails_moderate(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    ids = plant(db, [1.0] * 20 + [1.2] * 8)
    code, doc = track(db, "--fail-on", "moderate", "--json")
    assert code == ExitCode.REGRESSION == 3
    assert doc["exit_code"] == 3
    (series,) = doc["series"]
    assert series["target"] == TARGET and series["params"] == PARAMS
    assert series["n_points"] == 28
    (change,) = series["changes"]
    assert change["index"] == 20 and change["confirmed"]
    assert change["run_id"] == ids[20] and change["git_commit"] == "rcommit020"
    assert change["previous_run_id"] == ids[19]
    assert change["direction"] == "regression" and change["severity"] == "moderate"
    assert change["change"] == pytest.approx(0.20, abs=0.03)
    assert change["change_ci95"][0] < change["change"] < change["change_ci95"][1]
    assert change["before"] == pytest.approx(1e-3, rel=0.03)
    assert change["p_value"] < 0.001
    assert doc["summary"]["regressions"] == {"minor": 0, "moderate": 1, "severe": 0}
    # The same history passes a gate on severe regressions only, and without a gate.
    assert track(db, "--fail-on", "severe")[0] == ExitCode.OK
    code, text = track(db)
    assert code == ExitCode.OK
    assert "regression moderate" in text and "rcommit020" in text


def test_improvement_does_not_fail(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0] * 15 + [0.7] * 10)
    code, doc = track(db, "--fail-on", "minor", "--json")
    assert code == ExitCode.OK
    (change,) = doc["series"][0]["changes"]
    assert change["direction"] == "improvement" and change["severity"] == "severe"


def test_empty_history_is_no_data(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    code, text = track(db, "--fail-on", "moderate")
    assert code == ExitCode.NOTHING_RAN == 4
    assert "no data" in text
    code, doc = track(db, "--json")
    assert code == 4 and doc["series"] == [] and doc["exit_code"] == 4
    plant(db, [1.0] * 10)
    code, text = track(db, "micro:*")
    assert code == 4 and "no history for micro:*" in text


def test_environments_are_kept_apart(tmp_path: Path) -> None:
    """15 runs on machine A at 1 ms, then 15 on machine B at 1.3 ms: mixed, that would be a
    30% step; kept apart, it is two flat series."""
    db = tmp_path / "p.db"
    plant(db, [1.0] * 15, fingerprint="fp-a", seed=1)
    plant(db, [1.3] * 15, fingerprint="fp-b", seed=2)
    code, doc = track(db, "--fail-on", "minor", "--json")
    assert code == ExitCode.OK
    assert len(doc["series"]) == 2
    assert {s["n_points"] for s in doc["series"]} == {15}
    assert len({s["environment_id"] for s in doc["series"]}) == 2
    assert all(s["changes"] == [] for s in doc["series"])
    # A real slowdown on one machine is still found, on that machine only.
    plant(db, [1.3] * 6, fingerprint="fp-a", seed=3, prefix="late")
    code, doc = track(db, "--fail-on", "moderate", "--json")
    assert code == ExitCode.REGRESSION
    changed = [s for s in doc["series"] if s["changes"]]
    assert len(changed) == 1 and "fp-a" in changed[0]["environment"]
    assert changed[0]["changes"][0]["index"] == 15


def test_newest_runs_only_are_unconfirmed(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0] * 20 + [1.3] * 2)
    code, doc = track(db, "--fail-on", "moderate", "--json")
    assert code == ExitCode.REGRESSION
    (change,) = doc["series"][0]["changes"]
    assert change["index"] == 20 and change["confirmed"] is False
    assert track(db, "--fail-on", "moderate", "--confirmed-only")[0] == ExitCode.OK


def test_since_limits_the_reported_changes(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    ids = plant(db, [1.0] * 20 + [1.2] * 8)
    assert track(db, "--fail-on", "moderate", "--since", ids[18])[0] == ExitCode.REGRESSION
    assert track(db, "--fail-on", "moderate", "--since", ids[20])[0] == ExitCode.REGRESSION
    code, doc = track(db, "--fail-on", "moderate", "--since", ids[22], "--json")
    assert code == ExitCode.OK and doc["series"][0]["changes"] == []
    assert track(db, "--fail-on", "moderate", "--since", "2000-01-01")[0] == 3
    assert track(db, "--fail-on", "moderate", "--since", "7d")[0] == 3
    code, text = track(db, "--since", "2999-01-01")
    assert code == ExitCode.NOTHING_RAN and "since 2999-01-01" in text


def test_accuracy_series_from_predictions(tmp_path: Path) -> None:
    """An estimator change that worsens the error from 5% to 20% is caught like a slowdown."""
    db = tmp_path / "p.db"
    rng = np.random.default_rng(4)
    with Store(db) as store:
        for i in range(20):
            error = (0.05 if i < 12 else 0.20) + rng.normal(0.0, 0.005)
            store.add_prediction(target="validate:mlp", params={"batch": 1}, hardware="local",
                                 predicted_s=1e-2 * (1 + error), measured_s=1e-2,
                                 estimator_version=f"0.{i}")
        store.add_prediction(target="validate:mlp", params={"batch": 1}, hardware="local",
                             predicted_s=1.0)  # no measurement: not an accuracy point
    code, doc = track(db, "--kind", "accuracy", "--fail-on", "moderate", "--json")
    assert code == ExitCode.REGRESSION
    (series,) = doc["series"]
    assert series["kind"] == "accuracy" and series["unit"] == "APE" and series["n_points"] == 20
    (change,) = series["changes"]
    assert change["index"] == 12 and change["estimator_version"] == "0.12"
    assert change["change"] == pytest.approx(0.15, abs=0.01)  # percentage points of APE
    assert change["severity"] == "severe"
    assert track(db, "--kind", "time")[0] == ExitCode.NOTHING_RAN


def test_thresholds_file_rules_by_pattern(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0] * 20 + [1.2] * 8)
    lenient = tmp_path / "t.yaml"
    lenient.write_text("rules:\n  - {pattern: 'demo:*', moderate: 0.3, severe: 0.5}\n")
    code, doc = track(db, "--thresholds", str(lenient), "--fail-on", "moderate", "--json")
    assert code == ExitCode.OK
    assert doc["series"][0]["changes"][0]["severity"] == "minor"
    assert doc["series"][0]["thresholds"]["moderate"] == 0.3
    other = tmp_path / "t.toml"
    other.write_text('[[rules]]\npattern = "micro:*"\nmoderate = 0.3\nsevere = 0.5\n')
    assert track(db, "--thresholds", str(other), "--fail-on", "moderate")[0] == 3
    assert track(db, "--severe", "0.15", "--fail-on", "severe")[0] == 3
    assert track(db, "--minor", "0.3", "--moderate", "0.4", "--severe", "0.5",
                 "--fail-on", "minor")[0] == ExitCode.OK


def test_plots_one_png_per_series(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0] * 20 + [1.2] * 8, fingerprint="fp-a")
    plant(db, [1.0] * 10, fingerprint="fp-b")
    code, doc = track(db, "--plot-dir", str(tmp_path / "plots"), "--json")
    assert code == ExitCode.OK
    paths = [Path(s["plot"]) for s in doc["series"]]
    assert len(set(paths)) == 2
    for path in paths:
        assert path.parent == tmp_path / "plots"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday-ish"], "is not a date"),
    (["--thresholds", "missing.yaml"], "cannot read thresholds file"),
    (["--minor", "0.2", "--moderate", "0.1"], "minor <= moderate <= severe"),
    (["--fail-on", "catastrophic"], "catastrophic"),
])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0] * 8)
    code, text = track(db, *args)
    assert code == ExitCode.BAD_INPUT == 2
    assert message in " ".join(text.split())


def test_foreign_database_exits_2(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("not a database")
    code, text = track(db)
    assert code == 2 and "not a SQLite database" in text


def test_short_history_is_reported_not_judged(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    plant(db, [1.0, 1.0, 2.0])
    code, text = track(db, "--fail-on", "minor")
    assert code == ExitCode.OK
    assert "too short" in text


# -- thresholds (library) ----------------------------------------------------------------------


def test_threshold_book_rules_and_errors() -> None:
    book = ThresholdBook.from_dict({
        "time": {"minor": 0.04},
        "rules": [{"pattern": "micro:gemm*", "moderate": 0.2, "severe": 0.4},
                  {"pattern": "micro:*", "minor": 0.08},
                  {"pattern": "validate:*", "kind": "accuracy", "severe": 0.3}]})
    assert book.for_series("time", "micro:gemm-skinny") == Thresholds(0.04, 0.2, 0.4)
    assert book.for_series("time", "micro:softmax") == Thresholds(0.08, 0.10, 0.25)
    assert book.for_series("time", "pairs:mlp") == Thresholds(0.04, 0.10, 0.25)
    assert book.for_series("accuracy", "validate:gpt2") == Thresholds(0.02, 0.05, 0.3)
    assert book.for_series("accuracy", "micro:softmax") == Thresholds(0.02, 0.05, 0.10)
    assert Thresholds(0.05, 0.1, 0.25).classify(0.049) is None
    assert [Thresholds(0.05, 0.1, 0.25).classify(v) for v in (0.05, 0.1, 0.3)] == [
        "minor", "moderate", "severe"]
    for bad, message in [({"time": {"minr": 0.1}}, "unknown key"),
                         ({"rules": [{"minor": 0.1}]}, "needs a non-empty string 'pattern'"),
                         ({"rules": [{"pattern": "x", "kind": "energy"}]}, "kind must be"),
                         ({"rules": [{"pattern": "x", "minor": 0.5}]}, "minor <= moderate"),
                         ({"time": {"minor": "5%"}}, "finite number"),
                         ({"limits": {}}, "unknown key")]:
        with pytest.raises(ThresholdError, match=message):
            ThresholdBook.from_dict(bad)
