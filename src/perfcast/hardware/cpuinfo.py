"""Facts about this machine's CPU, read from procfs, sysfs and psutil (Linux first)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PROC_CPUINFO = Path("/proc/cpuinfo")
SYS_CPU = Path("/sys/devices/system/cpu")
# ISA features that matter for peak-FLOP derivation; reported when present.
ISA_OF_INTEREST = (
    "sse2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16",
    "avx_vnni", "amx_bf16", "amx_int8", "amx_fp16", "neon", "asimd", "asimddp", "asimdhp",
    "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "0x41": "arm", "0x61": "apple"}


@dataclass(frozen=True)
class CacheInfo:
    """One cache level: per-instance size and how many instances the machine has."""

    level: int
    type: str
    size_bytes: int
    instances: int

    @property
    def total_bytes(self) -> int:
        return self.size_bytes * self.instances


@dataclass(frozen=True)
class CpuFacts:
    """Raw CPU facts; every field is read from the OS, none is looked up in a table."""

    model_name: str
    vendor: str
    arch: str
    family: int | None
    physical_cores: int
    logical_cores: int
    usable_cpus: int
    flags: frozenset[str]
    caches: tuple[CacheInfo, ...]
    freq_hz: float
    freq_source: str
    total_ram_bytes: int
    isa: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "isa", tuple(f for f in ISA_OF_INTEREST if f in self.flags))

    @property
    def cores(self) -> int:
        """Physical cores this process may use (capped by its CPU affinity)."""
        return max(1, min(self.physical_cores, self.usable_cpus))


def parse_cpuinfo(text: str) -> dict[str, str]:
    """First value of each key in /proc/cpuinfo (the block of cpu0)."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip().lower(), value.strip())
    return info


def parse_size(text: str) -> int:
    """``32K`` / ``1024K`` / ``32M`` (sysfs cache sizes, binary units) to bytes."""
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_caches(sys_cpu: Path = SYS_CPU) -> tuple[CacheInfo, ...]:
    """Data/unified caches from sysfs, counting distinct sharing groups as instances."""
    groups: dict[tuple[int, str], set[str]] = {}
    sizes: dict[tuple[int, str], int] = {}
    for index in sys_cpu.glob("cpu[0-9]*/cache/index[0-9]*"):
        level, kind = _read(index / "level"), _read(index / "type")
        size, shared = _read(index / "size"), _read(index / "shared_cpu_list")
        if not (level and kind and size) or kind == "Instruction":
            continue
        key = (int(level), kind)
        groups.setdefault(key, set()).add(shared or index.parent.parent.name)
        sizes[key] = parse_size(size)
    return tuple(
        CacheInfo(level, kind, sizes[(level, kind)], len(groups[(level, kind)]))
        for level, kind in sorted(groups)
    )


def read_frequency(info: dict[str, str]) -> tuple[float, str]:
    """Max core clock in Hz and where it came from (cpufreq, psutil, cpuinfo, or assumed)."""
    max_khz = _read(SYS_CPU / "cpu0/cpufreq/cpuinfo_max_freq")
    if max_khz and max_khz.isdigit() and int(max_khz) > 0:
        return int(max_khz) * 1e3, "cpufreq cpuinfo_max_freq"
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):  # some platforms expose no frequency at all
        freq = None
    if freq is not None and freq.max > 0:
        return freq.max * 1e6, "psutil cpu_freq().max"
    mhz = info.get("cpu mhz")
    if mhz:
        return float(mhz) * 1e6, "/proc/cpuinfo cpu MHz"
    return 2.0e9, "assumed 2.0 GHz: the OS exposes no CPU frequency"


def read_cpu_facts() -> CpuFacts:
    """Read this machine's CPU facts."""
    info = parse_cpuinfo(_read(PROC_CPUINFO) or "")
    arch = platform.machine().lower()
    vendor_id = info.get("vendor_id") or info.get("cpu implementer", "")
    model = info.get("model name") or info.get("hardware") or platform.processor()
    family = info.get("cpu family", "")
    flags = set((info.get("flags") or info.get("features") or "").split())
    if "asimd" in flags:
        flags.add("neon")
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    freq_hz, freq_source = read_frequency(info)
    return CpuFacts(
        model_name=model or f"{arch} CPU",
        vendor=_VENDORS.get(vendor_id, vendor_id.lower() or "unknown"),
        arch=arch,
        family=int(family) if family.isdigit() else None,
        physical_cores=psutil.cpu_count(logical=False) or logical,
        logical_cores=logical,
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical,
        flags=frozenset(flags),
        caches=read_caches(),
        freq_hz=freq_hz,
        freq_source=freq_source,
        total_ram_bytes=psutil.virtual_memory().total,
    )
