"""Time a callable: warm-up, adaptive repetition, CPU and CUDA timers, cache flushing.

:func:`measure` is the one-call API. CPU samples come from ``time.perf_counter_ns``
around ``number`` calls; CUDA samples from a pair of events per sample, read after a
synchronize. Between samples (outside the timed span) the GPU's L2 or, in cold-cache
mode, the CPU's last-level cache is overwritten. The garbage collector is off while
timing, and the torch thread count can be set for the duration.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perfcast.bench import allocator
from perfcast.bench.nvtx import nvtx_range
from perfcast.bench.stats import Stats, StopRule

if TYPE_CHECKING:
    from perfcast.bench.benchmark import Benchmark
    from perfcast.ir.cost import Cost

DEFAULT_MIN_SAMPLE_S = 1e-4  # CPU samples shorter than this batch several calls per sample
DEFAULT_WARMUP_S = 0.05
FALLBACK_LLC_BYTES = 64 << 20
FALLBACK_L2_BYTES = 50 << 20


class MeasureError(ValueError):
    """Bad arguments to :func:`measure`, or a callable that fails while being timed."""


@dataclass(frozen=True)
class Measurement:
    """Timing of one callable: every sample (seconds per call) and how it was taken."""

    stats: Stats
    device: str
    threads: int | None
    number: int
    warmup_calls: int
    stop_reason: str
    elapsed_s: float
    cold_cache: bool = False
    cuda_graph: bool = False

    @property
    def median_s(self) -> float:
        return self.stats.median

    @property
    def ci95_s(self) -> tuple[float, float]:
        return self.stats.ci95

    @property
    def samples(self) -> tuple[float, ...]:
        return self.stats.samples

    @property
    def n(self) -> int:
        return self.stats.n

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary without the samples (they live in ``stats``)."""
        return {"device": self.device, "threads": self.threads, "number": self.number,
                "warmup_calls": self.warmup_calls, "stop_reason": self.stop_reason,
                "elapsed_s": self.elapsed_s, "cold_cache": self.cold_cache,
                "cuda_graph": self.cuda_graph}


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (never imports CUDA otherwise)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def measure(fn: Callable[..., Any], *args: Any, device: str = "cpu",
            rule: StopRule | None = None, number: int | None = None,
            warmup_s: float = DEFAULT_WARMUP_S, threads: int | None = None,
            cold_cache: bool = False, l2_flush: bool = True, cuda_graph: bool = False,
            min_sample_s: float = DEFAULT_MIN_SAMPLE_S, name: str = "measure",
            **kwargs: Any) -> Measurement:
    """Time ``fn(*args, **kwargs)`` until its median is known well enough.

    ``rule`` says when to stop (target CI width, budget, sample limits). ``number`` fixes
    the calls per sample; by default it is 1 unless a call is shorter than
    ``min_sample_s`` on CPU. ``cold_cache`` (CPU) overwrites the last-level cache before
    every sample; ``l2_flush`` (CUDA) zeroes a buffer twice the L2 size before every
    sample; ``cuda_graph`` captures the calls once and times graph replays. ``threads``
    sets torch's intra-op thread count while timing. ``name`` labels the NVTX ranges.
    The host allocator's thresholds are fixed first (:mod:`perfcast.bench.allocator`).
    """
    rule = rule or StopRule()
    dev = _check_device(device)
    _check_args(number, warmup_s, threads, min_sample_s)
    if dev == "cpu" and cuda_graph:
        raise MeasureError("cuda_graph=True needs device='cuda'")
    call = _bind(fn, args, kwargs)
    allocator.fix_for_timing()
    with torch_threads(threads) as used_threads, _gc_disabled():
        with nvtx_range(name, "warmup"):
            warmup_calls, per_call = _warm_up(call, dev, warmup_s)
        if number is None:
            number = 1 if (dev != "cpu" or cold_cache or per_call >= min_sample_s) \
                else max(1, math.ceil(min_sample_s / max(per_call, 1e-9)))
        with nvtx_range(name, "timed"):
            try:
                if dev == "cpu":
                    samples, reason, elapsed = _time_cpu(call, number, rule, cold_cache)
                else:
                    samples, reason, elapsed = _time_cuda(call, number, rule, dev, l2_flush,
                                                          cuda_graph)
            except MeasureError:
                raise
            except Exception as exc:
                raise MeasureError(f"the timed callable raised {type(exc).__name__}: "
                                   f"{exc}") from exc
    return Measurement(Stats.from_samples(samples), dev, used_threads, number, warmup_calls,
                       reason, elapsed, cold_cache=cold_cache and dev == "cpu",
                       cuda_graph=cuda_graph)



def measure_benchmark(bench: Benchmark, params: Mapping[str, Any], *, threads: int,
                      rule: StopRule, name: str) -> tuple[Measurement, Cost | None]:
    """Set ``bench`` up with ``params``, time its ``run`` with :func:`measure` on
    ``threads``, read its work, and tear it down (also when timing fails)."""
    try:
        bench.setup(**params)
        return measure(bench.run, threads=threads, rule=rule, name=name), bench.work()
    finally:
        bench.teardown()


