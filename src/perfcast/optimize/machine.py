"""Where optimize runs: the device of the inputs, this machine's abilities and spec, its
load, the torch thread count."""

from __future__ import annotations

import os
from typing import Any

from perfcast.optimize.candidates import Setting


def device_of(inputs: tuple) -> str:
    """'cuda' when an example input is on a CUDA device, else 'cpu'."""
    for x in inputs:
        if getattr(x, "is_cuda", False):
            return "cuda"
    return "cpu"


def native_bf16(device: str) -> bool:
    """Whether the device has native bf16 arithmetic (CPU ISA flags or CUDA capability)."""
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    from perfcast.hardware.detect import detect_local

    return detect_local().supports("bf16")


def default_hardware(device: str, threads: int) -> Any:
    """The estimator's spec: this CPU scaled to ``threads``, or the GPU's catalog entry."""
    from perfcast.hardware.detect import detect_gpu, detect_local, scale_to_threads

    if device == "cuda":
        gpu = detect_gpu()
        return gpu.spec if gpu is not None else None
    return scale_to_threads(detect_local(), threads)


def describe(setting: Setting) -> str:
    """The device in words: the GPU's name, or the CPU model and thread count."""
    if setting.device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    from perfcast.hardware.detect import detect_local

    plural = "s" if setting.threads != 1 else ""
    return f"{detect_local().display_name} ({setting.threads} thread{plural})"


def load_notes(load_at_start: float, threads: int) -> list[str]:
    """A warning when other processes competed for the CPU during the run."""
    cores = os.cpu_count() or 1
    worst = max(load_at_start, os.getloadavg()[0])
    if worst <= cores:
        return []
    return [f"the 1-minute load average reached {worst:.1f} on {cores} CPUs: other processes "
            "competed for them, so timings are slow and noisy"
            + ("; --threads 1 is steadier under load" if threads > 1 else "")]
