"""End to end: LLM-serving estimates with measured GPU profiles vs the fitted efficiencies.

Rows: the held-out half of the bundled InferenceMAX table (the half that
benchmarks/fit_llm_efficiency.py never fitted on: odd hash of the row id) and the MLPerf
Inference v5.1 table (never fitted on). Each row is estimated twice: with the fitted
efficiencies (``--engine fitted``) and with the measured profile of the row's own engine
(``--engine row``: TensorRT-LLM, SGLang or vLLM; rows on GPUs without a profile, such as
AMD, are left out of the comparison). Prints median APE of throughput per GPU, TPOT and
TTFT per device and engine (MLPerf publishes output throughput only).

    python benchmarks/gpu_profiles_e2e.py
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import pandas as pd

from perfcast.estimate.gpu_profile import find_profile
from perfcast.validate.llm import BUNDLED, evaluate, load_rows, map_row, row_engine

METRICS = ("throughput_per_gpu", "output_throughput_per_gpu", "tpot_s", "ttft_s")


def rows():
    for source, path in BUNDLED.items():
        for r in load_rows(path):
            cfg = map_row(r)
            if cfg.skip:
                continue
            if source == "inferencemax" and zlib.crc32(cfg.row_id.encode()) % 2 == 0:
                continue  # the fit half of fit_llm_efficiency.py
            engine = row_engine(cfg.framework)
            if engine and find_profile(cfg.hardware, engine):
                yield source, cfg, engine


def main() -> None:
    start = time.perf_counter()
    records = []
    memo_fitted: dict = {}
    memo_row: dict = {}
    for source, cfg, engine in rows():
        for mode, memo in (("fitted", memo_fitted), ("profile", memo_row)):
            result = evaluate(cfg, None, memo, "fitted" if mode == "fitted" else engine)
            if result.status != "ok":
                continue
            for metric in METRICS:
                meas, pred = result.measured.get(metric), result.predicted.get(metric)
                if meas and pred and np.isfinite(pred):
                    records.append({"source": source, "hardware": cfg.hardware,
                                    "engine": engine, "mode": mode, "metric": metric,
                                    "ape": abs(pred / meas - 1), "row": cfg.row_id})
    frame = pd.DataFrame(records)
    print(f"{frame['row'].nunique()} rows in {time.perf_counter() - start:.0f} s\n")
    for source, part in frame.groupby("source"):
        table = part.pivot_table(index=["hardware", "engine"], columns=["metric", "mode"],
                                 values="ape", aggfunc="median")
        counts = part[part["mode"] == "profile"].groupby(["hardware", "engine"])["row"].nunique()
        table[("rows", "")] = counts
        print(f"## {source}: median APE\n")
        print((table.round(3)).to_string())
        overall = part.groupby(["metric", "mode"])["ape"].median().unstack()
        print(f"\nall {source} rows:\n{overall.round(3).to_string()}\n")


if __name__ == "__main__":
    main()
