"""Reconcile perfcast's LLM-serving estimates with published measurements.

``load_rows`` reads an InferenceMAX table (it has ``tput_per_gpu``) or an MLPerf Inference
results table (it has ``Performance_Result``); ``map_row`` turns each row into a perfcast
configuration or a reason to skip it; ``reconcile`` estimates every mapped row and reports
per row the predicted and measured throughput per GPU, output throughput per GPU, TPOT,
interactivity and TTFT with the absolute percentage error ``APE = |pred - meas| / meas``,
and per hardware, model and framework the mean (MAPE) and median APE. No row is dropped:
each is ``ok``, ``skipped`` (with the reason), ``infeasible`` (perfcast finds it does not
fit) or ``error`` (perfcast rejects the configuration, with its message).

InferenceMAX rows
-----------------
- Skipped: speculative decoding (``spec_decoding`` other than ``none``: MTP),
  disaggregated prefill/decode (``disagg``) and multi-node runs (``is_multinode``).
- Model: the checkpoint name (or its last path component) through the catalog's aliases;
  any other DeepSeek-R1 or gpt-oss-120b variant by name.
- Hardware: :data:`INFERENCEMAX_HARDWARE` (``b200-trt`` is a B200 run with TensorRT-LLM).
- Precision: :data:`INFERENCEMAX_PRECISION`, keyed by model, checkpoint precision and
  whether the device has an fp4 rate.
- Parallelism: ``tp``, ``ep`` and ``dp_attention`` of the row; the run uses ``tp`` GPUs.
- Workload: InferenceMAX draws each request's input and output length uniformly between
  0.8x and 1.0x of the nominal ``isl``/``osl``, so the mean lengths are 0.9x:
  ``isl = round(0.9 isl)``, ``osl = round(0.9 osl)``, ``concurrency = conc``, and the run
  sends 10 prompts per client (:data:`INFERENCEMAX_PROMPTS_PER_CLIENT`).
  Check against the data: per row, mean output tokens per request =
  ``output_tput_per_gpu x tp x mean_e2el / conc`` (Little's law). Over the 1,193
  non-disaggregated rows of the bundled table this is 0.880 x ``osl`` at the median (0.862
  to 0.901; the input side, with ``input_tput_per_gpu``, gives 0.880 x ``isl``, 0.864 to
  0.899), alike for every hardware and framework: the 0.9x mean of the length draw, less
  the ramp-up and drain of the run, when fewer than ``conc`` requests are in flight.
- Measured: ``tput_per_gpu``, ``output_tput_per_gpu``, ``mean_tpot``, ``mean_intvty``,
  ``mean_ttft``.

MLPerf Inference rows
---------------------
- ``Performance_Result`` counts generated (output) tokens per second: LoadGen sums the
  token counts that the system under test returns for its answers (mlcommons/inference,
  language/llama2-70b/README.md), and in NVIDIA's llama2-70b Offline result on 8 H100
  (31,306.8 tokens/s at 107.256 samples/s, as its detail log is recorded in
  FlashLab-MBZUAI/HBFSim validation/calibration/h100-llama2-70b-calibration-protocol.json)
  the ratio, 292 tokens per sample, is the benchmark's output length (294 in the reference
  run), not input plus output (222 + 294). It is compared with perfcast's
  ``output_throughput_per_gpu``; measured per accelerator = result / (Nodes x a#).
- Skipped: open division (the model may be modified), units other than tokens/s
  (SingleStream latency, queries/s), a missing, mixed or unknown accelerator, weight
  formats without a perfcast equivalent (:data:`MLPERF_PRECISION`), and benchmarks whose
  mean input or output length has no citable source (:data:`MLPERF_BENCHMARKS`; today
  only llama2-70b has both).
- Deployment: as a submitter would tune it, the tensor-parallel degree (1, 2, 4, ... up to
  the node's accelerators) and concurrency with the highest predicted output throughput
  per GPU; replicas fill the rest of the system (throughput per GPU does not depend on
  their number). Offline: the largest concurrency that fits in memory, at most 1024 per
  replica. Server / Interactive: powers of two up to that, whose predicted mean TTFT and
  TPOT meet the scenario's p99 bounds (loadgen/mlperf.conf); comparing means with p99
  bounds makes these predictions optimistic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).with_name("data")
BUNDLED = {"inferencemax": DATA_DIR / "inferencemax.csv",
           "mlperf": DATA_DIR / "mlperf_inference_v5.1_llm.csv"}

METRICS = ("throughput_per_gpu", "output_throughput_per_gpu", "tpot_s", "interactivity",
           "ttft_s")
METRIC_LABELS = {"throughput_per_gpu": "tput/GPU", "output_throughput_per_gpu": "out tput/GPU",
                 "tpot_s": "TPOT", "interactivity": "interactivity", "ttft_s": "TTFT"}
STATUSES = ("ok", "skipped", "infeasible", "error")
SCHEMA_VERSION = 1

INFERENCEMAX_COLUMNS = ("hw", "model", "framework", "precision", "spec_decoding", "disagg",
                        "is_multinode", "isl", "osl", "conc", "tp", "ep", "dp_attention",
                        "tput_per_gpu", "output_tput_per_gpu", "mean_ttft", "mean_tpot",
                        "mean_intvty")
MLPERF_COLUMNS = ("ID", "Category", "Model", "Scenario", "Nodes", "Accelerator", "a#",
                  "Software", "weight_data_types", "Performance_Result", "Performance_Units")

INFERENCEMAX_LENGTH_FACTOR = 0.9  # lengths drawn uniformly in [0.8, 1.0] x nominal
INFERENCEMAX_PROMPTS_PER_CLIENT = 10  # prompts per run = 10 x concurrency
INFERENCEMAX_MEASURED = {"throughput_per_gpu": "tput_per_gpu",
                         "output_throughput_per_gpu": "output_tput_per_gpu",
                         "tpot_s": "mean_tpot", "interactivity": "mean_intvty",
                         "ttft_s": "mean_ttft"}

INFERENCEMAX_HARDWARE = {"h100": "h100-sxm", "h200": "h200", "b200": "b200", "b200-trt": "b200",
                         "gb200": "gb200", "mi300x": "mi300x", "mi325x": "mi325x",
                         "mi355x": "mi355x"}

# How InferenceMAX's checkpoints run, by (catalog model, checkpoint precision, device has an
# fp4 rate). gpt-oss-120b "fp4" is its released checkpoint: MXFP4 expert weights, bf16
# attention, router, embeddings and KV cache; where the device has no fp4 rate (Hopper,
# MI300X/MI325X) the experts are dequantized into bf16 GEMMs, where it has one (B200, GB200,
# MI355X) they run with fp8 activations. DeepSeek-R1 fp8 is the released block-fp8
# checkpoint (fp8 GEMMs, bf16 KV cache); the fp4 checkpoints (NVIDIA FP4, AMD MXFP4) hold
# fp4 experts and fp8 dense weights, with fp4 activations and an fp8 KV cache.
INFERENCEMAX_PRECISION: dict[tuple[str, str, bool], str] = {
    ("gpt-oss-120b", "fp4", False): "weights=bf16,experts=fp4,activations=bf16,kv=bf16",
    ("gpt-oss-120b", "fp4", True): "weights=bf16,experts=fp4,activations=fp8,kv=bf16",
    ("deepseek-r1", "fp8", False): "weights=fp8,activations=fp8,kv=bf16",
    ("deepseek-r1", "fp8", True): "weights=fp8,activations=fp8,kv=bf16",
    ("deepseek-r1", "fp4", True): "weights=fp8,experts=fp4,activations=fp4,kv=fp8",
}

# MLPerf weight_data_types -> perfcast precision. fp8 submissions quantize the KV cache to
# fp8 too (e.g. NVIDIA's llama2-70b SUT configs declare an fp8 KV cache); fp4 (NVFP4 or
# MXFP4) runs fp4 GEMMs with an fp8 KV cache (the "fp4" preset).
MLPERF_PRECISION = {"fp8": "weights=fp8,activations=fp8,kv=fp8", "fp4": "fp4", "mxfp4": "fp4",
                    "nvfp4": "fp4", "bf16": "bf16", "fp16": "fp16"}
MLPERF_MAX_CONCURRENCY = 1024  # per replica
MLPERF_BOUNDS_SOURCE = ("mlcommons/inference loadgen/mlperf.conf: <benchmark>.Server."
                        "ttft_latency / tpot_latency (ms, 99th percentile), "
                        "https://github.com/mlcommons/inference/blob/master/loadgen/mlperf.conf")


@dataclass(frozen=True)
class MLPerfBenchmark:
    """One MLPerf LLM benchmark: its model, dataset lengths and latency bounds."""

    model: str  # catalog name
    dataset: str
    isl: float | None  # mean input tokens per sample (None: no citable figure)
    osl: float | None  # mean output tokens per sample (generated by the reference model)
    isl_source: str
    osl_source: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # (TTFT, TPOT) s


_NO_ISL = "no citable mean input length found"
MLPERF_BENCHMARKS: dict[str, MLPerfBenchmark] = {
    "llama2-70b": MLPerfBenchmark(
        "llama-2-70b", "OpenOrca (GPT-4 part, 24,576 samples)",
        isl=5_463_976 / 24_576,  # 222.3
        osl=294.45,
        isl_source=("sum of tok_input_length over MLCommons' "
                    "open_orca_gpt4_tokenized_llama.sampled_24576.pkl.gz, 5,463,976 tokens in "
                    "24,576 samples, as recorded with the file's digests in "
                    "github.com/FlashLab-MBZUAI/HBFSim validation/calibration/"
                    "h100-llama2-70b-calibration-protocol.json"),
        osl_source=("mlcommons/inference language/llama2-70b/README.md, accuracy target "
                    "'Tokens per sample: 294.45' (FP16 reference run)"),
        bounds={"Server": (2.0, 0.200), "Interactive": (0.450, 0.040)}),
    "llama3.1-8b": MLPerfBenchmark(
        "llama-3.1-8b", "CNN-DailyMail validation (13,368 samples)", isl=None, osl=None,
        isl_source=_NO_ISL,
        osl_source=("not found: the README's gen_len (8,167,644) counts characters of the "
                    "decoded summaries (language/llama3.1-8b/evaluation.py), not tokens"),
        bounds={"Server": (2.0, 0.100), "Interactive": (0.500, 0.030)}),
    "llama3.1-405b": MLPerfBenchmark(
        "llama-3.1-405b", "LongBench/RULER/GovReport mix (8,313 samples)", isl=None,
        osl=684.68, isl_source=_NO_ISL,
        osl_source=("mlcommons/inference language/llama3.1-405b/README.md, accuracy target "
                    "tokens_per_sample 684.68"),
        bounds={"Server": (6.0, 0.175), "Interactive": (4.5, 0.080)}),
    "mixtral-8x7b": MLPerfBenchmark(
        "mixtral-8x7b", "OpenOrca + GSM8K + MBXP (15,000 samples)", isl=None, osl=144.84,
        isl_source=_NO_ISL,
        osl_source=("mlcommons/inference language/mixtral-8x7b/README.md, tokens_per_sample "
                    "144.84"),
        bounds={"Server": (2.0, 0.200)}),
    "deepseek-r1": MLPerfBenchmark(
        "deepseek-r1", "AIME/MATH500/GPQA/MMLU-Pro/LiveCodeBench (4,388 samples)", isl=None,
        osl=4043.45, isl_source=_NO_ISL,
        osl_source=("mlcommons/inference language/deepseek-r1/README.md, reference "
                    "mean-output-tok-len 4043.45"),
        bounds={"Server": (2.0, 0.080), "Interactive": (1.5, 0.015)}),
}
MLPERF_MODELS = {"llama2-70b-99": "llama2-70b", "llama2-70b-99.9": "llama2-70b",
                 "llama3.1-8b": "llama3.1-8b", "llama3.1-8b-edge": "llama3.1-8b",
                 "llama3.1-405b": "llama3.1-405b", "mixtral-8x7b": "mixtral-8x7b",
                 "deepseek-r1": "deepseek-r1"}


class ValidationDataError(ValueError):
    """A published-results table that cannot be read or is of no known format."""


# ------------------------------------------------------------------------------ rows


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


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class RowConfig:
    """A published row as a perfcast configuration, or the reason it is skipped."""

    source: str
    row_id: str
    model: str  # catalog name when mapped, else the published name
    hardware: str
    framework: str
    scenario: str | None
    measured: dict[str, float | None]
    skip: str | None = None
    precision: str | None = None
    tp: int = 1
    ep: int = 1
    dp_attention: bool = False
    isl: int | None = None
    osl: int | None = None
    concurrency: int | None = None  # None: searched (MLPerf)
    requests: int | None = None
    gpus_per_node: int | None = None
    bounds: tuple[float, float] | None = None  # MLPerf Server/Interactive (TTFT, TPOT)

    @property
    def parallelism(self) -> str:
        if self.skip:
            return ""
        parts = [f"tp{self.tp}"] + ([f"ep{self.ep}"] if self.ep != 1 else [])
        return "-".join(parts + (["dp-attn"] if self.dp_attention else []))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None or number != int(number) else int(number)


def _flag(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return str(value).strip().lower() in ("true", "1", "yes")


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value).strip()


def _catalog_model(name: str) -> str | None:
    from perfcast.frontends.llm import load_model
    from perfcast.frontends.llm.errors import ModelConfigError

    base = name.rstrip("/").rsplit("/", 1)[-1]
    try:
        return load_model(base).name
    except ModelConfigError:
        pass
    lowered = base.lower()
    for pattern, model in ((r"deepseek-r1", "deepseek-r1"), (r"gpt-oss-120b", "gpt-oss-120b")):
        if re.search(pattern, lowered):
            return model
    return None


@cache
def _spec(name: str):
    from perfcast.hardware import load_spec

    return load_spec(name)


def _catalog_hardware(name: str) -> str | None:
    """The catalog name of a device name or alias (never a file or this machine), or None."""
    from perfcast.hardware.catalog import resolve_name

    if not name.strip() or any(c in name for c in "/\\"):
        return None
    return resolve_name(name)


def _has_fp4(hardware: str) -> bool:
    return _spec(hardware).supports("fp4")


def map_row(row: PublishedRow) -> RowConfig:
    """The perfcast configuration of a published row, or the reason it is skipped."""
    if row.source == "inferencemax":
        return _map_inferencemax(row)
    if row.source == "mlperf":
        return _map_mlperf(row)
    raise ValueError(f"unknown source {row.source!r}")


def _map_inferencemax(row: PublishedRow) -> RowConfig:
    f = row.fields
    hw_raw, model_raw = _text(f["hw"]), _text(f["model"])
    measured = {m: _number(f[col]) for m, col in INFERENCEMAX_MEASURED.items()}
    model = _catalog_model(model_raw) or model_raw
    hardware = INFERENCEMAX_HARDWARE.get(hw_raw.lower()) or _catalog_hardware(hw_raw) or hw_raw
    base = RowConfig(row.source, row.row_id, model, hardware, _text(f["framework"]), None,
                     measured)

    def skip(reason: str) -> RowConfig:
        return RowConfig(**{**base.__dict__, "skip": reason})

    spec = _text(f["spec_decoding"]).lower() or "none"
    if spec != "none":
        return skip(f"speculative decoding ({spec}) not modeled")
    if _flag(f["disagg"]):
        return skip("disaggregated prefill/decode not modeled")
    if _flag(f["is_multinode"]):
        return skip("multi-node deployment not modeled")
    if _catalog_model(model_raw) is None:
        return skip(f"model {model_raw!r} not in the catalog")
    if _catalog_hardware(hardware) is None:
        return skip(f"hardware {hw_raw!r} not in the catalog")
    checkpoint = _text(f["precision"]).lower()
    precision = INFERENCEMAX_PRECISION.get((model, checkpoint, _has_fp4(hardware)))
    if precision is None:
        fp4 = "with" if _has_fp4(hardware) else "without"
        return skip(f"no precision mapping for {model} {checkpoint} on a device {fp4} fp4")
    tp, ep = _int(f["tp"]), _int(f["ep"]) or 1
    isl, osl, conc = _int(f["isl"]), _int(f["osl"]), _int(f["conc"])
    if tp is None or isl is None or osl is None or conc is None:
        return skip("missing tp, isl, osl or conc")
    if measured["throughput_per_gpu"] is None:
        return skip("no measured throughput")
    return RowConfig(
        **{**base.__dict__, "precision": precision, "tp": tp, "ep": ep,
           "dp_attention": _flag(f["dp_attention"]),
           "isl": round(INFERENCEMAX_LENGTH_FACTOR * isl),
           "osl": round(INFERENCEMAX_LENGTH_FACTOR * osl), "concurrency": conc,
           "requests": INFERENCEMAX_PROMPTS_PER_CLIENT * conc})


_VENDOR_WORDS = re.compile(r"^(virtualized\s+)?(nvidia\s+|amd\s+instinct\s+|amd\s+|intel\s+)?",
                           re.IGNORECASE)


def mlperf_accelerator(name: str) -> str | None:
    """The catalog name of an MLPerf accelerator string (``NVIDIA H200-SXM-141GB``), or None."""
    found = _catalog_hardware(name)
    if found:
        return found
    stripped = _VENDOR_WORDS.sub("", name.strip())
    first = stripped.split()[0] if stripped.split() else ""
    candidate = re.sub(r"-\d+\s*GB$", "", first, flags=re.IGNORECASE)
    return _catalog_hardware(candidate) if candidate else None


def mlperf_framework(software: str) -> str:
    """A short serving-stack name from MLPerf's ``Software`` column."""
    lowered = software.lower()
    for key, name in (("llmboost", "llmboost"), ("tensorrt", "trt"), ("sglang", "sglang"),
                      ("vllm", "vllm"), ("pytorch", "pytorch")):
        if key in lowered:
            return name
    return lowered.split()[0].strip(",") if lowered.split() else "unknown"


