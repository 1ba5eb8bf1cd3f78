"""GPU kernel profiles: fitted latency forms per (GPU, engine), stored as JSON data.

A profile holds one :class:`KernelFit` per (form, key): the key is the measured dtype
(``bfloat16``, ``fp8``, ``nvfp4`` ...), for MoE the dtype and the token distribution
(``fp8|balanced``), for collectives the op and implementation (``all_reduce|nccl``).
Profiles the package ships sit in ``gpu_profiles/`` (fitted by ``perfcast calibrate
--from-measurements`` from published measurements; each cites its tables).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from perfcast.estimate.config_curves import ConfigCurves
from perfcast.estimate.correction_grid import CorrectionGrid
from perfcast.estimate.efficiency import Confidence
from perfcast.estimate.gpu_forms import FORMS, DeviceFigures
from perfcast.hardware import HardwareSpec, load_spec
from perfcast.ir.tensor import Dim

FORMAT_VERSION = 1
SHIPPED = Path(__file__).with_name("gpu_profiles")
USER_DIR = Path(".perfcast") / "gpu_profiles"  # where calibrate --from-measurements writes
ENGINES = ("trtllm", "sglang", "vllm")
NEAR = np.log(2.0)  # up to 2x beyond the measured range: INTERPOLATED

# measured dtype name -> (perfcast compute dtype, bytes per weight element)
DTYPES: dict[str, tuple[str, float]] = {
    "bfloat16": ("bf16", 2), "float16": ("fp16", 2), "fp8": ("fp8", 1), "fp8_block": ("fp8", 1),
    "nvfp4": ("fp4", 0.5), "w4a16_mxfp4": ("bf16", 0.5), "w4a8_mxfp4_mxfp8": ("fp8", 0.5),
    "int8_wo": ("bf16", 1), "int4_wo": ("bf16", 0.5), "sq": ("int8", 1),
}


class ProfileError(ValueError):
    """A profile file that cannot be read."""


def figures_for(hw: HardwareSpec, compute_dtype: str | None) -> DeviceFigures:
    """The datasheet figures of ``hw`` a form needs (peak at ``compute_dtype``)."""
    flops = hw.peak_flops(compute_dtype) if compute_dtype else 0.0
    link = hw.scale_up or hw.pcie
    return DeviceFigures(flops=flops, bandwidth=hw.memory_bandwidth, sms=int(hw.cores or 1),
                         link_bandwidth=link.bandwidth_bytes_per_s_per_direction if link
                         else hw.memory_bandwidth)


def device_figures(hw: HardwareSpec, form: str, key: str) -> DeviceFigures | None:
    """The figures a fit of ``form``/``key`` is relative to on ``hw``; None if ``hw`` lacks
    the dtype's rate or the dtype is unknown (fp4 uses the fp8 rate on GPUs without an fp4
    rate). Fitting and timing both use this rule."""
    if form == "collective":
        return figures_for(hw, None)
    dtype = key.split("|", 1)[0]
    if dtype not in DTYPES:
        return None
    compute = DTYPES[dtype][0]
    if not hw.supports(compute):
        compute = "fp8" if compute == "fp4" and hw.supports("fp8") else ""
        if not compute:
            return None
    return figures_for(hw, compute)


def element_bytes(form: str, key: str) -> float:
    """Bytes per weight element of a fit's measured dtype (collectives: bf16 payload)."""
    return 2.0 if form == "collective" else DTYPES[key.split("|", 1)[0]][1]


