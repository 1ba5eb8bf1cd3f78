"""The host-allocator configuration CPU timings run under."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from perfcast.bench import allocator
from perfcast.bench.environment import capture_environment

GLIBC = platform.libc_ver()[0] == "glibc"

# Counts the blocks glibc mmaps (mallinfo2().hblks) for libc mallocs, before and after
# fix_for_timing(); runs in a child so this test process keeps its own malloc settings.
PROBE = textwrap.dedent("""
    import ctypes
    from perfcast.bench import allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    libc.mallinfo2.restype = MallInfo2

    def mapped(nbytes):
        base = libc.mallinfo2().hblks
        p = libc.malloc(nbytes)
        n = libc.mallinfo2().hblks - base
        libc.free(p)
        return n

    before = mapped(8 << 20)
    fixed = allocator.fix_for_timing()
    print(before, fixed, mapped(8 << 20), mapped(40 << 20))
""")


@pytest.mark.skipif(not GLIBC, reason="glibc malloc only")
def test_fixed_thresholds_serve_blocks_up_to_32_mib_from_the_heap(monkeypatch) -> None:
    for name in (*allocator.USER_SETTINGS, "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "True", "0", "1"]  # 8 MiB: mmapped by default, heap once fixed


def test_user_settings_and_other_allocators_are_left_alone(monkeypatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert allocator.describe() == "jemalloc (LD_PRELOAD)"
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    if GLIBC:
        assert allocator.describe() == ("glibc malloc, user settings: "
                                        "MALLOC_MMAP_THRESHOLD_=65536")
    assert not allocator.describe().endswith("(fixed by perfcast)")


@pytest.mark.skipif(not GLIBC, reason="glibc malloc only")
def test_environment_records_the_allocator_and_it_changes_the_fingerprint(monkeypatch) -> None:
    for name in (*allocator.USER_SETTINGS, "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    fixed = capture_environment(threads=1)
    assert fixed.settings["allocator"] == allocator.describe()
    assert "mmap threshold 32 MiB" in fixed.settings["allocator"]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    user = capture_environment(threads=1)
    assert user.fingerprint() != fixed.fingerprint()
    assert any(d.startswith("allocator ") for d in user.differences(fixed))
