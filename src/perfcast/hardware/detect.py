"""Describe this machine as a HardwareSpec (CPU) and report a CUDA/ROCm GPU if torch sees one."""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from perfcast.hardware.catalog import load_spec, resolve_name
from perfcast.hardware.cpuinfo import CpuFacts, read_cpu_facts
from perfcast.hardware.spec import HardwareSpec

X86 = frozenset({"x86_64", "amd64", "i386", "i686"})
ARM = frozenset({"aarch64", "arm64"})
DDR_PJ_PER_BIT = 15.0  # DDR4/DDR5 access + I/O energy, low end of the 15-20 pJ/bit range
WATTS_PER_CORE = 6.0  # server CPU TDP / core count is ~3.5-6.5 W (e.g. 350 W / 56 cores)
_CACHE_KIND = {1: "l1", 2: "l2"}


def flops_per_cycle(facts: CpuFacts) -> dict[str, tuple[float, str]]:
    """Peak FLOP (OP for int8) per cycle per core for each precision, with the derivation.

    Assumes two FMA units per core on AVX2/AVX-512 x86 (one-FMA AVX-512 parts such as
    Xeon Silver reach half) and two 128-bit FMA pipes on Arm (Neoverse V1/V2 have more);
    AMD family 25 (Zen 4) executes AVX-512 on 256-bit datapaths.
    """
    f = facts.flags
    if facts.arch in ARM:
        fp32, how = 16.0, "NEON: 2 FMA pipes x 4 fp32 lanes x 2 FLOP (assumed 2 pipes)"
    elif facts.arch in X86 and ({"avx512f", "avx2", "avx"} & f):
        zen = facts.vendor == "amd" and facts.family == 25
        width = 512 if "avx512f" in f and not zen else 256
        isa = "AVX-512" if "avx512f" in f else ("AVX2" if "avx2" in f else "AVX")
        isa += " on 256-bit datapaths" if "avx512f" in f and zen else ""
        lanes = width // 32
        if "fma" in f:
            fp32, how = 2.0 * lanes * 2, f"{isa}: 2 FMA units x {lanes} fp32 lanes x 2 FLOP"
        else:
            fp32, how = 2.0 * lanes, f"{isa}: 1 add + 1 mul unit x {lanes} fp32 lanes"
    else:
        isa = "SSE" if facts.arch in X86 else "assumed 128-bit SIMD"
        fp32, how = 8.0, f"{isa}: 1 add + 1 mul unit x 4 fp32 lanes"
    out = {"fp32": (fp32, how), "fp64": (fp32 / 2, f"{how}, half the lanes at fp64")}
    if "amx_bf16" in f:
        out["bf16"] = (1024.0, "AMX: 1024 bf16 FLOP/cycle/core")
    elif {"avx512_bf16", "bf16"} & f:
        out["bf16"] = (2 * fp32, "bf16 dot product: 2 products per fp32 lane (2x fp32)")
    if "amx_fp16" in f:
        out["fp16"] = (1024.0, "AMX: 1024 fp16 FLOP/cycle/core")
    elif {"avx512_fp16", "asimdhp"} & f:
        out["fp16"] = (2 * fp32, "native fp16 vectors: 2x the fp32 lanes")
    if "amx_int8" in f:
        out["int8"] = (2048.0, "AMX: 2048 int8 OP/cycle/core")
    elif {"avx512_vnni", "avx_vnni", "asimddp"} & f:
        out["int8"] = (4 * fp32, "int8 dot product: 4 MACs per 32-bit lane (4x fp32)")
    return out


