"""Profile a benchmark: torch.profiler in process, or Nsight Systems / Compute around a command."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TOOLS = ("torch", "nsys", "ncu")
# Where NVIDIA installers put the tools when they are not on PATH.
TOOL_DIRS = {
    "nsys": (
        "/usr/local/cuda/bin", "/opt/nvidia/nsight-systems/*/bin",
        "/usr/local/cuda/nsight-systems-*/bin",
    ),
    "ncu": (
        "/usr/local/cuda/bin", "/opt/nvidia/nsight-compute/*", "/usr/local/cuda/nsight-compute-*",
    ),
}  # fmt: skip
TOOL_INFO = {
    "nsys": ("Nsight Systems", "https://developer.nvidia.com/nsight-systems"),
    "ncu": ("Nsight Compute", "https://developer.nvidia.com/nsight-compute"),
}


class ProfilerUnavailable(RuntimeError):
    """A profiler cannot run here; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class KernelRow:
    """One op (CPU) or kernel (CUDA) summed over the profiled iterations."""

    name: str
    calls: int
    total_s: float
    self_s: float
    mean_s: float
    share: float  # of the summed self time of all rows


@dataclass
class TorchProfile:
    """A torch.profiler run: the Chrome trace on disk and rows ranked by self time."""

    trace_path: Path
    rows: list[KernelRow]

    def table(self, top: int = 15) -> str:
        """The ``top`` rows as a plain-text table."""
        width = max([len("name"), *(len(r.name[:60]) for r in self.rows[:top])])
        lines = [f"{'name':<{width}}  {'calls':>6}  {'self ms':>10}  {'total ms':>10}  "
                 f"{'mean us':>10}  {'share':>6}"]
        lines += [
            f"{r.name[:60]:<{width}}  {r.calls:>6}  {r.self_s * 1e3:>10.3f}  "
            f"{r.total_s * 1e3:>10.3f}  {r.mean_s * 1e6:>10.1f}  {r.share:>6.1%}"
            for r in self.rows[:top]
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"trace_path": str(self.trace_path), "rows": [asdict(r) for r in self.rows]}


def _rows(events: Any, on_cuda: bool) -> list[KernelRow]:
    """Per-op (CPU) or per-kernel (CUDA) rows from ``key_averages()``, by self time."""
    from torch.autograd import DeviceType

    def times(e: Any) -> tuple[float, float]:  # (self, total) in microseconds
        if on_cuda:
            return e.self_device_time_total, e.device_time_total
        return e.self_cpu_time_total, e.cpu_time_total

    wanted = DeviceType.CUDA if on_cuda else DeviceType.CPU
    timed = [(e, *times(e)) for e in events if e.device_type == wanted]
    picked = [(e, self_us, total_us) for e, self_us, total_us in timed if self_us > 0]
    summed = sum(self_us for _, self_us, _ in picked) or 1.0
    rows = [
        KernelRow(e.key, e.count, total_us / 1e6, self_us / 1e6, total_us / 1e6 / e.count,
                  self_us / summed)
        for e, self_us, total_us in picked
    ]
    return sorted(rows, key=lambda r: r.self_s, reverse=True)


def torch_profile(fn: Callable[[], object], *, trace_path: Path, iterations: int = 5,
                  device: str = "cpu", nvtx_name: str | None = None) -> TorchProfile:
    """Run ``fn`` ``iterations`` times under torch.profiler and summarize it.

    CUDA activity is recorded when ``device`` is a CUDA device and CUDA is available; rows
    then rank kernels by device self time, else ops by CPU self time. Each iteration is an
    NVTX range named ``nvtx_name`` when given. The Chrome trace goes to ``trace_path``.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    on_cuda = device.startswith("cuda") and torch.cuda.is_available()
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_cuda else [])]
    with profile(activities=activities) as prof:
        for _ in range(iterations):
            with _nvtx(nvtx_name):
                fn()
        if on_cuda:
            torch.cuda.synchronize()
    trace_path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(trace_path))
    return TorchProfile(trace_path, _rows(prof.key_averages(), on_cuda))


def _nvtx(name: str | None) -> Any:
    """An NVTX range around one iteration, for Nsight timelines (no-op without a tool)."""
    if name is None:
        return nullcontext()
    import nvtx

    return nvtx.annotate(name, domain="perfcast")


def find_tool(tool: str) -> str | None:
    """Path of ``nsys`` or ``ncu``: PATH first, then the usual CUDA / Nsight install dirs."""
    found = shutil.which(tool)
    if found:
        return found
    for pattern in TOOL_DIRS.get(tool, ()):
        for folder in sorted(glob.glob(pattern), reverse=True):  # newest version first
            candidate = Path(folder) / tool
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def wrap_command(tool: str, argv: list[str], output: Path) -> list[str]:
    """``argv`` run under Nsight Systems (``nsys``) or Nsight Compute (``ncu``)."""
    if tool not in TOOL_INFO:
        raise ValueError(f"cannot wrap a command with profiler {tool!r}: profilers are "
                         f"{', '.join(TOOLS)} (torch runs in process, see torch_profile)")
    exe = find_tool(tool)
    if exe is None:
        product, url = TOOL_INFO[tool]
        raise ProfilerUnavailable(
            f"{tool} ({product}) is not installed or not on PATH; install NVIDIA {product} "
            f"({url}, or the CUDA toolkit) and add its bin directory to PATH, "
            "or use --profile torch"
        )
    if tool == "nsys":
        return [exe, "profile", "--trace=cuda,nvtx,osrt", "--force-overwrite=true",
                "-o", str(output), *argv]
    return [exe, "--nvtx", "--set", "full", "-f", "-o", str(output), *argv]