def _map_mlperf(row: PublishedRow) -> RowConfig:
    f = row.fields
    bench_raw, scenario = _text(f["Model"]), _text(f["Scenario"])
    bench = MLPERF_MODELS.get(bench_raw.lower())
    spec = MLPERF_BENCHMARKS.get(bench) if bench else None
    accel = _text(f["Accelerator"])
    hardware = (mlperf_accelerator(accel) if accel and "," not in accel else None) or accel
    nodes, per_node = _int(f["Nodes"]), _int(f["a#"])
    result = _number(f["Performance_Result"])
    measured: dict[str, float | None] = dict.fromkeys(METRICS)
    if result is not None and nodes and per_node:
        measured["output_throughput_per_gpu"] = result / (nodes * per_node)
    base = RowConfig(row.source, row.row_id, spec.model if spec else bench_raw, hardware,
                     mlperf_framework(_text(f["Software"])), scenario, measured)

    def skip(reason: str) -> RowConfig:
        return RowConfig(**{**base.__dict__, "skip": reason})

    if _text(f["Category"]).lower() != "closed":
        return skip("open division (the model may be modified)")
    units = _text(f["Performance_Units"])
    if units.lower() != "tokens/s":
        return skip(f"result in {units or 'no units'}, not tokens/s")
    if scenario not in ("Offline", "Server", "Interactive"):
        return skip(f"scenario {scenario or 'none'} not modeled")
    if spec is None:
        return skip(f"benchmark {bench_raw!r} not mapped")
    unknown = [k for k, v in (("input", spec.isl), ("output", spec.osl)) if v is None]
    if unknown:
        return skip(f"{bench}: no citable mean {' or '.join(unknown)} length of its dataset")
    if not accel:
        return skip("accelerator not reported")
    if "," in accel or "(x" in accel:
        return skip("mixed accelerators")
    if mlperf_accelerator(accel) is None:
        return skip(f"accelerator {accel!r} not in the hardware catalog")
    if not nodes or not per_node or measured["output_throughput_per_gpu"] is None:
        return skip("missing Nodes, a# or Performance_Result")
    weights = _text(f["weight_data_types"]).lower()
    precision = MLPERF_PRECISION.get(weights)
    if precision is None:
        return skip(f"weight format {weights or 'unset'!r} not mapped")
    bounds = spec.bounds.get(scenario) if scenario != "Offline" else None
    if scenario != "Offline" and bounds is None:
        return skip(f"{bench}: no latency bounds for {scenario}")
    return RowConfig(**{**base.__dict__, "precision": precision,
                        "isl": round(spec.isl), "osl": round(spec.osl),
                        "gpus_per_node": per_node, "bounds": bounds})


