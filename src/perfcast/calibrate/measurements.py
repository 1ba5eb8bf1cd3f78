"""Read published per-kernel GPU measurements laid out as AIConfigurator publishes them.

Layout: ``<DIR>/<system>/<op>/<framework>/<version>/<table>.parquet`` with latency in
milliseconds per call (``../shared/data/kernel-measurements/README.md``). Any subset of
systems, ops and frameworks may be present; the newest version of each table is read.
Bad input never yields a silently partial profile: an unreadable table or one missing
required columns raises :class:`MeasurementError`; a system that is not in the catalog,
unknown extra columns and dropped rows are named in the :class:`ReadReport`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perfcast.hardware.catalog import resolve_name

# system directory -> catalog device
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200", "gb200": "gb200",
           "b300_sxm": "b300", "gb300": "gb300", "a100_sxm": "a100-sxm-80gb", "l40s": "l40s",
           "rtx_pro_6000_server": "rtx-pro-6000"}

_COMMON = ("device", "latency")
TABLES: dict[str, tuple[str, ...]] = {  # table -> required columns (beyond the common ones)
    "gemm_perf": ("gemm_dtype", "m", "n", "k"),
    "context_attention_perf": ("batch_size", "isl", "num_heads", "num_key_value_heads",
                               "head_dim", "attn_dtype", "kv_cache_dtype"),
    "generation_attention_perf": ("batch_size", "isl", "num_heads", "num_key_value_heads",
                                  "head_dim", "kv_cache_dtype", "step"),
    "moe_perf": ("moe_dtype", "num_tokens", "hidden_size", "inter_size", "topk",
                 "num_experts", "moe_tp_size", "moe_ep_size", "distribution"),
    "context_mla_perf": ("kv_cache_dtype", "num_heads", "batch_size", "isl", "tp_size"),
    "generation_mla_perf": ("kv_cache_dtype", "num_heads", "batch_size", "isl", "tp_size",
                            "step"),
    "nccl_perf": ("op_name", "nccl_dtype", "num_gpus", "message_size"),
    "custom_allreduce_perf": ("allreduce_dtype", "num_gpus", "message_size"),
}
DEFAULTS = {"window_size": 0}  # optional columns older releases lack: 0 = no sliding window
KNOWN_EXTRA = {"framework", "version", "op_name", "kernel_source", "beam_width", "step",
               "attn_dtype", "mla_dtype", "implementation", "window_size", "backend"}


class MeasurementError(ValueError):
    """A measurement table that cannot be used, with the file and the reason."""


@dataclass(frozen=True)
class TableFile:
    system: str
    op: str
    framework: str
    version: str
    table: str
    path: Path


@dataclass
class ReadReport:
    """What was read, skipped and dropped, by name."""

    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-_]|(?<=\d)(?=[a-z])",
                                                                 version) if p)


def discover(root: Path, report: ReadReport | None = None) -> list[TableFile]:
    """The newest version of every known table under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise MeasurementError(f"{root}: not a directory of measurements "
                               "(expected <system>/<op>/<framework>/<version>/<table>.parquet)")
    report = report if report is not None else ReadReport()
    newest: dict[tuple[str, str, str, str], TableFile] = {}
    for path in sorted(root.glob("*/*/*/*/*.parquet")):
        system, op, framework, version = path.relative_to(root).parts[:4]
        table = path.stem
        if table not in TABLES:
            report.skipped.append(f"{path.relative_to(root)}: unknown table {table!r} "
                                  f"(known: {', '.join(TABLES)})")
            continue
        tf = TableFile(system, op, framework, version, table, path)
        key = (system, op, framework, table)
        if key not in newest or _version_key(version) > _version_key(newest[key].version):
            newest[key] = tf
    if not newest:
        raise MeasurementError(f"{root}: no measurement tables found (expected "
                               "<system>/<op>/<framework>/<version>/<table>.parquet with "
                               f"tables {', '.join(TABLES)})")
    return list(newest.values())


def by_system(tables: list[TableFile]) -> dict[str, list[TableFile]]:
    """The tables of each measured system directory, systems in sorted order."""
    out: dict[str, list[TableFile]] = {}
    for tf in sorted(tables, key=lambda t: t.system):
        out.setdefault(tf.system, []).append(tf)
    return out


def engine_tables(files: list[TableFile], engine: str) -> list[TableFile]:
    """A system's tables for ``engine`` with its NCCL tables (none if the engine was not
    measured there)."""
    own = [t for t in files if t.framework == engine]
    return own + [t for t in files if t.framework == "nccl"] if own else []


def system_gpu(system: str, files: list[TableFile]) -> tuple[str | None, list[str]]:
    """The catalog name of a measured system (None if not in the catalog): by directory,
    else by the name the driver reported (read from the first table's ``device``
    column), and the driver's names read."""
    if system in SYSTEMS:
        return SYSTEMS[system], []
    try:
        names = sorted(set(pd.read_parquet(files[0].path, columns=["device"])["device"]
                           .astype(str)))
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise MeasurementError(f"{files[0].path}: cannot read its device column "
                               f"({exc})") from None
    return next((hit for n in names if (hit := resolve_name(n))), None), names


def read_table(tf: TableFile, report: ReadReport | None = None) -> pd.DataFrame:
    """Rows of one table with positive, finite latency (seconds in ``latency_s``)."""
    try:
        df = pd.read_parquet(tf.path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise MeasurementError(f"{tf.path}: not a readable Parquet table ({exc})") from None
    required = (*_COMMON, *TABLES[tf.table])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise MeasurementError(f"{tf.path}: missing columns {missing} (a {tf.table} table "
                               f"needs {', '.join(required)})")
    for column, value in DEFAULTS.items():
        if column not in df.columns and tf.op == "attention":
            df[column] = value
            if report is not None:
                report.notes.append(f"{tf.system}/{tf.framework}/{tf.table}: no {column} "
                                    f"column, taken as {value}")
    unknown = sorted(set(df.columns) - set(required) - KNOWN_EXTRA)
    if unknown and report is not None:
        report.notes.append(f"{tf.path.name} ({tf.system}/{tf.framework}): ignored unknown "
                            f"columns {unknown}")
    latency = pd.to_numeric(df["latency"], errors="coerce")
    good = np.isfinite(latency) & (latency > 0)
    if not good.all() and report is not None:
        report.notes.append(f"{tf.system}/{tf.framework}/{tf.table}: dropped "
                            f"{int((~good).sum())} rows without a positive latency")
    df = df[good].copy()
    df["latency_s"] = latency[good] * 1e-3
    return df
