"""Is a path a perfcast results database? Checked read-only before the store opens it."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from perfcast.store import migrations
from perfcast.store.errors import StoreError

APPLICATION_ID = 0x50464353  # b"PFCS"
_SQLITE_MAGIC = b"SQLite format 3\x00"
ELSEWHERE = "Pass --db or set PERFCAST_DB to another file."


def validate_file(path: Path) -> None:
    """Refuse any file that is not empty, missing or a healthy perfcast database; read only."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:  # too long a name, a NUL byte, no permission
        raise StoreError(f"cannot use {str(path)[:200]!r} as a database file "
                         f"({getattr(exc, 'strerror', None) or exc}). "
                         f"{ELSEWHERE}") from None
    if stat.S_ISDIR(mode):
        raise StoreError(f"{path} is a directory, not a database file. {ELSEWHERE}")
    if not stat.S_ISREG(mode):
        raise StoreError(f"{path} is not a regular file (a device, pipe or socket), so it "
                         f"cannot hold a database. {ELSEWHERE}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc}). {ELSEWHERE}") from exc
    if not head:
        return
    if head != _SQLITE_MAGIC:
        raise _not_sqlite(path, "file is not a database")
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        _validate_open(path, conn)
    except sqlite3.DatabaseError as exc:
        if "file is not a database" in str(exc):
            raise _not_sqlite(path, str(exc)) from exc
        kind = "cannot read" if isinstance(exc, sqlite3.OperationalError) else "damaged"
        raise StoreError(f"{path}: {kind} SQLite database ({exc}); perfcast left it untouched. "
                         f"{ELSEWHERE}") from exc
    finally:
        conn.close()


def _validate_open(path: Path, conn: sqlite3.Connection) -> None:
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == 0 and not tables and version == 0:
        return  # an empty SQLite file: perfcast may create its schema there
    if app_id != APPLICATION_ID:
        listed = ", ".join(tables) if tables else "none"
        raise StoreError(f"{path} is a SQLite database of another application "
                         f"(application_id={app_id:#x}, tables: {listed}); refusing to modify "
                         f"it. {ELSEWHERE}")
    check_not_newer(path, version)
    problems = [line for row in conn.execute("PRAGMA quick_check(5)")
                for line in row[0].splitlines() if not line.startswith("***")]
    if problems != ["ok"]:
        raise StoreError(f"{path}: SQLite quick_check failed ({'; '.join(problems)}); the "
                         f"database is damaged and perfcast left it untouched. {ELSEWHERE}")


def check_not_newer(path: Path, version: int) -> None:
    supported = migrations.latest_version()
    if version > supported:
        raise StoreError(f"{path} has schema version {version}, but this perfcast supports "
                         f"versions up to {supported}; upgrade perfcast to use it")


def _not_sqlite(path: Path, reason: str) -> StoreError:
    return StoreError(f"{path} is not a SQLite database ({reason}); perfcast left it untouched. "
                      f"{ELSEWHERE}")
