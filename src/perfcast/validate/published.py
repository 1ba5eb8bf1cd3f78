"""Published result tables: the bundled ones, reading a CSV, and detecting its format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).with_name("data")
BUNDLED = {"inferencemax": DATA_DIR / "inferencemax.csv",
           "mlperf": DATA_DIR / "mlperf_inference_v5.1_llm.csv"}

METRICS = ("throughput_per_gpu", "output_throughput_per_gpu", "tpot_s", "interactivity",
           "ttft_s")
METRIC_LABELS = {"throughput_per_gpu": "tput/GPU", "output_throughput_per_gpu": "out tput/GPU",
                 "tpot_s": "TPOT", "interactivity": "interactivity", "ttft_s": "TTFT"}

INFERENCEMAX_COLUMNS = ("hw", "model", "framework", "precision", "spec_decoding", "disagg",
                        "is_multinode", "isl", "osl", "conc", "tp", "ep", "dp_attention",
                        "tput_per_gpu", "output_tput_per_gpu", "mean_ttft", "mean_tpot",
                        "mean_intvty")
MLPERF_COLUMNS = ("ID", "Category", "Model", "Scenario", "Nodes", "Accelerator", "a#",
                  "Software", "weight_data_types", "Performance_Result", "Performance_Units")



class ValidationDataError(ValueError):
    """A published-results table that cannot be read or is of no known format."""


@dataclass(frozen=True)
class PublishedRow:
    """One row of a published table: its source format, an id, and the raw fields."""

    source: str  # "inferencemax" | "mlperf"
    row_id: str
    fields: dict[str, Any]


def resolve_data(data: str | Path) -> Path:
    """The path of a bundled table name (``inferencemax``, ``mlperf``) or of a CSV file."""
    if isinstance(data, str) and data.strip().lower() in BUNDLED:
        return BUNDLED[data.strip().lower()]
    path = Path(data).expanduser()
    if not path.exists():
        raise ValidationDataError(
            f"unknown data {str(data)!r}: neither a bundled table "
            f"({', '.join(BUNDLED)}) nor an existing file")
    if not path.is_file():
        raise ValidationDataError(f"cannot read {path}: not a file")
    return path


def load_rows(data: str | Path) -> list[PublishedRow]:
    """The rows of a bundled table or CSV file; the format is detected by its columns."""
    path = resolve_data(data)
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationDataError(f"cannot read {path}: {exc}") from None
    columns = set(frame.columns)
    if "tput_per_gpu" in columns:
        source, required = "inferencemax", INFERENCEMAX_COLUMNS
    elif "Performance_Result" in columns:
        source, required = "mlperf", MLPERF_COLUMNS
    else:
        shown = ", ".join(map(str, list(frame.columns)[:8])) or "none"
        raise ValidationDataError(
            f"{path} is neither an InferenceMAX table (it has no tput_per_gpu column) nor an "
            f"MLPerf Inference table (no Performance_Result column); its columns: {shown}")
    missing = [c for c in required if c not in columns]
    if missing:
        kind = "InferenceMAX" if source == "inferencemax" else "MLPerf Inference"
        raise ValidationDataError(f"{path}: {kind} table lacks columns: {', '.join(missing)}")
    rows = []
    for i, record in enumerate(frame.to_dict("records")):
        if source == "inferencemax":
            row_id = f"{path.stem}:{i + 1}"
        else:
            row_id = f"{record['ID']}/{record['Model']}/{record['Scenario']}"
        rows.append(PublishedRow(source, row_id, record))
    return rows

