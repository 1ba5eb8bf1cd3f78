"""Results database of the benchmark harness: one SQLite file (WAL) per project.

``Store()`` opens :func:`default_db_path` (``$PERFCAST_DB`` or ``./.perfcast/perfcast.db``);
files that are not perfcast databases are refused untouched with :class:`StoreError`.
"""

from __future__ import annotations

from perfcast.store.db import (
    APPLICATION_ID,
    FINISH_STATUSES,
    RESULT_STATUSES,
    RUN_STATUSES,
    Store,
    StoreError,
    canonical_params,
    default_db_path,
)
from perfcast.store.records import EnvironmentRow, PredictionRow, ProfileRow, ResultRow, RunRow

__all__ = [
    "APPLICATION_ID",
    "FINISH_STATUSES",
    "RESULT_STATUSES",
    "RUN_STATUSES",
    "EnvironmentRow",
    "PredictionRow",
    "ProfileRow",
    "ResultRow",
    "RunRow",
    "Store",
    "StoreError",
    "canonical_params",
    "default_db_path",
]
