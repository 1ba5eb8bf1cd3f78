"""The results database: one SQLite file in WAL mode, validated before anything is written.

Opening a file never modifies it unless it is empty, missing, or a perfcast database: the file
is first inspected over a read-only connection (SQLite header, ``application_id``,
``user_version``, ``PRAGMA quick_check``), and only then reopened for writing. Every write is
its own transaction, so a process killed mid-run leaves the committed results intact.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perfcast.store import migrations
from perfcast.store.errors import StoreError
from perfcast.store.files import APPLICATION_ID, ELSEWHERE, check_not_newer, validate_file
from perfcast.store.records import (
    EnvironmentRow,
    PredictionRow,
    ProfileRow,
    ResultRow,
    RunRow,
    prediction_row,
    profile_row,
    result_row,
    run_row,
)
from perfcast.store.values import (
    check_choice,
    check_run_id,
    check_text,
    json_object,
    now,
    opt_count,
    opt_float,
    samples_json,
    to_float,
)

RUN_STATUSES = ("running", "complete", "failed", "regression", "incomplete")
FINISH_STATUSES = ("complete", "failed", "regression")
RESULT_STATUSES = ("ok", "unstable", "failed", "skipped")  # unstable: timed, but noisy

# (resolved db path, run id) of runs begun by this process and not finished yet: a run whose
# pid equals ours but is not listed here was left by an earlier process that had the same pid.
_LIVE_RUNS: set[tuple[str, str]] = set()


def default_db_path() -> Path:
    """``$PERFCAST_DB`` if set, else ``./.perfcast/perfcast.db``."""
    env = os.environ.get("PERFCAST_DB")
    return Path(env).expanduser() if env else Path.cwd() / ".perfcast" / "perfcast.db"


def canonical_params(params: Mapping[str, Any]) -> str:
    """Params as canonical JSON (sorted keys, no spaces): the key results are matched by."""
    return json_object(params, "params")


class Store:
    """The perfcast results database at ``path`` (default: :func:`default_db_path`).

    Opening validates the file, enables WAL, applies pending migrations and reaps runs left
    ``running`` by dead processes (:meth:`reap_interrupted`). Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path).expanduser() if path is not None else default_db_path()
        validate_file(self._path)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {self._path} for writing ({exc}). {ELSEWHERE}") from exc
        self._key = str(self._path.resolve())
        try:
            self._configure()
            self._migrate()
            self.reap_interrupted()
        except sqlite3.Error as exc:  # read-only file or folder, locked, full disk
            self._conn.close()
            raise StoreError(f"cannot use {self._path} ({exc}). {ELSEWHERE}") from None
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; runs still ``running`` stay so until finished or reaped."""
        self._conn.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the file: the last migration applied."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def run_dir(self, run_id: str, *, create: bool = False) -> Path:
        """Artifact folder of a run: ``<db dir>/runs/<run-id>/``, made when ``create``."""
        check_run_id(run_id)
        folder = self._path.parent / "runs" / run_id
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction; nested use becomes a savepoint."""
        conn = self._conn
        if conn.in_transaction:
            conn.execute("SAVEPOINT perfcast_write")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK TO perfcast_write")
                conn.execute("RELEASE perfcast_write")
                raise
            conn.execute("RELEASE perfcast_write")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- environments ----------------------------------------------------------------------

    def environment_id(self, fingerprint: str, hardware_key: str, data: Mapping[str, Any]) -> int:
        """Id of the environment with ``fingerprint``, inserting it first if new."""
        check_text(fingerprint, "fingerprint")
        check_text(hardware_key, "hardware_key")
        data_json = json_object(data, "environment data")
        with self.transaction():
            self._conn.execute(
                "INSERT INTO environments (fingerprint, hardware_key, data, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                (fingerprint, hardware_key, data_json, now()))
            row = self._conn.execute("SELECT id FROM environments WHERE fingerprint = ?",
                                     (fingerprint,)).fetchone()
        return int(row[0])

    def environment(self, env_id: int) -> EnvironmentRow:
        """The environment with id ``env_id``."""
        row = self._conn.execute("SELECT * FROM environments WHERE id = ?", (env_id,)).fetchone()
        if row is None:
            raise StoreError(f"no environment with id {env_id!r} in {self._path}")
        return EnvironmentRow(id=row["id"], fingerprint=row["fingerprint"],
                              hardware_key=row["hardware_key"], data=json.loads(row["data"]),
                              created_at=row["created_at"])

    # -- runs ------------------------------------------------------------------------------

    def begin_run(self, *, command: str, environment_id: int | None, git_commit: str | None,
                  run_id: str | None = None, meta: Mapping[str, Any] | None = None) -> str:
        """Record a new ``running`` run of this host and pid; returns its id.

        Without ``run_id`` one is generated: ``YYYYMMDD-HHMMSS-xxxx`` (UTC, 4 random hex).
        """
        if not isinstance(command, str):
            raise StoreError(f"command must be a string, got {type(command).__name__}")
        if run_id is not None:
            check_run_id(run_id)
        meta_json = json_object(meta or {}, "meta")
        with self.transaction():
            if environment_id is not None:
                self.environment(environment_id)
            if run_id is None:
                run_id = self._fresh_run_id()
            else:
                self._check_run_id_free(run_id)
            self._conn.execute(
                "INSERT INTO runs (id, started_at, status, command, git_commit, environment_id,"
                " host, pid, meta) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (run_id, now(), command, git_commit, environment_id, socket.gethostname(),
                 os.getpid(), meta_json))
        _LIVE_RUNS.add((self._key, run_id))
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark a running run ``complete``, ``failed`` or ``regression`` and stamp finished_at."""
        check_choice(status, FINISH_STATUSES, "run status for finish_run")
        with self.transaction():
            self._require_running(run_id, "finish it")
            self._conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                               (status, now(), run_id))
        _LIVE_RUNS.discard((self._key, run_id))

    def reap_interrupted(self) -> list[str]:
        """Mark runs of this host whose process is gone as ``incomplete``; returns their ids.

        A run counts as interrupted when its pid no longer exists, or when its pid is this
        process's but no Store of this process began it (the pid was reused, e.g. in a
        container). A live pid reused by an unrelated process is not detected. finished_at
        stays NULL; ``meta["interrupted_at"]`` records when the interruption was noticed.
        """
        rows = self._conn.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?",
            (socket.gethostname(),)).fetchall()
        orphans = [row["id"] for row in rows if self._is_orphan(row["id"], row["pid"])]
        if orphans:
            with self.transaction():
                self._conn.executemany(
                    "UPDATE runs SET status = 'incomplete',"
                    " meta = json_set(meta, '$.interrupted_at', ?)"
                    " WHERE id = ? AND status = 'running'",
                    [(now(), run_id) for run_id in orphans])
        return orphans

    def runs(self, *, limit: int | None = 50, target: str | None = None,
             status: str | None = None) -> list[RunRow]:
        """Runs newest first, optionally only those with results for ``target`` or a status."""
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise StoreError(f"limit must be a positive integer or None, got {limit!r}")
        clauses: list[str] = []
        args: list[Any] = []
        if target is not None:
            clauses.append("EXISTS (SELECT 1 FROM results r WHERE r.run_id = runs.id"
                           " AND r.target = ?)")
            args.append(target)
        if status is not None:
            check_choice(status, RUN_STATUSES, "run status")
            clauses.append("status = ?")
            args.append(status)
        sql = ("SELECT runs.*, (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id)"
               " AS n_results FROM runs")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [run_row(row) for row in self._conn.execute(sql, args)]

    def run(self, run_id: str) -> RunRow:
        """The run ``run_id``; an unknown id names the closest existing ones."""
        row = self._conn.execute(
            "SELECT runs.*, (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id)"
            " AS n_results FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown_run(run_id)
        return run_row(row)

    def latest_run(self) -> RunRow | None:
        """The most recently started run, or None for an empty database."""
        rows = self.runs(limit=1)
        return rows[0] if rows else None

    # -- results ---------------------------------------------------------------------------

    def add_result(self, run_id: str, *, target: str, params: Mapping[str, Any], status: str,
                   median_s: float | None = None, ci_low_s: float | None = None,
                   ci_high_s: float | None = None, n: int | None = None,
                   stats: Mapping[str, Any] | None = None,
                   samples: Sequence[float] | None = None, error: str | None = None,
                   energy_j: float | None = None,
                   extra: Mapping[str, Any] | None = None) -> int:
        """Store one result of a running run (committed at once); returns its id."""
        check_text(target, "target")
        check_choice(status, RESULT_STATUSES, "result status")
        values = (
            target, canonical_params(params), status, opt_float(median_s, "median_s"),
            opt_float(ci_low_s, "ci_low_s"), opt_float(ci_high_s, "ci_high_s"), opt_count(n),
            None if stats is None else json_object(stats, "stats"), samples_json(samples),
            error, opt_float(energy_j, "energy_j"), json_object(extra or {}, "extra"),
        )
        with self.transaction():
            self._require_running(run_id, "add results to it")
            cursor = self._conn.execute(
                "INSERT INTO results (run_id, target, params, status, median_s, ci_low_s,"
                " ci_high_s, n, stats, samples, error, energy_j, extra, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, *values, now()))
        return int(cursor.lastrowid or 0)

    def results(self, run_id: str | None = None, *, target: str | None = None,
                environment_id: int | None = None) -> list[ResultRow]:
        """Results filtered by run, target and environment, oldest first."""
        clauses: list[str] = []
        args: list[Any] = []
        if run_id is not None:
            self.run(run_id)
            clauses.append("run_id = ?")
            args.append(run_id)
        if target is not None:
            clauses.append("target = ?")
            args.append(target)
        if environment_id is not None:
            clauses.append("run_id IN (SELECT id FROM runs WHERE environment_id = ?)")
            args.append(environment_id)
        sql = "SELECT * FROM results"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at, id"
        return [result_row(row) for row in self._conn.execute(sql, args)]

    def history(self, target: str, params: Mapping[str, Any],
                environment_id: int) -> list[ResultRow]:
        """``ok`` results of exactly (target, params) in one environment, oldest run first."""
        rows = self._conn.execute(
            "SELECT r.*, runs.started_at AS run_started_at, runs.git_commit AS git_commit"
            " FROM results r JOIN runs ON runs.id = r.run_id"
            " WHERE r.target = ? AND r.params = ? AND r.status = 'ok'"
            " AND runs.environment_id = ?"
            " ORDER BY runs.started_at, r.created_at, r.id",
            (target, canonical_params(params), environment_id))
        return [result_row(row, joined=True) for row in rows]

    # -- predictions -----------------------------------------------------------------------

    def add_prediction(self, *, target: str, params: Mapping[str, Any], hardware: str,
                       predicted_s: float, measured_s: float | None = None,
                       confidence: str | None = None, estimator_version: str | None = None,
                       run_id: str | None = None,
                       data: Mapping[str, Any] | None = None) -> int:
        """Store a predicted time (and the measured one if known); returns its id."""
        check_text(target, "target")
        check_text(hardware, "hardware")
        values = (
            target, canonical_params(params), hardware, to_float(predicted_s, "predicted_s"),
            opt_float(measured_s, "measured_s"), confidence, estimator_version,
            json_object(data or {}, "prediction data"),
        )
        with self.transaction():
            if run_id is not None:
                self.run(run_id)
            cursor = self._conn.execute(
                "INSERT INTO predictions (run_id, target, params, hardware, predicted_s,"
                " measured_s, confidence, estimator_version, data, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (run_id, *values, now()))
        return int(cursor.lastrowid or 0)

    def predictions(self, target: str | None = None,
                    hardware: str | None = None) -> list[PredictionRow]:
        """Predictions, optionally for one target and/or hardware, oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM predictions WHERE (?1 IS NULL OR target = ?1)"
            " AND (?2 IS NULL OR hardware = ?2) ORDER BY created_at, id", (target, hardware))
        return [prediction_row(row) for row in rows]

    # -- calibration profiles --------------------------------------------------------------

    def save_profile(self, *, hardware_key: str, name: str, data: Mapping[str, Any],
                     environment_id: int | None = None) -> int:
        """Save a new version of profile ``name`` for ``hardware_key``; returns the version."""
        check_text(hardware_key, "hardware_key")
        check_text(name, "profile name")
        data_json = json_object(data, "profile data")
        with self.transaction():
            if environment_id is not None:
                self.environment(environment_id)
            version = self._conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM calibration_profiles"
                " WHERE hardware_key = ? AND name = ?", (hardware_key, name)).fetchone()[0]
            self._conn.execute(
                "INSERT INTO calibration_profiles (environment_id, hardware_key, name, version,"
                " data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (environment_id, hardware_key, name, version, data_json, now()))
        return int(version)

    def profile(self, hardware_key: str, name: str,
                version: int | None = None) -> ProfileRow | None:
        """Version ``version`` (default: the latest) of a profile, or None if there is none."""
        row = self._conn.execute(
            "SELECT * FROM calibration_profiles WHERE hardware_key = ? AND name = ?"
            " AND (?3 IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
            (hardware_key, name, version)).fetchone()
        return None if row is None else profile_row(row)

    def profiles(self, hardware_key: str | None = None) -> list[ProfileRow]:
        """All profile versions, optionally of one hardware key, by key, name and version."""
        rows = self._conn.execute(
            "SELECT * FROM calibration_profiles WHERE (?1 IS NULL OR hardware_key = ?1)"
            " ORDER BY hardware_key, name, version", (hardware_key,))
        return [profile_row(row) for row in rows]

    # -- internals -------------------------------------------------------------------------

    def _configure(self) -> None:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self._path}: SQLite refused WAL journal mode (got {mode!r}); "
                             f"put the database on a local file system. {ELSEWHERE}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        current = self.schema_version
        check_not_newer(self._path, current)
        for migration in migrations.pending(current):
            try:
                migrations.apply(self._conn, migration, APPLICATION_ID)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self._path}: migration {migration.version} ({migration.description}) "
                    f"failed: {exc}; the file stays at schema version {self.schema_version}"
                ) from exc

    def _is_orphan(self, run_id: str, pid: int) -> bool:
        if pid == os.getpid():
            return (self._key, run_id) not in _LIVE_RUNS
        return not _pid_alive(pid)

    def _fresh_run_id(self) -> str:
        while True:
            run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            taken = self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            if taken is None:
                return run_id

    def _check_run_id_free(self, run_id: str) -> None:
        row = self._conn.execute("SELECT started_at FROM runs WHERE id = ?",
                                 (run_id,)).fetchone()
        if row is not None:
            raise StoreError(f"run id {run_id!r} already exists (started {row[0]}); "
                             f"choose another run id")

    def _require_running(self, run_id: str, action: str) -> None:
        row = self._conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown_run(run_id)
        if row[0] != "running":
            raise StoreError(f"run {run_id!r} has status {row[0]!r}, not 'running'; "
                             f"cannot {action}")

    def _unknown_run(self, run_id: str) -> StoreError:
        ids = [row[0] for row in
               self._conn.execute("SELECT id FROM runs ORDER BY started_at DESC, rowid DESC")]
        message = f"no run {run_id!r} in {self._path}"
        closest = difflib.get_close_matches(str(run_id), ids, n=3, cutoff=0.5)
        if closest:
            message += f"; closest: {', '.join(closest)}"
        message += f"; latest: {ids[0]}" if ids else "; the database has no runs yet"
        return StoreError(message)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
