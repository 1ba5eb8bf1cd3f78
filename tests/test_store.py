"""The results database: creation, round trips, migrations, refusal of foreign files, crashes."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perfcast.store import APPLICATION_ID, Store, StoreError, default_db_path, migrations
from perfcast.store.migrations import Migration

TABLES = {"environments", "runs", "results", "predictions", "calibration_profiles"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def table_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def make_store_with_rows(path: Path, n_results: int = 3) -> str:
    with Store(path) as store:
        env = store.environment_id("fp-1", "h100-sxm", {"gpu": "H100"})
        run_id = store.begin_run(command="perfcast bench", environment_id=env, git_commit="abc",
                                 run_id="r1")
        for i in range(n_results):
            store.add_result(run_id, target="matmul", params={"m": i}, status="ok",
                             median_s=0.001 * (i + 1), samples=[0.001 * j for j in range(200)])
        store.finish_run(run_id, "complete")
    return run_id


def test_fresh_db_has_wal_identity_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "perfcast.db"
    with Store(path) as store:
        assert store.path == path
        assert store.schema_version == migrations.latest_version() >= 1
        assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "application_id") == APPLICATION_ID
    assert pragma(path, "user_version") == migrations.latest_version()
    assert table_names(path) >= TABLES


def test_empty_file_gets_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Store(path) as store:
        assert store.runs() == []
    assert table_names(path) >= TABLES


def test_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        env = store.environment_id("fp-1", "h100-sxm", {"gpu": "H100", "driver": "550.54"})
        assert store.environment_id("fp-1", "h100-sxm", {"gpu": "H100"}) == env
        assert store.environment(env).data == {"gpu": "H100", "driver": "550.54"}
        assert store.environment(env).hardware_key == "h100-sxm"

        params = {"seq": 2048, "dtype": "bf16", "shape": [1, 2]}
        samples = [0.0101, 0.0102, 0.0099, 0.01005]
        old = store.begin_run(command="bench a", environment_id=env, git_commit="c1",
                              run_id="old-run", meta={"note": "first"})
        store.add_result(old, target="attn", params=params, status="ok", median_s=0.0101,
                         ci_low_s=0.0099, ci_high_s=0.0102, n=4, stats={"mad": 1e-4},
                         samples=samples, energy_j=3.5, extra={"tag": "x"})
        store.add_result(old, target="attn", params={"seq": 1}, status="failed", error="OOM")
        store.finish_run(old, "complete")
        new = store.begin_run(command="bench b", environment_id=env, git_commit="c2")
        store.add_result(new, target="attn", params=dict(reversed(params.items())), status="ok",
                         median_s=0.02, samples=[0.02])
        store.add_result(new, target="mlp", params={}, status="skipped")
        store.finish_run(new, "regression")

        first = store.results(old)[0]
        assert first.params == params
        assert first.samples == samples
        assert (first.median_s, first.ci_low_s, first.ci_high_s, first.n) == (
            0.0101, 0.0099, 0.0102, 4)
        assert (first.stats, first.extra, first.energy_j) == ({"mad": 1e-4}, {"tag": "x"}, 3.5)
        assert first.created_at.endswith("Z") and first.run_started_at is None
        assert store.results(old)[1].error == "OOM"
        assert [r.target for r in store.results(target="attn")] == ["attn"] * 3
        assert len(store.results(environment_id=env)) == 4

        history = store.history("attn", params, env)
        assert [(h.run_id, h.git_commit, h.median_s) for h in history] == [
            (old, "c1", 0.0101), (new, "c2", 0.02)]
        assert history[0].run_started_at == store.run(old).started_at

        runs = store.runs()
        assert [r.id for r in runs] == [new, old]
        assert store.latest_run() == runs[0]
        assert (runs[0].status, runs[0].n_results, runs[0].git_commit) == ("regression", 2, "c2")
        assert runs[1].meta == {"note": "first"} and runs[1].finished_at.endswith("Z")
        assert runs[1].host == socket.gethostname() and runs[1].pid == os.getpid()
        assert [r.id for r in store.runs(target="mlp")] == [new]
        assert [r.id for r in store.runs(status="complete")] == [old]
        assert len(store.runs(limit=1)) == 1

        store.add_prediction(target="attn", params=params, hardware="h100-sxm",
                             predicted_s=0.0095, measured_s=0.0101, confidence="high",
                             estimator_version="0.1", run_id=old, data={"bound": "memory"})
        store.add_prediction(target="mlp", params={}, hardware="a100", predicted_s=1.0)
        (pred,) = store.predictions(target="attn")
        assert (pred.params, pred.predicted_s, pred.measured_s, pred.run_id, pred.data) == (
            params, 0.0095, 0.0101, old, {"bound": "memory"})
        assert [p.target for p in store.predictions(hardware="a100")] == ["mlp"]

        assert store.profile("h100-sxm", "gemm") is None
        assert store.save_profile(hardware_key="h100-sxm", name="gemm", data={"eff": 0.7},
                                  environment_id=env) == 1
        assert store.save_profile(hardware_key="h100-sxm", name="gemm", data={"eff": 0.8}) == 2
        store.save_profile(hardware_key="a100", name="gemm", data={"eff": 0.6})
        latest = store.profile("h100-sxm", "gemm")
        assert (latest.version, latest.data) == (2, {"eff": 0.8})
        assert store.profile("h100-sxm", "gemm", version=1).environment_id == env
        assert [p.version for p in store.profiles("h100-sxm")] == [1, 2]
        assert len(store.profiles()) == 3


def test_generated_run_id_and_run_dir(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        run_id = store.begin_run(command="c", environment_id=None, git_commit=None)
        assert len(run_id) == len("20250101-120000-abcd") and run_id[8] == "-"
        folder = store.run_dir(run_id)
        assert folder == tmp_path / "runs" / run_id and not folder.exists()
        assert store.run_dir(run_id, create=True).is_dir()


def test_old_version_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.close()
    assert pragma(path, "user_version") == 0
    with Store(path) as store:
        assert store.schema_version == migrations.latest_version()
    assert table_names(path) >= TABLES


def test_each_migration_is_one_transaction(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.db"
    make_store_with_rows(path)
    base = migrations.latest_version()
    add_column = Migration(base + 1, "add runs.label", ("ALTER TABLE runs ADD COLUMN label TEXT",))
    broken = Migration(base + 2, "broken", ("CREATE TABLE half_done (x)", "NOT SQL"))
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, add_column, broken))
    with pytest.raises(StoreError, match=rf"migration {base + 2} \(broken\) failed.*"
                                         rf"stays at schema version {base + 1}"):
        Store(path)
    assert pragma(path, "user_version") == base + 1
    assert "half_done" not in table_names(path)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS[:-1],))
    with Store(path) as store:
        assert store.schema_version == base + 1
        assert store.run("r1").n_results == 3


def test_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    make_store_with_rows(path)
    newer = migrations.latest_version() + 5
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    before = sha256(path)
    with pytest.raises(StoreError, match=rf"schema version {newer}.*up to "
                                         rf"{migrations.latest_version()}.*upgrade perfcast"):
        Store(path)
    assert sha256(path) == before


@pytest.mark.parametrize("content", [os.urandom(8192), b"x", b"just some notes\n" * 40],
                         ids=["random-bytes", "one-byte-text", "text-file"])
def test_non_sqlite_file_is_refused_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "results.db"
    path.write_bytes(content)
    before = sha256(path)
    with pytest.raises(StoreError, match=r"is not a SQLite database \(file is not a database\); "
                                         r"perfcast left it untouched\. Pass --db or set "
                                         r"PERFCAST_DB"):
        Store(path)
    assert sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.db"]


def test_foreign_sqlite_db_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE foo (x INTEGER)")
        conn.execute("INSERT INTO foo VALUES (1)")
    conn.close()
    before = sha256(path)
    with pytest.raises(StoreError, match=r"another application \(application_id=0x0, "
                                         r"tables: foo\); refusing to modify it"):
        Store(path)
    assert sha256(path) == before
    assert pragma(path, "journal_mode") == "delete"


@pytest.mark.parametrize("where", ["middle-pages", "leaf-cell-pointers"])
def test_corrupted_perfcast_db_is_refused_untouched(tmp_path: Path, where: str) -> None:
    path = tmp_path / "p.db"
    make_store_with_rows(path, n_results=40)
    assert not (tmp_path / "p.db-wal").exists()  # checkpointed on close: rows are in the file
    size = pragma(path, "page_size")
    data = bytearray(path.read_bytes())
    assert len(data) >= 8 * size
    if where == "middle-pages":  # two whole pages of random bytes
        start = (len(data) // size // 2) * size
        data[start:start + 2 * size] = os.urandom(2 * size)
    else:  # cell pointers of the last table leaf page (type 0x0D) point out of the page
        start = max(i for i in range(size, len(data), size) if data[i] == 0x0D) + 8
        data[start:start + 4] = b"\xff" * 4
    path.write_bytes(bytes(data))
    before = sha256(path)
    # SQLite reports this either as quick_check rows or as "database disk image is malformed"
    with pytest.raises(StoreError, match=r"damaged.*perfcast left it untouched"):
        Store(path)
    assert sha256(path) == before


def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"is a directory"):
        Store(tmp_path)


KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    from perfcast.store import Store

    store = Store(sys.argv[1])
    run_id = store.begin_run(command="bench", environment_id=None, git_commit=None, run_id="k1")
    for i in range(3):
        store.add_result(run_id, target="t", params={"i": i}, status="ok", median_s=0.1 * (i + 1),
                         samples=[0.1, 0.2])
    with store.transaction():
        store.add_result(run_id, target="t", params={"i": 3}, status="ok", median_s=9.9)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_sigkill_mid_run_keeps_committed_results(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(path)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    with Store(path) as store:
        results = store.results("k1")
        assert [r.params for r in results] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert [r.samples for r in results] == [[0.1, 0.2]] * 3
        run = store.run("k1")
        assert run.status == "incomplete" and run.finished_at is None
        assert "interrupted_at" in run.meta
        with pytest.raises(StoreError, match=r"status 'incomplete', not 'running'"):
            store.add_result("k1", target="t", params={}, status="ok")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_reaping_own_pid_only_for_runs_this_process_did_not_begin(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Store(path) as first:
        live = first.begin_run(command="c", environment_id=None, git_commit=None, run_id="live")
        conn = sqlite3.connect(path)  # as if an earlier process with our pid died mid-run
        with conn:
            conn.execute(
                "INSERT INTO runs (id, started_at, status, command, host, pid)"
                " VALUES ('stale', '2020-01-01T00:00:00.000000Z', 'running', 'c', ?, ?)",
                (socket.gethostname(), os.getpid()))
        conn.close()
        with Store(path) as second:
            assert second.run("stale").status == "incomplete"
            assert second.run(live).status == "running"
            assert second.reap_interrupted() == []
        first.add_result(live, target="t", params={}, status="ok")


def test_bad_input_messages(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        with pytest.raises(StoreError, match=r"no run 'nope'.*the database has no runs yet"):
            store.run("nope")
        store.begin_run(command="c", environment_id=None, git_commit=None, run_id="bench-a100")
        store.begin_run(command="c", environment_id=None, git_commit=None, run_id="zzz")
        with pytest.raises(StoreError, match=r"no run 'bench-a10' in .*p\.db; closest: "
                                             r"bench-a100; latest: zzz"):
            store.run("bench-a10")
        with pytest.raises(StoreError, match=r"run id 'zzz' already exists \(started 20"):
            store.begin_run(command="c", environment_id=None, git_commit=None, run_id="zzz")
        store.finish_run("zzz", "complete")
        with pytest.raises(StoreError, match=r"run 'zzz' has status 'complete'"):
            store.add_result("zzz", target="t", params={}, status="ok")
        with pytest.raises(StoreError, match=r"run 'zzz' has status 'complete'"):
            store.finish_run("zzz", "failed")
        with pytest.raises(StoreError, match=r"invalid result status 'great'; expected one of"):
            store.add_result("bench-a100", target="t", params={}, status="great")
        with pytest.raises(StoreError, match=r"invalid run status for finish_run 'running'"):
            store.finish_run("bench-a100", "running")
        with pytest.raises(StoreError, match=r"params\['fn'\] = .* is not JSON-serializable"):
            store.add_result("bench-a100", target="t", params={"ok": 1, "fn": print},
                             status="ok")
        with pytest.raises(StoreError, match=r"samples\[1\] must be finite"):
            store.add_result("bench-a100", target="t", params={}, status="ok",
                             samples=[0.1, float("nan")])
        with pytest.raises(StoreError, match=r"no environment with id 42"):
            store.begin_run(command="c", environment_id=42, git_commit=None)
        assert store.results("bench-a100") == []


@pytest.mark.parametrize("bad", ["", "-lead", "a b", "../etc", "a/b", "x" * 65, "r\n"])
def test_invalid_run_id(tmp_path: Path, bad: str) -> None:
    with Store(tmp_path / "p.db") as store:
        with pytest.raises(StoreError, match=r"invalid run id .*1-64 characters"):
            store.begin_run(command="c", environment_id=None, git_commit=None, run_id=bad)
        with pytest.raises(StoreError, match=r"invalid run id"):
            store.run_dir(bad)
        assert store.runs() == []


def test_default_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFCAST_DB", raising=False)
    assert default_db_path() == tmp_path / ".perfcast" / "perfcast.db"
    target = tmp_path / "elsewhere" / "x.db"
    monkeypatch.setenv("PERFCAST_DB", str(target))
    assert default_db_path() == target
    with Store() as store:
        assert store.path == target
    assert target.is_file()


def test_transaction_groups_writes_and_nests_as_savepoints(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        run_id = store.begin_run(command="c", environment_id=None, git_commit=None, run_id="t1")
        with store.transaction():
            store.add_result(run_id, target="kept", params={}, status="ok")
            with pytest.raises(StoreError), store.transaction():
                store.add_result(run_id, target="inner", params={}, status="ok")
                store.add_result(run_id, target="bad", params={}, status="nope")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_result(run_id, target="outer", params={}, status="ok")
            raise RuntimeError("abort")
        assert [r.target for r in store.results(run_id)] == ["kept"]