# -------------------------------------------------------------------------- results


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


# ------------------------------------------------------------------------ reconcile


def _estimate(cfg: RowConfig, tp: int, concurrency: int, efficiency, requests: int | None = None):
    from perfcast.llm import estimate

    return estimate(cfg.model, _spec(cfg.hardware), tp=tp, ep=cfg.ep,
                    dp_attention=cfg.dp_attention, isl=cfg.isl, osl=cfg.osl,
                    concurrency=concurrency, precision=cfg.precision, requests=requests,
                    efficiency=efficiency)


def _predicted(est) -> dict[str, float | None]:
    return {m: float(np.asarray(getattr(est, m)).reshape(-1)[0]) for m in METRICS}


def _result(cfg: RowConfig, status: str, reason: str | None, *, tp: int | None = None,
            concurrency: int | None = None, predicted: dict | None = None) -> RowResult:
    tp = cfg.tp if tp is None else tp
    parallel = RowConfig(**{**cfg.__dict__, "tp": tp}).parallelism if not cfg.skip else ""
    return RowResult(cfg.source, cfg.row_id, cfg.model, cfg.hardware, cfg.framework,
                     cfg.scenario, cfg.precision, parallel, cfg.isl, cfg.osl,
                     concurrency if concurrency is not None else cfg.concurrency, status,
                     reason, dict(cfg.measured),
                     predicted if predicted is not None else dict.fromkeys(METRICS))


