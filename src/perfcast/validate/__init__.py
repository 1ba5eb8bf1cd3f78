"""Reconcile perfcast's estimates with published measurements (``perfcast validate``)."""

from perfcast.validate.llm import (
    BUNDLED,
    METRICS,
    PublishedRow,
    Reconciliation,
    RowConfig,
    RowResult,
    ValidationDataError,
    load_rows,
    map_row,
    reconcile,
)

__all__ = [
    "BUNDLED",
    "METRICS",
    "PublishedRow",
    "Reconciliation",
    "RowConfig",
    "RowResult",
    "ValidationDataError",
    "load_rows",
    "map_row",
    "reconcile",
]
