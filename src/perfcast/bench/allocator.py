"""A fixed host-allocator configuration for CPU timing.

glibc's malloc serves large blocks (128 KiB at start) with fresh ``mmap`` pages and
raises that threshold each time such a block is freed, then gives heap memory back to
the OS once more than twice the threshold is free at its top. So whether a forward pass
pays page faults on its activations depends on what the process allocated before:
measured here, a width-16 CNN at batch 8 took 20.5 ms fresh, 17.1 ms after a
``torch.export`` of the same model, and 12.5 ms with the thresholds fixed. Timings that
depend on history cannot be compared or predicted, so before timing, the harness fixes
both thresholds: blocks up to 32 MiB (glibc's largest allowed threshold on 64-bit) come
from the heap, and the heap is in effect never trimmed. Blocks above 32 MiB still get fresh pages.

A user's own ``MALLOC_*`` settings or a preloaded jemalloc/tcmalloc are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
from functools import cache

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, fixed by glibc's ABI (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD_BYTES = 2**31 - 1  # the largest mallopt takes: in effect, never trim
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def describe() -> str:
    """The host allocator configuration CPU timings run under (no side effects)."""
    preloaded = os.environ.get("LD_PRELOAD", "")
    for name in OTHER_ALLOCATORS:
        if name in preloaded:
            return f"{name} (LD_PRELOAD)"
    if platform.libc_ver()[0] != "glibc":
        return "system default"
    user = sorted(v for v in USER_SETTINGS if v in os.environ)
    if user:
        return "glibc malloc, user settings: " + ", ".join(f"{v}={os.environ[v]}" for v in user)
    return (f"glibc malloc, mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, trim threshold "
            f"{TRIM_THRESHOLD_BYTES >> 20} MiB (fixed by perfcast)")


@cache
def fix_for_timing() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once); True if they were set.

    Nothing is changed (False) off glibc, under another preloaded allocator or when the
    user set the thresholds: :func:`describe` says which.
    """
    if not describe().endswith("(fixed by perfcast)"):
        return False
    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return bool(trimmed and mapped)