def evaluate(cfg: RowConfig, efficiency=None, memo: dict | None = None) -> RowResult:
    """Estimate one mapped row (skipped rows pass through); ``memo`` shares MLPerf
    deployment searches between rows of the same configuration."""
    if cfg.skip:
        return _result(cfg, "skipped", cfg.skip)
    try:
        if cfg.source == "mlperf":
            return _evaluate_mlperf(cfg, efficiency, {} if memo is None else memo)
        est = _estimate(cfg, cfg.tp, cfg.concurrency, efficiency, cfg.requests)
    except ValueError as exc:
        return _result(cfg, "error", str(exc))
    if not bool(np.all(est.feasible)):
        return _result(cfg, "infeasible", est.infeasible_reason(), predicted=_predicted(est))
    return _result(cfg, "ok", None, predicted=_predicted(est))


def _evaluate_mlperf(cfg: RowConfig, efficiency, memo: dict) -> RowResult:
    key = (cfg.model, cfg.hardware, cfg.precision, cfg.isl, cfg.osl, cfg.bounds,
           cfg.gpus_per_node or 1)
    if key not in memo:
        memo[key] = _mlperf_search(*key, efficiency)
    status, reason, tp, conc, predicted = memo[key]
    return _result(cfg, status, reason, tp=tp, concurrency=conc, predicted=dict(predicted))


