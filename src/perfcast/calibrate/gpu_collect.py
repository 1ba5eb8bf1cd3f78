"""Measure this machine's GPU kernels with PyTorch into the published measurement layout.

GEMMs (bf16 ``torch.matmul``; fp8 ``torch._scaled_mm`` on compute capability >= 8.9),
prefill and decode attention (SDPA, GQA, head_dim 128) and, with ``torch.distributed``
initialized on several NCCL ranks, all-reduce: tables with the published columns and
milliseconds per call, so ``fit_measurements`` fits them into a profile of PyTorch's
kernels standing in for an engine. ``device="cpu"`` measures small shapes (format tests).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import platform
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfcast.estimate.gpu_profile import ENGINES

SEED = 0
WARMUP, REPEATS = 1, 5  # after the probe call; latency = median of REPEATS timed calls
FLUSH_BYTES = 256 << 20  # zeroed before each timed CUDA call: cold L2, and a busy queue
ALL_REDUCE_SHARE = 0.2  # of the budget, when several ranks are initialized
HEAD_DIM = 128
SDPA = "torch.nn.functional.scaled_dot_product_attention"

_M = tuple(2**i for i in range(15))  # 1 .. 16384
_N_K = (1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)
_BATCH = (1, 2, 4, 8, 16, 32, 64)
_ISL = tuple(2**i for i in range(6, 15))  # 64 .. 16384
_DECODE_BATCH = tuple(2**i for i in range(10))  # 1 .. 512
_CONTEXT = tuple(2**i for i in range(6, 18))  # 64 .. 131072
_HEADS = tuple(dict.fromkeys((h, kv) for h in (8, 16, 32, 64) for kv in (1, 2, 4, 8, h)
                             if kv <= h))
_MESSAGES = tuple(2**i for i in range(8, 29))  # all-reduce elements, 256 .. 256M

# largest GEMM dimension, prefill tokens (batch * isl) and decode KV-cache bytes per device
_LIMITS = {"cuda": (16384, 1 << 17, 4 << 30), "cpu": (1536, 512, 8 << 20)}


@dataclass
class _Kind:
    """One kind of kernel: its table, constant columns, shapes to try and rows measured."""

    table: str
    fixed: dict[str, Any]
    shapes: list[dict[str, int]]
    make: Callable[[dict[str, int]], Callable[[], Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0

    @property
    def label(self) -> str:
        return f"{self.fixed['op_name']} {self.fixed.get('gemm_dtype') or 'bfloat16'}"


class _CpuEvent:
    """``torch.cuda.Event`` on CPU: ops return when done, so no synchronization is needed."""

    def record(self) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: _CpuEvent) -> float:
        return (end.at - self.at) * 1e3


class _Clock:
    """Median latency of a call: CUDA events with an L2 flush, or perf_counter on CPU."""

    def __init__(self, torch: Any, device: Any) -> None:
        self.torch, self.device, self.cuda = torch, device, device.type == "cuda"
        self.event = (lambda: torch.cuda.Event(enable_timing=True)) if self.cuda else _CpuEvent
        self.flush = torch.empty(FLUSH_BYTES * self.cuda, dtype=torch.uint8, device=device)

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def median_ms(self, call: Callable[[], Any]) -> float:
        for _ in range(WARMUP):
            call()
        pairs = [(self.event(), self.event()) for _ in range(REPEATS)]
        for start, end in pairs:
            self.flush.zero_()
            start.record()
            call()
            end.record()
        self.sync()
        return statistics.median(start.elapsed_time(end) for start, end in pairs)


def system_name(device_name: str) -> str:
    """The system directory for a device name: lower case, other characters to ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", device_name.lower()).strip("_") or "unknown"


