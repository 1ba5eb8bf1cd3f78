"""Per-row results of a reconciliation, their error statistics and reports."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfcast.validate.published import METRIC_LABELS, METRICS

STATUSES = ("ok", "skipped", "infeasible", "error")
SCHEMA_VERSION = 1


@dataclass
class RowResult:
    """Predicted vs measured metrics of one published row."""

    source: str
    row_id: str
    model: str
    hardware: str
    framework: str
    scenario: str | None
    precision: str | None
    parallelism: str
    isl: int | None
    osl: int | None
    concurrency: int | None
    status: str  # ok | skipped | infeasible | error
    reason: str | None
    measured: dict[str, float | None]
    predicted: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(METRICS))

    @property
    def ape(self) -> dict[str, float | None]:
        """|pred - meas| / meas per metric, for ``ok`` rows with a positive measurement."""
        out: dict[str, float | None] = dict.fromkeys(METRICS)
        if self.status != "ok":
            return out
        for m in METRICS:
            meas, pred = self.measured.get(m), self.predicted.get(m)
            if meas is not None and pred is not None and meas > 0 and math.isfinite(pred):
                out[m] = abs(pred - meas) / meas
        return out

    def to_dict(self) -> dict:
        return {"source": self.source, "row_id": self.row_id, "model": self.model,
                "hardware": self.hardware, "framework": self.framework,
                "scenario": self.scenario, "precision": self.precision,
                "parallelism": self.parallelism, "isl": self.isl, "osl": self.osl,
                "concurrency": self.concurrency, "status": self.status, "reason": self.reason,
                "measured": dict(self.measured), "predicted": dict(self.predicted),
                "ape": self.ape}


def _stats(rows: Sequence[RowResult]) -> dict[str, dict]:
    out = {}
    for m in METRICS:
        apes = [a for r in rows if (a := r.ape[m]) is not None]
        out[m] = {"count": len(apes),
                  "mape": float(np.mean(apes)) if apes else None,
                  "median_ape": float(np.median(apes)) if apes else None}
    return out


GROUPS = {"hardware": "by_hardware", "model": "by_model", "framework": "by_framework"}


@dataclass
class Reconciliation:
    """Per-row results and their error statistics."""

    rows: list[RowResult]

    @property
    def sources(self) -> list[str]:
        return sorted({r.source for r in self.rows})

    def subset(self, source: str) -> Reconciliation:
        return Reconciliation([r for r in self.rows if r.source == source])

    def counts(self) -> dict[str, int]:
        counts = Counter(r.status for r in self.rows)
        return {"rows": len(self.rows), **{s: counts.get(s, 0) for s in STATUSES}}

    def reasons(self, status: str = "skipped") -> dict[str, int]:
        """How many rows of ``status`` each reason accounts for, most frequent first."""
        counts = Counter(r.reason or "" for r in self.rows if r.status == status)
        return dict(counts.most_common())

    def summary(self) -> dict:
        """MAPE, median APE and count per metric: overall and per hardware/model/framework."""
        out: dict[str, Any] = {"overall": _stats(self.rows)}
        for attr, key in GROUPS.items():
            names = sorted({getattr(r, attr) for r in self.rows if r.status == "ok"})
            out[key] = {n: _stats([r for r in self.rows if getattr(r, attr) == n])
                        for n in names}
        return out

    def to_pandas(self) -> pd.DataFrame:
        records = []
        for r in self.rows:
            rec = {k: v for k, v in r.to_dict().items() if k not in ("measured", "predicted",
                                                                      "ape")}
            ape = r.ape
            for m in METRICS:
                rec[f"measured_{m}"] = r.measured.get(m)
                rec[f"predicted_{m}"] = r.predicted.get(m)
                rec[f"ape_{m}"] = ape[m]
            records.append(rec)
        return pd.DataFrame.from_records(records)

    def _part(self) -> dict:
        return {"counts": self.counts(), "skipped_by_reason": self.reasons("skipped"),
                "infeasible_by_reason": self.reasons("infeasible"),
                "error_by_reason": self.reasons("error"), "summary": self.summary()}

    def to_dict(self) -> dict:
        """A JSON-ready dict: counts, reasons, statistics (overall and per source), rows."""
        return {"schema_version": SCHEMA_VERSION, "metrics": list(METRICS),
                "ape": "|predicted - measured| / measured", "sources": self.sources,
                **self._part(),
                "by_source": {s: self.subset(s)._part() for s in self.sources},
                "rows": [_clean(r.to_dict()) for r in self.rows]}

    def to_markdown(self, include_rows: bool = True) -> str:
        """A Markdown report: per source, counts, skip reasons, MAPE tables and rows."""
        lines = ["# perfcast validate llm", "",
                 "APE = |predicted - measured| / measured; cells are MAPE / median APE (n).",
                 ""]
        for source in self.sources:
            part = self.subset(source)
            c = part.counts()
            lines += [f"## {source}", "",
                      f"{c['rows']} rows: {c['ok']} ok, {c['skipped']} skipped, "
                      f"{c['infeasible']} infeasible, {c['error']} error.", ""]
            for status in ("skipped", "infeasible", "error"):
                reasons = part.reasons(status)
                if reasons:
                    lines += [f"| {status} because | rows |", "|---|---:|"]
                    lines += [f"| {_md(k)} | {v} |" for k, v in reasons.items()]
                    lines.append("")
            summary = part.summary()
            lines += _md_table("overall", {"all": summary["overall"]})
            for attr, key in GROUPS.items():
                lines += _md_table(attr, summary[key])
            if include_rows:
                lines += _md_rows(part.rows)
        return "\n".join(lines).rstrip() + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _cell(stats: dict) -> str:
    if not stats["count"]:
        return "-"
    return f"{_pct(stats['mape'])} / {_pct(stats['median_ape'])} ({stats['count']})"


def _md_table(title: str, groups: dict[str, dict]) -> list[str]:
    if not groups:
        return []
    lines = [f"| {title} | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for name, stats in groups.items():
        lines.append(f"| {_md(name)} | " + " | ".join(_cell(stats[m]) for m in METRICS) + " |")
    return [*lines, ""]


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def _md_rows(rows: Sequence[RowResult]) -> list[str]:
    head = ["row", "model", "hardware", "framework", "scenario", "precision", "parallel",
            "isl/osl", "conc", "status"]
    for m in METRICS:
        head += [f"{METRIC_LABELS[m]} meas", "pred", "APE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.row_id, r.model, r.hardware, r.framework, r.scenario or "-",
                 r.precision or "-", r.parallelism or "-",
                 f"{r.isl}/{r.osl}" if r.isl else "-", str(r.concurrency or "-"),
                 r.status if r.status == "ok" else f"{r.status}: {r.reason}"]
        ape = r.ape
        for m in METRICS:
            cells += [_fmt(r.measured.get(m)), _fmt(r.predicted.get(m)), _pct(ape[m])]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return [*lines, ""]