def _tp_candidates(per_node: int) -> list[int]:
    return [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= per_node and per_node % t == 0]


def _mlperf_search(model: str, hardware: str, precision: str, isl: int, osl: int,
                   bounds: tuple[float, float] | None, per_node: int, efficiency):
    """The best (status, reason, tp, concurrency, predicted) over the node's TP degrees:
    Offline at the largest concurrency that fits (at most 1024 per replica), Server and
    Interactive at the largest power of two meeting the (TTFT, TPOT) bounds."""
    cfg = RowConfig("mlperf", "", model, hardware, "", None, {}, precision=precision,
                    isl=isl, osl=osl)
    best: tuple | None = None
    why = "no tensor-parallel degree fits"
    for tp in _tp_candidates(per_node):
        try:
            single = _estimate(cfg, tp, 1, efficiency)
        except ValueError as exc:
            why = str(exc)
            continue
        fits = int(min(float(np.min(single.max_concurrency)), MLPERF_MAX_CONCURRENCY))
        if fits < 1 or not bool(np.all(single.feasible)):
            why = single.infeasible_reason() or why
            continue
        powers = [c for c in (2 ** k for k in range(11)) if c <= fits]
        trials = [fits] if bounds is None else powers
        for c in trials:
            est = _estimate(cfg, tp, c, efficiency)
            p = _predicted(est)
            ok = bool(np.all(est.feasible)) and (
                bounds is None or (p["ttft_s"] <= bounds[0] and p["tpot_s"] <= bounds[1]))
            tput = p["output_throughput_per_gpu"]
            if ok and (best is None or tput > best[2]["output_throughput_per_gpu"]):
                best = (tp, c, p)
        if bounds is not None and best is None:
            p = _predicted(single)
            why = (f"no concurrency meets TTFT <= {bounds[0]:g} s and TPOT <= {bounds[1]:g} s "
                   f"(tp{tp}, concurrency 1: TTFT {p['ttft_s']:.3g} s, "
                   f"TPOT {p['tpot_s']:.3g} s)")
    if best is None:
        return "infeasible", why, None, None, dict.fromkeys(METRICS)
    tp, c, p = best
    return "ok", None, tp, c, p


def reconcile(rows: Iterable[PublishedRow], efficiency=None,
              hardware: Iterable[str] | None = None) -> Reconciliation:
    """Map and estimate every row; ``hardware`` (catalog names/aliases) keeps only rows on
    those devices; ``efficiency`` overrides :func:`default_efficiency`."""
    configs = [map_row(r) for r in rows]
    if hardware is not None:
        keep = {_spec(h).name for h in hardware}
        configs = [c for c in configs if c.hardware in keep]
    memo: dict = {}
    return Reconciliation([evaluate(c, efficiency, memo) for c in configs])