def collect(out_root: Path, *, budget_s: float, engine: str, device: str = "cuda",
            progress: Callable[[str], None] | None = None) -> Path:
    """Measure kernels on ``device`` for about ``budget_s`` seconds, write the tables under
    ``out_root`` and return the system directory ``out_root/<system>``.

    ``engine`` (one of ``ENGINES``) names the framework directory: a profile fitted from
    these tables describes PyTorch's kernels standing in for that engine. With several
    ranks, all measure all-reduce; rank 0 alone measures the rest and writes. ValueError:
    a bad budget, engine or device, or a budget that ended before anything was measured.
    """
    if not (isinstance(budget_s, int | float) and math.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"budget_s={budget_s!r}: the time budget must be a positive number "
                         "of seconds")
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: unknown; choose from {', '.join(ENGINES)} (the "
                         "profile describes PyTorch's kernels standing in for that engine)")
    import torch

    dev = _device(torch, device)
    note = progress or (lambda _msg: None)
    start = time.monotonic()
    deadline, clock = start + budget_s, _Clock(torch, dev)
    name = torch.cuda.get_device_name(dev) if clock.cuda else f"CPU {platform.machine()}"
    version = torch.__version__.split("+")[0]
    common = {"framework": "torch", "version": version, "device": name}
    out_root = Path(out_root)
    system_dir = out_root / system_name(name)
    with torch.cuda.device(dev) if clock.cuda else contextlib.nullcontext():
        nccl = _all_reduce(torch, clock, start + ALL_REDUCE_SHARE * budget_s, note)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return system_dir  # rank 0 measures the other kernels and writes
        kinds = _kinds(torch, dev, _fp8(torch, dev, note))
        note(f"measuring {name} for {budget_s:g} s: shapes "
             + ", ".join(f"{len(k.shapes)} {k.label}" for k in kinds))
        _measure_all(kinds, clock, deadline, note)
    tables = [(system_dir / ("gemm" if table == "gemm_perf" else "attention") / engine
               / version / f"{table}.parquet",
               [{**common, **k.fixed, **shape} for k in group for shape in k.rows])
              for table, group in itertools.groupby(kinds, key=lambda k: k.table)]
    if nccl:
        tables.append((system_dir / "comm" / "nccl" / nccl[1] / "nccl_perf.parquet",
                       [{**common, **row} for row in nccl[0]]))
    tables = [(path, rows) for path, rows in tables if rows]
    for path, rows in tables:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(path, index=False)
    if not tables:
        raise ValueError(f"budget_s={budget_s:g}: the budget ended before any kernel was "
                         "measured; give a larger budget")
    note(f"measured for {time.monotonic() - start:.1f} s; wrote "
         + ", ".join(f"{len(rows)} rows to {path.relative_to(out_root)}" for path, rows in tables))
    return system_dir


def _device(torch: Any, device: str) -> Any:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r}: not a device name ({exc})") from None
    if dev.type not in ("cuda", "cpu"):
        raise ValueError(f"device {device!r}: only 'cuda', 'cuda:N' and 'cpu' are supported")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is available to PyTorch "
                         f"{torch.__version__} (a CPU-only build, or no driver or GPU)")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def _fp8(torch: Any, dev: Any, note: Callable[[str], None]) -> bool:
    """Whether ``dev`` runs fp8 GEMMs (compute capability 8.9 or newer)."""
    cc = torch.cuda.get_device_capability(dev) if dev.type == "cuda" else None
    if cc is None or cc < (8, 9):
        where = "CPU" if cc is None else f"compute capability {cc[0]}.{cc[1]}"
        note(f"fp8 GEMM: skipped ({where}; fp8 needs compute capability 8.9 or newer)")
    return cc is not None and cc >= (8, 9)


def _kinds(torch: Any, dev: Any, fp8: bool) -> list[_Kind]:
    """The kernels to measure, each with its shapes shuffled with a fixed seed."""
    max_dim, max_tokens, max_kv_bytes = _LIMITS[dev.type]
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def randn(*shape: int) -> Any:
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16)

    def gemm(s: dict[str, int]) -> Callable[[], Any]:
        a, b = randn(s["m"], s["k"]), randn(s["k"], s["n"])
        return lambda: torch.matmul(a, b)

    def gemm_fp8(s: dict[str, int]) -> Callable[[], Any]:
        a = randn(s["m"], s["k"]).to(torch.float8_e4m3fn)
        b = randn(s["n"], s["k"]).to(torch.float8_e4m3fn).t()  # column-major, as cuBLASLt needs
        one = torch.ones((), device=dev)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    def attention(s: dict[str, int]) -> Callable[[], Any]:
        b, h, kv, d = s["batch_size"], s["num_heads"], s["num_key_value_heads"], s["head_dim"]
        prefill = s["step"] == 0
        length = s["isl"] + s["step"]  # decode: one query over a cache of isl + step tokens
        q = randn(b, h, s["isl"] if prefill else 1, d)
        k, v = randn(b, kv, length, d), randn(b, kv, length, d)
        return lambda: sdpa(q, k, v, is_causal=prefill, enable_gqa=kv != h)

    gemm_shapes = [{"m": m, "n": n, "k": k} for m, n, k in itertools.product(_M, _N_K, _N_K)
                   if max(m, n, k) <= max_dim]
    names = ("batch_size", "isl", "num_heads", "num_key_value_heads", "step")
    fixed = {"head_dim": HEAD_DIM, "window_size": 0, "beam_width": 1}
    prefill = [{**dict(zip(names, (b, isl, h, kv, 0), strict=True)), **fixed}
               for b, isl, (h, kv) in itertools.product(_BATCH, _ISL, _HEADS)
               if b * isl <= max_tokens]
    decode = [{**dict(zip(names, (b, 1, h, kv, c - 1), strict=True)), **fixed}  # c: context
              for b, c, (h, kv) in itertools.product(_DECODE_BATCH, _CONTEXT, _HEADS)
              if b * c * kv * HEAD_DIM * 4 <= max_kv_bytes]
    gemms = (("bfloat16", "torch.matmul", gemm), ("fp8", "torch._scaled_mm", gemm_fp8))
    kinds = [_Kind("gemm_perf", {"op_name": "gemm", "kernel_source": source, "gemm_dtype": dtype},
                   list(gemm_shapes), make) for dtype, source, make in gemms[:1 + fp8]]
    kinds += [_Kind(f"{op}_perf", {"op_name": op, "kernel_source": SDPA, "attn_dtype": "bfloat16",
                                   "kv_cache_dtype": "bfloat16"}, shapes, attention)
              for op, shapes in (("context_attention", prefill), ("generation_attention", decode))]
    for kind in kinds:
        random.Random(SEED).shuffle(kind.shapes)
    return kinds


