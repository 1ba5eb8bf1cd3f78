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

from collections.abc import Iterable

import numpy as np

from perfcast.validate.mapping import (
    INFERENCEMAX_HARDWARE,
    INFERENCEMAX_PRECISION,
    MLPERF_BENCHMARKS,
    MLPERF_MAX_CONCURRENCY,
    MLPERF_PRECISION,
    RowConfig,
    map_row,
    mlperf_accelerator,
    mlperf_framework,
    spec_of,
)
from perfcast.validate.published import (
    BUNDLED,
    METRICS,
    PublishedRow,
    ValidationDataError,
    load_rows,
)
from perfcast.validate.report import GROUPS, Reconciliation, RowResult

__all__ = [
    "BUNDLED",
    "GROUPS",
    "INFERENCEMAX_HARDWARE",
    "INFERENCEMAX_PRECISION",
    "METRICS",
    "MLPERF_BENCHMARKS",
    "MLPERF_PRECISION",
    "PublishedRow",
    "Reconciliation",
    "RowConfig",
    "RowResult",
    "ValidationDataError",
    "evaluate",
    "load_rows",
    "map_row",
    "mlperf_accelerator",
    "mlperf_framework",
    "reconcile",
]


ROW_ENGINE = "row"  # time kernels with the measured profile of the row's own engine


def row_engine(framework: str) -> str | None:
    """The measured-profile engine of a published row's framework (None: no profile)."""
    name = framework.lower()
    for engine in ("trt", "sglang", "vllm"):
        if engine in name:
            return "trtllm" if engine == "trt" else engine
    return None


def _engine_for(cfg: RowConfig, engine: str | None) -> str | None:
    if engine == ROW_ENGINE:
        return row_engine(cfg.framework) or "fitted"
    return engine


def _estimate(cfg: RowConfig, tp: int, concurrency: int, efficiency, requests: int | None = None,
              engine: str | None = None):
    from perfcast.llm import estimate

    return estimate(cfg.model, spec_of(cfg.hardware), tp=tp, ep=cfg.ep,
                    dp_attention=cfg.dp_attention, isl=cfg.isl, osl=cfg.osl,
                    concurrency=concurrency, precision=cfg.precision, requests=requests,
                    efficiency=efficiency, engine=engine)


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


def evaluate(cfg: RowConfig, efficiency=None, memo: dict | None = None,
             engine: str | None = None) -> RowResult:
    """Estimate one mapped row (skipped rows pass through); ``memo`` shares MLPerf
    deployment searches between rows of the same configuration; ``engine``: as
    :func:`perfcast.llm.estimate`'s, or ``"row"`` for the row's own engine's profile."""
    if cfg.skip:
        return _result(cfg, "skipped", cfg.skip)
    engine = _engine_for(cfg, engine)
    try:
        if cfg.source == "mlperf":
            return _evaluate_mlperf(cfg, efficiency, {} if memo is None else memo, engine)
        est = _estimate(cfg, cfg.tp, cfg.concurrency, efficiency, cfg.requests, engine)
    except ValueError as exc:
        return _result(cfg, "error", str(exc))
    if not bool(np.all(est.feasible)):
        return _result(cfg, "infeasible", est.infeasible_reason(), predicted=_predicted(est))
    return _result(cfg, "ok", None, predicted=_predicted(est))


def _evaluate_mlperf(cfg: RowConfig, efficiency, memo: dict,
                     engine: str | None) -> RowResult:
    key = (cfg.model, cfg.hardware, cfg.precision, cfg.isl, cfg.osl, cfg.bounds,
           cfg.gpus_per_node or 1, engine)
    if key not in memo:
        memo[key] = _mlperf_search(*key, efficiency)
    status, reason, tp, conc, predicted = memo[key]
    return _result(cfg, status, reason, tp=tp, concurrency=conc, predicted=dict(predicted))


def _tp_candidates(per_node: int) -> list[int]:
    return [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= per_node and per_node % t == 0]


def _mlperf_search(model: str, hardware: str, precision: str, isl: int, osl: int,
                   bounds: tuple[float, float] | None, per_node: int, engine: str | None,
                   efficiency):
    """The best (status, reason, tp, concurrency, predicted) over the node's TP degrees:
    Offline at the largest concurrency that fits (at most 1024 per replica), Server and
    Interactive at the largest power of two meeting the (TTFT, TPOT) bounds."""
    cfg = RowConfig("mlperf", "", model, hardware, "", None, {}, precision=precision,
                    isl=isl, osl=osl)
    best: tuple | None = None
    why = "no tensor-parallel degree fits"
    for tp in _tp_candidates(per_node):
        try:
            single = _estimate(cfg, tp, 1, efficiency, engine=engine)
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
            est = _estimate(cfg, tp, c, efficiency, engine=engine)
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
              hardware: Iterable[str] | None = None,
              engine: str | None = None) -> Reconciliation:
    """Map and estimate every row; ``hardware`` (catalog names/aliases) keeps only rows on
    those devices; ``efficiency`` overrides :func:`default_efficiency`; ``engine``: see
    :func:`evaluate`."""
    configs = [map_row(r) for r in rows]
    if hardware is not None:
        keep = {spec_of(h).name for h in hardware}
        configs = [c for c in configs if c.hardware in keep]
    memo: dict = {}
    return Reconciliation([evaluate(c, efficiency, memo, engine) for c in configs])