def _check_device(device: str) -> str:
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not cuda_available():
            raise MeasureError(f"device {device!r} requested but no CUDA device is available")
        return device
    raise MeasureError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def _check_args(number: int | None, warmup_s: float, threads: int | None,
                min_sample_s: float) -> None:
    if number is not None and (not isinstance(number, int) or number < 1):
        raise MeasureError(f"number must be a positive integer, got {number!r}")
    if not warmup_s >= 0:
        raise MeasureError(f"warmup_s must be >= 0, got {warmup_s!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise MeasureError(f"threads must be a positive integer, got {threads!r}")
    if not min_sample_s >= 0:
        raise MeasureError(f"min_sample_s must be >= 0, got {min_sample_s!r}")


def _bind(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Callable[[], Any]:
    if not callable(fn):
        raise MeasureError(f"fn must be callable, got {type(fn).__name__}")
    if not args and not kwargs:
        return fn
    return lambda: fn(*args, **kwargs)


@contextmanager
def _gc_disabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int | None]:
    """Set torch's intra-op thread count for the block when torch is loaded (None keeps
    it); yield the count in use. The previous count is restored on exit."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield threads
        return
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _warm_up(call: Callable[[], Any], device: str, warmup_s: float) -> tuple[int, float]:
    """Run ``call`` for at least two calls and ``warmup_s``; return (calls, seconds per call)."""
    sync = _synchronizer(device)
    calls = 0
    start = time.perf_counter()
    while True:
        _invoke(call)
        sync()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= warmup_s:
            return calls, elapsed / calls


def _invoke(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        raise MeasureError(f"the timed callable raised {type(exc).__name__}: {exc}") from exc


def _synchronizer(device: str) -> Callable[[], None]:
    if device == "cpu":
        return lambda: None
    import torch

    return lambda: torch.cuda.synchronize(device)


def _check_interval(n: int) -> int:
    """Samples between stop-rule checks: every sample early on, ~3% of n later."""
    return max(1, n // 32)


def _time_cpu(call: Callable[[], Any], number: int, rule: StopRule,
              cold_cache: bool) -> tuple[list[float], str, float]:
    flush = _cpu_cache_flusher() if cold_cache else None
    clock = time.perf_counter_ns
    samples: list[float] = []
    scale = 1e-9 / number
    start = clock()
    next_check = 1
    while True:
        if flush is not None:
            flush()
        if number == 1:
            t0 = clock()
            call()
            t1 = clock()
        else:
            t0 = clock()
            for _ in range(number):
                call()
            t1 = clock()
        samples.append((t1 - t0) * scale)
        if len(samples) >= next_check:
            reason = rule.decide(samples, (clock() - start) * 1e-9)
            if reason is not None:
                return samples, reason, (clock() - start) * 1e-9
            next_check = len(samples) + _check_interval(len(samples))


def _cpu_cache_flusher() -> Callable[[], None]:
    """Overwrite a buffer twice the last-level cache, evicting the benchmark's data."""
    from perfcast.hardware.cpuinfo import read_cpu_facts

    caches = read_cpu_facts().caches
    llc = max((c.total_bytes for c in caches), default=FALLBACK_LLC_BYTES)
    buffer = np.zeros(2 * llc // 8, dtype=np.float64)

    def flush() -> None:
        np.add(buffer, 1.0, out=buffer)

    return flush


def _time_cuda(call: Callable[[], Any], number: int, rule: StopRule, device: str,
               l2_flush: bool, cuda_graph: bool) -> tuple[list[float], str, float]:
    import torch

    from perfcast.bench.environment import gpu_l2_bytes

    index = torch.device(device).index or 0
    scratch = None
    if l2_flush:
        l2 = gpu_l2_bytes(index) or FALLBACK_L2_BYTES
        scratch = torch.empty(2 * l2 // 4, dtype=torch.float32, device=device)
    run = _capture_graph(call, number, device) if cuda_graph else None
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        batch = _check_interval(len(samples)) if samples else 1
        events = []
        for _ in range(batch):
            if scratch is not None:
                scratch.zero_()
            begin = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            begin.record()
            if run is not None:
                run()
            else:
                for _ in range(number):
                    call()
            end.record()
            events.append((begin, end))
        torch.cuda.synchronize(device)
        samples.extend(b.elapsed_time(e) * 1e-3 / number for b, e in events)
        reason = rule.decide(samples, time.perf_counter() - start)
        if reason is not None:
            return samples, reason, time.perf_counter() - start


def _capture_graph(call: Callable[[], Any], number: int, device: str) -> Callable[[], None]:
    """Capture ``number`` calls into a CUDA graph; return its replay."""
    import torch

    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        call()  # allocations made on the side stream before capture
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for _ in range(number):
                call()
    except Exception as exc:
        raise MeasureError(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); "
                           "run without cuda_graph") from exc
    return graph.replay