def _measure_all(kinds: list[_Kind], clock: _Clock, deadline: float,
                 note: Callable[[str], None]) -> None:
    """Take one shape of each kind in turn until the shapes or the budget run out."""
    active = [(kind, iter(kind.shapes)) for kind in kinds]
    while active:
        for kind, todo in list(active):
            shape = next(todo, None)
            if time.monotonic() >= deadline:
                return
            if shape is None:
                active.remove((kind, todo))
                continue
            try:
                _measure(kind, shape, clock, deadline)
            except RuntimeError as exc:  # out of memory, or a shape the kernel rejects
                kind.failures += 1
                note(f"{kind.label} {shape}: {(str(exc) or repr(exc)).splitlines()[0]}")
                if not kind.rows and kind.failures >= 3:
                    note(f"{kind.label}: skipped (3 failures)")
                    active.remove((kind, todo))


def _measure(kind: _Kind, shape: dict[str, int], clock: _Clock, deadline: float) -> None:
    """Add the latency of one shape to ``kind.rows`` unless it would overrun the deadline."""
    call = kind.make(shape)
    start = time.perf_counter()
    call()  # the probe: also the first warm-up call
    clock.sync()
    if (time.perf_counter() - start) * (WARMUP + REPEATS) <= deadline - time.monotonic():
        kind.rows.append({**shape, "latency": clock.median_ms(call)})


def _all_reduce(torch: Any, clock: _Clock, deadline: float,
                note: Callable[[str], None]) -> tuple[list[dict[str, Any]], str] | None:
    """All-reduce rows (rank 0's timings) and the NCCL version, or None when
    torch.distributed is not initialized with several NCCL ranks or none was measured."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        note("all-reduce: skipped (torch.distributed is not initialized with several ranks)")
        return None
    if dist.get_backend() != "nccl" or not clock.cuda:
        note(f"all-reduce: skipped (backend {dist.get_backend()}; only NCCL is measured)")
        return None
    world, rows, sizes = dist.get_world_size(), [], list(_MESSAGES)
    random.Random(SEED).shuffle(sizes)
    for size in sizes:
        go = torch.tensor([float(time.monotonic() < deadline)], device=clock.device)
        dist.broadcast(go, src=0)  # rank 0 decides, so every rank calls the same collectives
        if not go.item():
            break
        x = torch.zeros(size, dtype=torch.float16, device=clock.device)
        for _ in range(WARMUP + 1):
            dist.all_reduce(x)
        clock.sync()
        dist.barrier()
        start, end = clock.event(), clock.event()
        start.record()
        for _ in range(REPEATS):  # back to back, as nccl-tests times them
            dist.all_reduce(x)
        end.record()
        clock.sync()
        rows.append({"op_name": "all_reduce", "kernel_source": "NCCL", "nccl_dtype": "half",
                     "num_gpus": world, "message_size": size,
                     "latency": start.elapsed_time(end) / REPEATS})
    note(f"all-reduce: {len(rows)} message sizes on {world} ranks")
    return (rows, ".".join(str(v) for v in torch.cuda.nccl.version())) if rows else None