def measure_dram_bandwidth(nbytes: int = 256 << 20, repeats: int = 3) -> float:
    """Copy bandwidth in bytes/s (read + write traffic), best of ``repeats`` numpy copies."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault in the destination pages before timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def _power_limit_w() -> float | None:
    for path in sorted(Path("/sys/class/powercap").glob("*rapl*:0/constraint_0_power_limit_uw")):
        try:
            value = int(path.read_text()) / 1e6
        except (OSError, ValueError):
            continue
        if value > 0:
            return value
    return None


@lru_cache(maxsize=1)
def _local() -> tuple[CpuFacts, float, HardwareSpec]:
    facts = read_cpu_facts()
    bandwidth = measure_dram_bandwidth(min(256 << 20, facts.total_ram_bytes // 16))
    return facts, bandwidth, _build_spec(facts, bandwidth)


def _build_spec(facts: CpuFacts, bandwidth: float) -> HardwareSpec:
    ghz = facts.freq_hz / 1e9
    compute = {
        dtype: {
            "dense": facts.cores * facts.freq_hz * fpc,
            "source": "derived",
            "note": f"{facts.cores} cores x {ghz:.3f} GHz x {fpc:g} "
            f"{'OP' if dtype == 'int8' else 'FLOP'}/cycle ({how})",
        }
        for dtype, (fpc, how) in flops_per_cycle(facts).items()
    }
    memory: list[dict[str, Any]] = [
        {
            "level": _CACHE_KIND.get(c.level, "llc"),
            "capacity_bytes": c.total_bytes,
            "source": "os",
            "note": f"L{c.level} {c.type}: {c.instances} x {c.size_bytes >> 10} KiB",
        }
        for c in facts.caches
    ]
    memory.append(
        {
            "level": "dram",
            "capacity_bytes": facts.total_ram_bytes,
            "bandwidth_bytes_per_s": bandwidth,
            "source": "measured",
            "note": "capacity from psutil; bandwidth = 2 x bytes / best time of a numpy copy",
        }
    )
    rapl = _power_limit_w()
    tdp = rapl or WATTS_PER_CORE * facts.cores
    idle = 0.3 * tdp
    power_note = (
        "RAPL package power limit; idle assumed 30% of it"
        if rapl
        else f"estimate: no RAPL limit readable; {WATTS_PER_CORE:g} W/core, idle 30%"
    )
    return HardwareSpec.model_validate(
        {
            "name": "local",
            "display_name": facts.model_name,
            "vendor": facts.vendor,
            "kind": "cpu",
            "sources": {
                "os": {"title": "read from /proc/cpuinfo, /sys/devices/system/cpu and psutil"},
                "derived": {"title": f"derived from the ISA flags and {facts.freq_source}"},
                "measured": {"title": "measured on this machine (numpy copy, best of 3)"},
                "estimate": {"title": "perfcast estimate: no figure readable on this machine"},
            },
            "compute": compute,
            "memory": memory,
            "power": {"tdp_w": tdp, "idle_w": idle, "source": "estimate", "note": power_note},
            "energy": {
                "flop_j": (tdp - idle) / compute["fp32"]["dense"],
                "dram_byte_j": DDR_PJ_PER_BIT * 8e-12,
                "source": "estimate",
                "note": f"(tdp - idle) / fp32 peak; DRAM assumed DDR at {DDR_PJ_PER_BIT:g} pJ/bit",
            },
            "launch_overhead_s": {
                "value": 8e-6,
                "source": "estimate",
                "note": "typical PyTorch eager CPU op dispatch (5-10 us); not measured",
            },
            "cores": facts.cores,
        }
    )


def scale_to_threads(spec: HardwareSpec, threads: int) -> HardwareSpec:
    """A CPU spec with its compute peaks scaled to ``threads`` of its ``cores``."""
    cores = spec.cores or threads
    if threads >= cores:
        return spec
    data = spec.model_dump()
    for figure in data["compute"].values():
        for key in ("dense", "sparse"):
            if figure.get(key):
                figure[key] = figure[key] * threads / cores
    return type(spec).model_validate(data)


def detect_local() -> HardwareSpec:
    """This machine's CPU as a spec named ``local`` (cached; measures DRAM once, < 1 s)."""
    return _local()[2]


def describe_local() -> dict[str, Any]:
    """Raw facts behind :func:`detect_local`, for printing."""
    facts, bandwidth, _ = _local()
    fpc = flops_per_cycle(facts)
    return {
        **{k: v for k, v in asdict(facts).items() if k not in {"flags", "caches"}},
        "cores_used": facts.cores,
        "isa": list(facts.isa),
        "caches": [{**asdict(c), "total_bytes": c.total_bytes} for c in facts.caches],
        "flops_per_cycle": {k: v for k, (v, _) in fpc.items()},
        "flops_per_cycle_basis": {k: how for k, (_, how) in fpc.items()},
        "dram_bandwidth_bytes_per_s": bandwidth,
    }


@dataclass(frozen=True)
class DetectedGpu:
    """A GPU that torch reports; ``spec`` is set only when its name is a catalog alias."""

    name: str
    memory_bytes: int
    multiprocessors: int
    spec: HardwareSpec | None

    def to_dict(self) -> dict[str, Any]:
        """Name, memory, SM count and the matching catalog name (or None), as JSON."""
        return {"name": self.name, "memory_bytes": self.memory_bytes,
                "multiprocessors": self.multiprocessors,
                "catalog_match": self.spec.name if self.spec else None}


def detect_gpu() -> DetectedGpu | None:
    """GPU 0 as seen by torch (CUDA or ROCm), or None when torch or a GPU is missing."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    canon = resolve_name(props.name)
    spec = load_spec(canon) if canon else None
    return DetectedGpu(props.name, props.total_memory, props.multi_processor_count, spec)
