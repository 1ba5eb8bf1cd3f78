"""Accuracy of the fitted GPU kernel forms on measurements they did not see.

- :func:`held_out_accuracy`: per (GPU, engine, form, key), fit on 70% of the shapes
  (chosen by a hash of the shape) and score the other 30%.
- :func:`transfer_accuracy`: predict a GPU's kernels from the other GPUs' profiles
  evaluated with its own datasheet figures (their fractions of peak carry over),
  averaged in log space with weights that favour GPUs of the same design
  (:func:`similarity`); no row of the predicted GPU is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from perfcast.calibrate.from_measurements import engine_samples
from perfcast.calibrate.gpu_fit import MIN_POINTS, Samples, fit_samples
from perfcast.calibrate.measurements import (
    ReadReport,
    by_system,
    discover,
    engine_tables,
    system_gpu,
)
from perfcast.estimate.gpu_profile import ENGINES, GpuProfile, device_figures
from perfcast.hardware import HardwareSpec, load_spec

COLUMNS = ["gpu", "engine", "form", "key", "fitted_on", "scored", "mape", "within_10",
           "median_ape"]


SIMILARITY_SCALE = 0.25  # a distance of 0.25 (about 28% apart in one figure) weighs 1/e


def similarity(a: HardwareSpec, b: HardwareSpec) -> float:
    """exp(-distance / 0.25), the distance being the L1 distance in log space between the
    datasheet figures that set a kernel's speed: bf16 peak per SM, SM count, bandwidth."""
    def figures(h: HardwareSpec) -> np.ndarray:
        return np.log([h.peak_flops("bf16") / (h.cores or 1), h.cores or 1, h.memory_bandwidth])
    return float(np.exp(-np.abs(figures(a) - figures(b)).sum() / SIMILARITY_SCALE))


def _score(gpu: str, engine: str, s: Samples, predicted: np.ndarray, fitted_on: int) -> dict:
    ape = np.abs(predicted / s.seconds - 1)
    return {"gpu": gpu, "engine": engine, "form": s.form, "key": s.key, "fitted_on": fitted_on,
            "scored": len(s), "mape": float(ape.mean()), "within_10": float((ape <= 0.1).mean()),
            "median_ape": float(np.median(ape))}


def held_out_accuracy(root: Path, systems: list[str] | None = None,
                      engines: tuple[str, ...] = ENGINES, share: float = 0.3) -> pd.DataFrame:
    """Held-out error of every fit (one row per GPU, engine, form, key)."""
    report = ReadReport()
    rows = []
    for system, files in by_system(discover(Path(root), report)).items():
        if systems and system not in systems:
            continue
        gpu = system_gpu(system, files)[0]
        if gpu is None:
            continue
        hw = load_spec(gpu)
        for engine in engines:
            tables = engine_tables(files, engine)
            if not tables:
                continue
            samples, _ = engine_samples(tables, report)
            for s in samples:
                figures = device_figures(hw, s.form, s.key)
                held = s.held_out(share)
                if figures is None or (~held).sum() < MIN_POINTS or not held.any():
                    continue
                fit = fit_samples(s.subset(~held), figures)
                test = s.subset(held)
                rows.append(_score(gpu, engine, test, np.asarray(fit.seconds(test.dims, figures)),
                                   int((~held).sum())))
    return pd.DataFrame(rows, columns=COLUMNS)


def transfer_accuracy(root: Path, target: str, profiles: list[GpuProfile],
                      engines: tuple[str, ...] = ENGINES) -> pd.DataFrame:
    """Error on ``target``'s (a system directory) kernels predicted from ``profiles`` of
    the other GPUs only."""
    report = ReadReport()
    files = by_system(discover(Path(root), report)).get(target, [])
    gpu = system_gpu(target, files)[0] if files else None
    if gpu is None:
        raise ValueError(f"{target}: no measurements, or its GPU is not in the catalog")
    hw = load_spec(gpu)
    rows = []
    for engine in engines:
        tables = engine_tables(files, engine)
        donors = [p for p in profiles if p.engine == engine and p.gpu != gpu]
        if not tables or not donors:
            continue
        samples, _ = engine_samples(tables, report)
        for s in samples:
            figures = device_figures(hw, s.form, s.key)
            pairs = [(f, similarity(hw, load_spec(p.gpu))) for p in donors
                     if (f := p.fit(s.form, s.key)) is not None]
            if figures is None or not pairs:
                continue
            weights = np.array([w for _, w in pairs]) / sum(w for _, w in pairs)
            logs = np.stack([np.log(np.asarray(f.seconds(s.dims, figures), dtype=float))
                             for f, _ in pairs])
            rows.append(_score(gpu, engine, s, np.exp(weights @ logs), len(pairs)))
    return pd.DataFrame(rows, columns=COLUMNS)


def summarize(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Row-weighted MAPE, share within 10% and the number of shapes scored, per group."""
    def agg(g: pd.DataFrame) -> pd.Series:
        w = g["scored"]
        return pd.Series({"shapes": int(w.sum()), "mape": float((g["mape"] * w).sum() / w.sum()),
                          "within_10": float((g["within_10"] * w).sum() / w.sum())})
    return frame.groupby(by).apply(agg, include_groups=False).reset_index()

