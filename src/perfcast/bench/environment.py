"""What a benchmark ran on: hardware, software and settings, and whether two runs compare."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

import perfcast
from perfcast.bench import allocator
from perfcast.hardware.cpuinfo import read_cpu_facts

GIB = 1 << 30
GIT_TIMEOUT_S = 1.0
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
CPU_KEYS = (
    "cpu_model", "cpu_vendor", "arch", "physical_cores", "logical_cpus", "memory_bytes",
    "l2_bytes", "l3_bytes",
)  # fmt: skip
NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2  # pynvml constants, fixed by the NVML ABI
# Vendor noise stripped from CPU model names before slugging.
_CPU_NOISE = re.compile(r"\((r|tm)\)|\bcpu\b.*$|\bprocessor\b|\b\d+-core\b", re.IGNORECASE)
T = TypeVar("T")


def _safe(fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when it raises: capture records what it cannot read as None."""
    try:
        return fn()
    except Exception:
        return None


def slug(text: str) -> str:
    """Lower-case, filesystem-safe form of ``text`` (runs of other characters become ``-``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _gib(nbytes: int | None) -> int | None:
    return None if nbytes is None else round(nbytes / GIB)


@dataclass(frozen=True)
class Environment:
    """Hardware, software and settings of one benchmark run (plain JSON-able dicts)."""

    hardware: dict[str, Any]
    software: dict[str, Any]
    settings: dict[str, Any]

    def comparable(self) -> dict[str, Any]:
        """The fields that must match for two runs' timings to be compared, by label."""
        hw, sw = self.hardware, self.software
        gpus = hw.get("gpus") or []
        python = sw.get("python")
        return {
            "cpu": hw.get("cpu_model"),
            "physical cores": hw.get("physical_cores"),
            "logical cpus": hw.get("logical_cpus"),
            "memory GiB": _gib(hw.get("memory_bytes")),
            "gpus": [f"{g.get('name')} {_gib(g.get('memory_bytes'))} GiB" for g in gpus],
            "python": ".".join(python.split(".")[:2]) if python else None,
            "torch": sw.get("torch"),
            "cuda": sw.get("torch_cuda"),
            "threads": self.settings.get("torch_threads"),
            "allocator": self.settings.get("allocator"),
        }

    def fingerprint(self) -> str:
        """First 16 hex digits of the sha256 of :meth:`comparable` (no clocks, commit, version)."""
        blob = json.dumps(self.comparable(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def hardware_key(self) -> str:
        """Stable slug naming this machine, e.g. ``amd-epyc-2c_nvidia-h100-80gb-hbm3-x8``."""
        model = _CPU_NOISE.sub(" ", self.hardware.get("cpu_model") or "unknown")
        key = f"{slug(model) or 'cpu'}-{self.hardware.get('logical_cpus') or 0}c"
        gpus = self.hardware.get("gpus") or []
        if gpus:
            key += f"_{slug(gpus[0].get('name') or 'gpu')}-x{len(gpus)}"
        return key

    def differences(self, other: Environment) -> list[str]:
        """Human-readable reasons why runs in ``self`` and ``other`` are not comparable."""
        mine, theirs = self.comparable(), other.comparable()
        return [
            f"{label} {_show(mine[label])} vs {_show(theirs[label])}"
            for label in mine
            if mine[label] != theirs[label]
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the fingerprint and hardware key for readers of result files."""
        return {
            **asdict(self),
            "fingerprint": self.fingerprint(),
            "hardware_key": self.hardware_key(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Environment:
        """Inverse of :meth:`to_dict` (derived keys are recomputed, not read)."""
        return cls(
            hardware=dict(d.get("hardware") or {}),
            software=dict(d.get("software") or {}),
            settings=dict(d.get("settings") or {}),
        )


def _show(value: Any) -> str:
    if value is None or value == []:
        return "none"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _torch() -> Any | None:
    """The torch module, or None when it is not installed or fails to import."""
    return _safe(lambda: importlib.import_module("torch"))


def _cuda_available(torch: Any | None) -> bool:
    return bool(torch is not None and _safe(torch.cuda.is_available))


@contextlib.contextmanager
def _nvml() -> Iterator[Any | None]:
    """pynvml, initialised for the block, or None when NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        yield None
        return
    try:
        yield pynvml
    finally:
        _safe(pynvml.nvmlShutdown)


def _nvml_handle(nvml: Any, props: Any) -> Any | None:
    """NVML handle of the torch device with properties ``props``, matched by UUID."""
    return _safe(lambda: nvml.nvmlDeviceGetHandleByUUID(f"GPU-{props.uuid}"))


def _gpu_hardware(index: int, props: Any, driver: str | None) -> dict[str, Any]:
    return {
        "index": index,
        "name": props.name,
        "memory_bytes": props.total_memory,
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "compute_capability": f"{props.major}.{props.minor}",
        "driver": driver,
        "sm_count": props.multi_processor_count,
    }


def _gpu_settings(index: int, nvml: Any | None, handle: Any | None) -> dict[str, Any]:
    def query(name: str, *args: Any) -> Any | None:
        if nvml is None or handle is None:
            return None
        return _safe(lambda: getattr(nvml, name)(handle, *args))

    limit_mw = query("nvmlDeviceGetPowerManagementLimit")
    persistence = query("nvmlDeviceGetPersistenceMode")
    return {
        "index": index,
        "sm_clock_mhz": query("nvmlDeviceGetClockInfo", NVML_CLOCK_SM),
        "sm_clock_max_mhz": query("nvmlDeviceGetMaxClockInfo", NVML_CLOCK_SM),
        "mem_clock_mhz": query("nvmlDeviceGetClockInfo", NVML_CLOCK_MEM),
        "mem_clock_max_mhz": query("nvmlDeviceGetMaxClockInfo", NVML_CLOCK_MEM),
        "power_limit_w": None if limit_mw is None else limit_mw / 1000,
        "persistence_mode": None if persistence is None else bool(persistence),
    }


def _gpus(torch: Any | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-GPU hardware facts (torch) and settings (NVML); empty without CUDA."""
    if not _cuda_available(torch):
        return [], []
    hardware, settings = [], []
    with _nvml() as nvml:
        driver = None if nvml is None else _safe(nvml.nvmlSystemGetDriverVersion)
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            handle = None if nvml is None else _nvml_handle(nvml, props)
            hardware.append(_gpu_hardware(index, props, driver))
            settings.append(_gpu_settings(index, nvml, handle))
    return hardware, settings


def gpu_l2_bytes(index: int = 0) -> int | None:
    """L2 cache size of CUDA device ``index`` in bytes, or None without one."""
    torch = _torch()
    if not _cuda_available(torch):
        return None
    return _safe(lambda: torch.cuda.get_device_properties(index).L2_cache_size)


def _cpu_hardware() -> dict[str, Any]:
    facts = read_cpu_facts()
    level_bytes = {
        level: sum(c.total_bytes for c in facts.caches if c.level == level) or None
        for level in (2, 3)
    }
    return {
        "cpu_model": facts.model_name,
        "cpu_vendor": facts.vendor,
        "arch": facts.arch,
        "physical_cores": facts.physical_cores,
        "logical_cpus": facts.logical_cores,
        "memory_bytes": facts.total_ram_bytes,
        "l2_bytes": level_bytes[2],
        "l3_bytes": level_bytes[3],
    }


def _version(dist: str) -> str | None:
    return _safe(lambda: importlib.metadata.version(dist))


def find_checkout(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``.git`` (dir or worktree file)."""
    return next((p for p in (start, *start.parents) if (p / ".git").exists()), None)


def _git(repo: Path | None, *args: str) -> str | None:
    """``git args`` in ``repo`` (None: the current directory); None when git fails."""
    where = [] if repo is None else ["-C", str(repo)]
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *where, *args],
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _git_state(repo: Path | None) -> dict[str, Any]:
    """HEAD commit and whether the work tree has changes; None for both outside git."""
    if repo is None:
        repo = find_checkout(Path(perfcast.__file__).resolve().parent)
    commit = _git(repo, "rev-parse", "HEAD")
    status = None if commit is None else _git(repo, "status", "--porcelain")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def _software(torch: Any | None, repo: Path | None) -> dict[str, Any]:
    cudnn = getattr(getattr(torch, "backends", None), "cudnn", None)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.system(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "torch": getattr(torch, "__version__", None),
        "torch_cuda": _safe(lambda: torch.version.cuda) if torch is not None else None,
        "cudnn": _safe(cudnn.version) if cudnn is not None else None,
        "triton": _version("triton"),
        "numpy": _version("numpy"),
        "onnxruntime": _version("onnxruntime"),
        "perfcast": perfcast.__version__,
        **_git_state(repo),
    }


def _read_text(path: Path) -> str | None:
    return _safe(lambda: path.read_text().strip())


def _cpu_freq_mhz() -> dict[str, float | None] | None:
    freq = _safe(psutil.cpu_freq)
    if freq is None:
        return None
    return {"current": freq.current or None, "max": freq.max or None}


def _settings(torch: Any | None, threads: int | None) -> dict[str, Any]:
    if torch is None:
        default, interop = os.cpu_count(), None
    else:
        default, interop = _safe(torch.get_num_threads), _safe(torch.get_num_interop_threads)
    return {
        "torch_threads": default if threads is None else threads,
        "torch_interop_threads": interop,
        "env": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
        "cpu_governor": _read_text(CPUFREQ / "scaling_governor"),
        "cpu_freq_mhz": _cpu_freq_mhz(),
        "allocator": allocator.describe(),
    }


def capture_environment(*, threads: int | None = None, repo: Path | None = None) -> Environment:
    """Describe this process's machine, software and settings; unreadable facts become None.

    ``threads`` is the thread count the harness set (default: torch's, else the CPU count);
    ``repo`` is the git checkout to record (default: perfcast's own checkout, else the cwd).
    """
    torch = _torch()
    gpu_hardware, gpu_settings = _safe(lambda: _gpus(torch)) or ([], [])
    hardware = _safe(_cpu_hardware) or dict.fromkeys(CPU_KEYS)
    return Environment(
        hardware={**hardware, "gpus": gpu_hardware},
        software=_software(torch, repo),
        settings={**_settings(torch, threads), "gpus": gpu_settings},
    )
