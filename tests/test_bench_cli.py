"""perfcast bench list/run/compare/report/runs: JSON schema, store, expectations, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from perfcast.bench.timer import cuda_available
from perfcast.cli.main import app
from perfcast.store import Store

DEMO = Path(__file__).parent / "data" / "bench_demo.py"
QUICK = ["--budget", "0.05", "--min-samples", "5"]
runner = CliRunner()
TIMED = ("ok", "unstable")  # a timed result; "unstable" on a loaded or noisy machine


def bench(*args: str, db: Path) -> tuple[int, str]:
    extra = ["--path", str(DEMO)] if args[0] == "run" else []
    result = runner.invoke(app, ["bench", *args, *extra, "--db", str(db)])
    return result.exit_code, result.output


def run_json(db: Path, *args: str) -> tuple[int, dict]:
    code, out = bench("run", *args, *QUICK, "--json", db=db)
    return code, json.loads(out)


def test_list_shows_builtin_and_user_targets() -> None:
    result = runner.invoke(app, ["bench", "list", "--path", str(DEMO), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["target"]: r for r in json.loads(result.output)}
    assert rows["demo:sum"]["kind"] == "single" and rows["demo:sum"]["cases"] == 2
    assert rows["demo:total"]["kind"] == "pair"
    assert {"micro:gemm", "micro-cuda:gemm", "workloads:eager", "pairs:attention"} <= set(rows)


def test_run_json_schema_and_store(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    code, d = run_json(db, "demo:sum", "--run-id", "first")
    assert code == 0
    assert d["run_id"] == "first"
    assert [r["params"] for r in d["results"]] == [{"n": 100}, {"n": 1000}]
    for r in d["results"]:
        assert {"target", "params", "median_s", "ci95_s", "n"} <= set(r)
        assert r["target"] == "demo:sum" and r["n"] >= 5
        assert r["ci95_s"][0] <= r["median_s"] <= r["ci95_s"][1]
    with Store(db) as store:
        run = store.run("first")
        rows = store.results("first")
        assert run.status == "complete" and run.environment_id is not None
        assert len(rows[0].samples) == rows[0].n
        assert rows[1].extra["work"] == {"flops": 1000, "bytes": 8000}
        run_dir = store.run_dir("first")
    assert {"log.txt", "report.md", "results.json"} <= {p.name for p in run_dir.iterdir()}


def test_pair_expectations_recorded_met_and_missed(tmp_path: Path) -> None:
    db, exp = tmp_path / "r.db", tmp_path / "exp"
    code, d = run_json(db, "demo:total", "--update-expectations", "--expectations", str(exp))
    assert code == 0 and d["pairs"][0]["expectation"] == "updated"
    [book] = list(exp.glob("*.yaml"))
    data = yaml.safe_load(book.read_text())
    entry = data["expectations"]["demo:total[n=2000]"]
    assert entry["min_speedup"] > 1.0 and "in run" in entry["measured"]
    # A builtin sum is several times faster than a Python loop; 1.2x is met on any load.
    data["expectations"]["demo:total[n=2000]"] = {"min_speedup": 1.2}
    book.write_text(yaml.safe_dump(data))
    code, d = run_json(db, "demo:total", "--expectations", str(exp))
    assert code == 0 and d["pairs"][0]["expectation"] == "met", d["pairs"]
    roles = [r["role"] for r in d["results"]]
    assert roles == ["baseline", "optimized"]
    data = yaml.safe_load(book.read_text())
    data["expectations"]["demo:total[n=2000]"] = {"min_speedup": 50.0}
    book.write_text(yaml.safe_dump(data))
    before = book.read_text()
    code, d = run_json(db, "demo:total", "--expectations", str(exp))
    assert code == 3 and d["pairs"][0]["expectation"] == "missed"
    assert "below the expected 50.00x" in d["pairs"][0]["message"]
    assert book.read_text() == before  # never rewritten without --update-expectations
    with Store(db) as store:
        assert store.latest_run().status == "regression"


def test_failing_check_is_reported_not_timed(tmp_path: Path) -> None:
    code, d = run_json(tmp_path / "r.db", "demo:broken-check", "demo:sum", "-p", "n=100")
    assert code == 1
    by_target = {r["target"]: r for r in d["results"]}
    broken = by_target["demo:broken-check"]
    assert broken["status"] == "failed" and broken["n"] == 0 and broken["median_s"] is None
    assert "check failed: AssertionError: expected 42, got 41" in broken["error"]
    assert by_target["demo:sum"]["status"] in TIMED  # timed, whatever the machine's load


@pytest.mark.skipif(cuda_available(), reason="checks the no-CUDA path")
def test_nothing_ran_exit_code(tmp_path: Path) -> None:
    code, d = run_json(tmp_path / "r.db", "demo:needs-cuda")
    assert code == 4
    assert d["results"][0]["status"] == "skipped"
    assert "CUDA" in d["results"][0]["error"]


@pytest.mark.parametrize(("args", "message"), [
    (["demo:sun"], "unknown benchmark target 'demo:sun'; closest: demo:sum"),
    (["demo:sum", "-p", "n=7"], "parameter n='7' is not in the grid; allowed values: 100, 1000"),
    (["demo:sum", "-p", "size=7"], "parameter 'size' is not used by the selected targets"),
    (["demo:sum", "-p", "n"], "--param 'n' is not KEY=VALUE"),
    (["demo:sum", "--profile", "vtune"], "unknown profiler 'vtune'"),
    (["demo:sum", "--run-id", "../escape"], "run id"),
])
def test_bad_input_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, out = bench("run", *args, *QUICK, db=tmp_path / "r.db")
    assert code == 2, out
    assert message in " ".join(out.split())


def test_duplicate_run_id_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert run_json(db, "demo:sum", "--run-id", "same")[0] == 0
    code, out = bench("run", "demo:sum", "--run-id", "same", *QUICK, db=db)
    assert code == 2 and "already exists" in out


@pytest.mark.parametrize("content", [b"\x00garbage" * 100, b"just some notes\n"])
def test_corrupt_or_foreign_database_is_not_touched(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(content)
    code, out = bench("run", "demo:sum", *QUICK, db=db)
    assert code == 2 and "not a SQLite database" in out
    assert db.read_bytes() == content


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    code, out = bench("report", db=db)
    assert code == 2 and "another application" in out
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_compare_two_runs(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    for run_id in ("a", "b"):
        assert run_json(db, "demo:sum", "--run-id", run_id)[0] == 0
    code, out = bench("compare", "a", "b", "--json", db=db)
    assert code in (0, 3), out
    d = json.loads(out)
    assert d["run_a"] == "a" and d["run_b"] == "b" and len(d["results"]) == 2
    for r in d["results"]:
        assert r["verdict"] in {"faster", "slower", "same", "too noisy"}
        assert r["ratio_ci95"][0] <= r["ratio"] <= r["ratio_ci95"][1]
        assert r["ratio"] == pytest.approx(r["median_b_s"] / r["median_a_s"])
    code, out = bench("compare", "a", "nope", db=db)
    assert code == 2 and "no run 'nope'" in out


def test_compare_without_common_targets(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert run_json(db, "demo:sum", "-p", "n=100", "--run-id", "a")[0] == 0
    assert run_json(db, "demo:sum", "-p", "n=1000", "--run-id", "b")[0] == 0
    code, out = bench("compare", "a", "b", "--json", db=db)
    assert code == 4
    assert json.loads(out)["only_in_a"] == ["demo:sum[n=100]"]


def test_report_formats(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert run_json(db, "demo:sum", "demo:total", "--run-id", "rep")[0] == 0
    code, md = bench("report", "rep", db=db)
    assert code == 0 and md.startswith("# perfcast run rep")
    assert "| demo:sum | n=100 | ok |" in md and "demo:total@optimized" in md
    code, js = bench("report", "latest", "--format", "json", db=db)
    assert code == 0 and json.loads(js)["run"]["run_id"] == "rep"
    code, csv_text = bench("report", "rep", "-f", "csv", db=db)
    lines = csv_text.strip().splitlines()
    assert code == 0 and lines[0].startswith("target,params,status,median_s") and len(lines) == 5
    code, out = bench("report", "rep", "-f", "xml", db=db)
    assert code == 2 and "unknown report format 'xml'" in out


def test_external_profiler_missing_is_explained(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out = bench("run", "demo:sum", "--profile", "nsys", *QUICK, db=tmp_path / "r.db")
    assert code == 2 and "nsys" in out and "not installed" in out


def test_torch_profile_writes_trace(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    code, d = run_json(db, "micro:gemm", "-p", "n=128", "-p", "dtype=float32",
                       "--profile", "torch", "--run-id", "prof")
    assert code == 0, d
    with Store(db) as store:
        [row] = store.results("prof")
        trace = Path(row.extra["profile"]["trace"])
    assert json.loads(trace.read_text())["traceEvents"]
    assert any("mm" in r["name"] for r in row.extra["profile"]["top"])


def test_sigkill_mid_run_keeps_finished_results(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    assert run_json(db, "demo:sum", "--run-id", "before")[0] == 0
    cmd = [sys.executable, "-m", "perfcast.cli", "bench", "run", "slow:sleep", "--path",
           str(DEMO), "--db", str(db), "--run-id", "killed", "--budget", "0.3",
           "--min-samples", "5", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    done = 0
    while done < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                done = conn.execute("SELECT count(*) FROM results WHERE run_id='killed'"
                                    ).fetchone()[0]
        except sqlite3.OperationalError:
            pass
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        killed = store.run("killed")
        assert killed.status == "incomplete"
        kept = store.results("killed")
        assert 2 <= len(kept) < 8 and all(r.status in TIMED and r.samples for r in kept)
        assert [r.params["ms"] for r in kept] == list(range(1, len(kept) + 1))
        assert len(store.results("before")) == 2 and store.run("before").status == "complete"
    code, out = bench("runs", "--json", db=db)
    assert code == 0
    assert {r["id"]: r["status"] for r in json.loads(out)}["killed"] == "incomplete"