@dataclass(frozen=True)
class KernelFit:
    """One fitted form: parameters, correction grid, and how well it fitted."""

    form: str
    key: str
    params: dict[str, float]
    grid: CorrectionGrid
    points: int
    fit_mape: float
    curves: ConfigCurves | None = None  # per measured configuration (MoE)

    def seconds(self, dims: dict[str, Dim], hw: DeviceFigures) -> Dim:
        """Latency of the kernel(s) described by ``dims`` (arrays broadcast)."""
        form = FORMS[self.form]
        base = form.seconds(self.params, dims, hw, element_bytes(self.form, self.key))
        log_correction = self.grid(form.feature_matrix(dims))
        if self.curves is not None:
            log_correction = log_correction + self.curves(dims)
        return base * np.exp(log_correction)

    def confidence(self, dims: dict[str, Dim]) -> Confidence:
        """CALIBRATED inside the measured range, INTERPOLATED up to 2x beyond it,
        THEORETICAL (the form's physics alone) further out; the weakest over a sweep."""
        x = FORMS[self.form].feature_matrix(dims)
        lo = np.array([a[0] for a in self.grid.axes])
        hi = np.array([a[-1] for a in self.grid.axes])
        outside = float(np.max(np.maximum(lo - x, x - hi), initial=0.0))
        if outside <= 1e-9:
            return Confidence.CALIBRATED
        return Confidence.INTERPOLATED if outside <= NEAR else Confidence.THEORETICAL

    def to_dict(self) -> dict:
        return {"form": self.form, "key": self.key, "points": self.points,
                "fit_mape": round(self.fit_mape, 4),
                "params": {k: float(f"{v:.6g}") for k, v in self.params.items()},
                "grid": self.grid.to_dict(),
                **({"curves": self.curves.to_dict()} if self.curves else {})}

    @classmethod
    def from_dict(cls, data: dict) -> KernelFit:
        form = data["form"]
        if form not in FORMS:
            raise ProfileError(f"unknown kernel form {form!r} (known: {', '.join(FORMS)})")
        key = str(data["key"])
        if form != "collective" and key.split("|", 1)[0] not in DTYPES:
            raise ProfileError(f"{form} fit {key!r}: unknown dtype (known: {', '.join(DTYPES)})")
        missing = {p.name for p in FORMS[form].params} - set(data["params"])
        if missing:
            raise ProfileError(f"{form} fit {data['key']!r} lacks parameters {sorted(missing)}")
        curves = ConfigCurves.from_dict(data["curves"]) if "curves" in data else None
        return cls(form, str(data["key"]), {k: float(v) for k, v in data["params"].items()},
                   CorrectionGrid.from_dict(data["grid"]), int(data["points"]),
                   float(data["fit_mape"]), curves)


@dataclass(frozen=True)
class GpuProfile:
    """Fitted kernel forms of one GPU as one engine runs its kernels."""

    gpu: str  # catalog name
    engine: str
    versions: dict[str, str]  # table -> engine/library version measured
    source: dict[str, str]  # repository, commit, path of the measurements
    fits: dict[tuple[str, str], KernelFit] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.gpu}/{self.engine}"

    def fit(self, form: str, key: str) -> KernelFit | None:
        return self.fits.get((form, key))

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "gpu": self.gpu, "engine": self.engine,
                "versions": self.versions, "source": self.source,
                "fits": [f.to_dict() for f in self.fits.values()]}

    @classmethod
    def from_dict(cls, data: dict, where: str = "profile") -> GpuProfile:
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise ProfileError(f"format_version {data.get('format_version')!r}, "
                                   f"this perfcast reads {FORMAT_VERSION}")
            fits = [KernelFit.from_dict(f) for f in data["fits"]]
            return cls(str(data["gpu"]), str(data["engine"]), dict(data["versions"]),
                       dict(data["source"]), {(f.form, f.key): f for f in fits})
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{where}: not a perfcast GPU profile ({exc})") from None

    def save(self, path: Path) -> Path:
        """Write JSON (gzip-compressed when ``path`` ends in ``.gz``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), separators=(",", ":")) + "\n"
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text)
        return path

    @classmethod
    def load(cls, path: Path) -> GpuProfile:
        path = Path(path)
        try:
            raw = path.read_bytes()
            data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError,
                json.JSONDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read GPU profile ({exc})") from None
        return cls.from_dict(data, str(path))


def profile_filename(gpu: str, engine: str) -> str:
    return f"{gpu}__{engine}.json.gz"


def user_profile_dir() -> Path:
    """``$PERFCAST_GPU_PROFILES`` or ``.perfcast/gpu_profiles``: profiles fitted here,
    which take precedence over the packaged ones."""
    return Path(os.environ.get("PERFCAST_GPU_PROFILES") or USER_DIR)


def find_profile(gpu: str, engine: str) -> GpuProfile | None:
    """The profile of catalog device ``gpu`` for ``engine``: the user's fits over the
    packaged ones (a user profile that measured only GEMMs keeps the packaged MoE fits),
    or either alone, or None."""
    name = profile_filename(load_spec(gpu).name, engine)
    found = [_load_cached(p.resolve(), p.stat().st_mtime_ns)
             for p in (SHIPPED / name, user_profile_dir() / name) if p.exists()]
    if len(found) < 2:
        return found[0] if found else None
    packaged, user = found
    return GpuProfile(user.gpu, user.engine, {**packaged.versions, **user.versions},
                      {**packaged.source, "user": ", ".join(user.source.values())},
                      {**packaged.fits, **user.fits})


@cache
def _load_cached(path: Path, mtime_ns: int) -> GpuProfile:
    return GpuProfile.load(path)


def profiles_in(folder: Path) -> list[tuple[str, str]]:
    """(gpu, engine) of every profile file in ``folder``."""
    names = (p.name.removesuffix(".json.gz") for p in folder.glob("*__*.json.gz"))
    return sorted(tuple(n.split("__", 1)) for n in names)  # type: ignore[misc]


def shipped_profiles() -> list[tuple[str, str]]:
    """(gpu, engine) of every packaged profile."""
    return profiles_in(SHIPPED)
