"""Reports of a stored run as Markdown, JSON or CSV (``perfcast bench report RUN``)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from perfcast.bench.stats import format_seconds
from perfcast.store import Store
from perfcast.store.records import ResultRow

FORMATS = ("markdown", "json", "csv")
CSV_COLUMNS = ("target", "params", "status", "median_s", "ci_low_s", "ci_high_s", "n",
               "rel_ci", "gflops", "gbytes_per_s", "energy_j", "speedup", "verdict", "error")


def result_record(row: ResultRow) -> dict[str, Any]:
    """One stored result flattened for reports: timing, achieved rates, pair verdict."""
    work = row.extra.get("work") or {}
    comparison = row.extra.get("comparison") or {}
    median = row.median_s
    rel_ci = None
    if median and row.ci_low_s is not None and row.ci_high_s is not None:
        rel_ci = (row.ci_high_s - row.ci_low_s) / median
    return {"target": row.target, "params": row.params, "status": row.status,
            "median_s": median, "ci_low_s": row.ci_low_s, "ci_high_s": row.ci_high_s,
            "n": row.n, "rel_ci": rel_ci,
            "gflops": work.get("flops") / median / 1e9 if median and work.get("flops") else None,
            "gbytes_per_s": work.get("bytes") / median / 1e9
            if median and work.get("bytes") else None,
            "energy_j": row.energy_j,
            "speedup": 1.0 / comparison["ratio"] if comparison.get("ratio") else None,
            "verdict": comparison.get("verdict"), "error": row.error}


def run_document(store: Store, run_id: str) -> dict[str, Any]:
    """Run ``run_id`` as ``{"run", "environment", "results"}`` (the JSON report)."""
    run = store.run(run_id)
    records = [result_record(r) for r in store.results(run.id)]
    env = store.environment(run.environment_id).data if run.environment_id else {}
    return {"run": _run_dict(run), "environment": env, "results": records}


def render_run(store: Store, run_id: str, fmt: str = "markdown") -> str:
    """The report of run ``run_id`` in ``fmt`` (markdown, json or csv)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    doc = run_document(store, run_id)
    if fmt == "json":
        return json.dumps(doc, indent=2)
    run, env, records = store.run(run_id), doc["environment"], doc["results"]
    if fmt == "csv":
        return _csv(records)
    return _markdown(run, env, records)


def _run_dict(run: Any) -> dict[str, Any]:
    return {"run_id": run.id, "status": run.status, "started_at": run.started_at,
            "finished_at": run.finished_at, "command": run.command,
            "git_commit": run.git_commit, "host": run.host}


def _csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "params": json.dumps(record["params"], sort_keys=True)})
    return buffer.getvalue()


def _markdown(run: Any, env: dict[str, Any], records: list[dict[str, Any]]) -> str:
    hardware = env.get("hardware", {})
    software = env.get("software", {})
    settings = env.get("settings", {})
    lines = [f"# perfcast run {run.id}", "",
             f"- status: **{run.status}**, started {run.started_at}, finished "
             f"{run.finished_at or '-'}",
             f"- command: `{run.command}`",
             f"- commit: {run.git_commit or 'unknown'}",
             f"- hardware: {hardware.get('cpu_model', '?')}, "
             f"{hardware.get('logical_cpus', '?')} logical CPUs, GPUs: "
             f"{', '.join(g.get('name', '?') for g in hardware.get('gpus') or []) or 'none'}",
             f"- software: python {software.get('python', '?')}, torch "
             f"{software.get('torch', '?')}, perfcast {software.get('perfcast', '?')}",
             f"- threads: {settings.get('torch_threads', '?')}", "",
             "| target | params | status | median | 95% CI | n | GFLOP/s | GB/s | speedup |",
             "|---|---|---|---:|---|---:|---:|---:|---|"]
    for r in records:
        lines.append("| " + " | ".join(_markdown_cells(r)) + " |")
    failed = [r for r in records if r["status"] != "ok" and r["error"]]
    if failed:
        lines += ["", "## Not timed, or unstable", ""]
        lines += [f"- {r['target']} {_params(r['params'])}: "
                  + (r["error"] if r["error"].startswith(r["status"])
                     else f"{r['status']}: {r['error']}") for r in failed]
    return "\n".join(lines) + "\n"


def _markdown_cells(r: dict[str, Any]) -> list[str]:
    timed = r["median_s"] is not None
    ci = f"{format_seconds(r['ci_low_s'])} – {format_seconds(r['ci_high_s'])}" if timed else ""
    speedup = f"{r['speedup']:.2f}x ({r['verdict']})" if r["speedup"] else ""
    return [r["target"], _params(r["params"]), r["status"],
            format_seconds(r["median_s"]) if timed else "", ci, str(r["n"] or ""),
            f"{r['gflops']:.1f}" if r["gflops"] else "",
            f"{r['gbytes_per_s']:.1f}" if r["gbytes_per_s"] else "", speedup]


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
