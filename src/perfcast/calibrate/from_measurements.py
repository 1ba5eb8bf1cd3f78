"""``perfcast calibrate --from-measurements DIR``: published kernel tables -> GPU profiles.

For each measured system that is in the catalog and each engine measured on it, every
(form, key) with enough rows is fitted on all its rows and written as one profile per
(GPU, engine) (:class:`~perfcast.estimate.gpu_profile.GpuProfile`), citing its tables.
NCCL tables are shared by the engines of a system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perfcast.calibrate.gpu_fit import (
    MIN_POINTS,
    Samples,
    fit_samples,
    merge,
    samples_from,
)
from perfcast.calibrate.measurements import (
    ReadReport,
    TableFile,
    by_system,
    discover,
    engine_tables,
    read_table,
    system_gpu,
)
from perfcast.estimate.gpu_profile import ENGINES, GpuProfile, device_figures, profile_filename
from perfcast.hardware import load_spec

PUBLISHED = ("ai-dynamo/aiconfigurator (Apache-2.0), commit "
             "095f58a51c4ca8e61b66ec108d86f223f8d559ce, path "
             "aic-core/src/aiconfigurator_core/systems/data/<system>/<op>/<framework>/<version>/")


@dataclass
class FitReport:
    profiles: list[GpuProfile] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    read: ReadReport = field(default_factory=ReadReport)


def engine_samples(tables: list[TableFile], report: ReadReport) -> tuple[list[Samples],
                                                                        dict[str, str]]:
    """Samples of ``tables`` merged per (form, key), and the version of each table."""
    samples: list[Samples] = []
    versions: dict[str, str] = {}
    for tf in tables:
        df = read_table(tf, report)
        samples.extend(samples_from(tf.table, df))
        versions[tf.table] = f"{tf.framework} {tf.version}"
    return merge(samples), versions


def fit_measurements(root: Path, out_dir: Path | None = None, *,
                     systems: list[str] | None = None, engines: list[str] | None = None,
                     source: str = PUBLISHED,
                     progress: Callable[[str], None] | None = None) -> FitReport:
    """Fit a profile per (GPU, engine) from the tables under ``root``; write them to
    ``out_dir`` when given."""
    report = FitReport()
    for system, files in by_system(discover(Path(root), report.read)).items():
        if systems and system not in systems:
            continue
        gpu, names = system_gpu(system, files)
        if gpu is None:
            report.read.skipped.append(f"{system}: GPU {', '.join(map(repr, names))} is not "
                                       "in the catalog (add a hardware YAML to fit it)")
            continue
        hw = load_spec(gpu)
        for engine in ENGINES:
            tables = engine_tables(files, engine)
            if not tables or (engines and engine not in engines):
                continue
            if progress:
                progress(f"{gpu}/{engine}: {len(tables)} tables")
            samples, versions = engine_samples(tables, report.read)
            fits = {}
            for s in samples:
                figures = device_figures(hw, s.form, s.key)
                if figures is None or len(s) < MIN_POINTS:
                    report.read.notes.append(f"{gpu}/{engine}: {s.form} {s.key} not fitted "
                                             f"({len(s)} rows; {hw.name} rates: "
                                             f"{', '.join(hw.compute)})")
                    continue
                fit = fit_samples(s, figures)
                fits[(fit.form, fit.key)] = fit
            paths = sorted(str(t.path.relative_to(root)) for t in tables)
            profile = GpuProfile(gpu, engine, versions,
                                 {"measurements": source, "tables": ", ".join(paths)}, fits)
            report.profiles.append(profile)
            if out_dir is not None:
                report.written.append(profile.save(Path(out_dir) / profile_filename(gpu, engine)))
    return report
