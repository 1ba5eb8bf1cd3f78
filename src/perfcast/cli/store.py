"""The ``--db`` option every store-backed command shares, and opening the store cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from perfcast.cli.errors import fail

DB_HELP = "Results database (SQLite file). Default: $PERFCAST_DB or .perfcast/perfcast.db."
DbOption = Annotated[Path | None, typer.Option("--db", help=DB_HELP)]


def open_store(db: Path | None) -> Any:
    """The results store at ``db`` (or the default), failing cleanly on a bad file."""
    from perfcast.store import Store, StoreError, default_db_path

    try:
        return Store(db or default_db_path())
    except StoreError as exc:
        fail(str(exc))
