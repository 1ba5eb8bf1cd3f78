"""Schema migrations of the results database, in order; each runs in one transaction.

``PRAGMA user_version`` holds the number of the last migration applied. A migration's
statements and the bump of ``user_version`` commit together, so an interrupted upgrade leaves
the file at the previous version.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """Schema step from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


# The results table as migration 1 created it (migration 2 rebuilds it with one more status).
_RESULTS_V1 = """CREATE TABLE results (
                id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                target TEXT NOT NULL,
                params TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
                median_s REAL,
                ci_low_s REAL,
                ci_high_s REAL,
                n INTEGER,
                stats TEXT,
                samples TEXT,
                error TEXT,
                energy_j REAL,
                extra TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL
            )"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="initial schema",
        statements=(
            """CREATE TABLE environments (
                id INTEGER PRIMARY KEY,
                fingerprint TEXT UNIQUE NOT NULL,
                hardware_key TEXT NOT NULL,
                data TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE runs (
                id TEXT PRIMARY KEY,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                status TEXT NOT NULL CHECK (status IN
                    ('running', 'complete', 'failed', 'regression', 'incomplete')),
                command TEXT NOT NULL,
                git_commit TEXT,
                environment_id INTEGER REFERENCES environments(id),
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                meta TEXT NOT NULL DEFAULT '{}'
            )""",
            "CREATE INDEX runs_started_at ON runs(started_at)",
            "CREATE INDEX runs_status ON runs(status)",
            _RESULTS_V1,
            "CREATE INDEX results_target ON results(target, params)",
            "CREATE INDEX results_run_id ON results(run_id)",
            """CREATE TABLE predictions (
                id INTEGER PRIMARY KEY,
                run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
                target TEXT NOT NULL,
                params TEXT NOT NULL,
                hardware TEXT NOT NULL,
                predicted_s REAL NOT NULL,
                measured_s REAL,
                confidence TEXT,
                estimator_version TEXT,
                data TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX predictions_target ON predictions(target, hardware)",
            """CREATE TABLE calibration_profiles (
                id INTEGER PRIMARY KEY,
                environment_id INTEGER REFERENCES environments(id),
                hardware_key TEXT NOT NULL,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                data TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (hardware_key, name, version)
            )""",
        ),
    ),
    Migration(
        version=2,
        description="result status 'unstable': timed, but too noisy or on a loaded machine",
        statements=(
            "ALTER TABLE results RENAME TO results_v1",
            "DROP INDEX results_target",
            "DROP INDEX results_run_id",
            _RESULTS_V1.replace("('ok', 'failed', 'skipped')",
                                "('ok', 'unstable', 'failed', 'skipped')"),
            "INSERT INTO results SELECT * FROM results_v1",
            "DROP TABLE results_v1",
            "CREATE INDEX results_target ON results(target, params)",
            "CREATE INDEX results_run_id ON results(run_id)",
        ),
    ),
)


def latest_version() -> int:
    """Schema version this perfcast writes: the number of the last migration."""
    return MIGRATIONS[-1].version if MIGRATIONS else 0


def pending(current: int) -> list[Migration]:
    """Migrations to apply, in order, to a file at ``current``; checks the list is contiguous."""
    for index, migration in enumerate(MIGRATIONS, start=1):
        if migration.version != index:
            raise ValueError(f"migration #{index} has version {migration.version}; "
                             f"versions must be 1, 2, 3, ... in order")
    return [m for m in MIGRATIONS if m.version > current]


def apply(conn: sqlite3.Connection, migration: Migration, application_id: int) -> bool:
    """Run ``migration`` and bump ``user_version`` in one transaction; False if already applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``). The version is re-read under
    the write lock, so two processes upgrading the same file at once apply each step once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current >= migration.version:
            conn.execute("COMMIT")
            return False
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {int(application_id)}")
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True
