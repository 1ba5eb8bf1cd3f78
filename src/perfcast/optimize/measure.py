"""Measuring candidates: paired timing against eager, peak memory, quiet builds.

Timing alternates eager and the candidate in rounds (eager, candidate, eager, candidate;
one round for slow calls), each round one :func:`perfcast.bench.measure` call, and
compares the pooled samples with :func:`perfcast.bench.compare`. On a shared machine the
load drifts; pairing the rounds keeps that drift out of the speedup.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from perfcast.bench import Comparison, Stats, StopRule, compare, measure

ROUNDS = 2  # eager/candidate alternations per candidate...
MIN_SAMPLES_PER_ROUND = 3  # ...so that compare() sees >= 6 samples per side
SLOW_MIN_SAMPLES = 5  # one round when calls are slow: 5 v 5 can still reach p < 0.01
WARMUP_CALLS = 2  # measure() warms up with at least this many calls per round
RSS_POLL_S = 0.001


@dataclass(frozen=True)
class Paired:
    """Samples of eager and of a candidate taken in alternating rounds, and their comparison."""

    reference: tuple[float, ...]
    candidate: Stats
    comparison: Comparison


def paired_timing(reference: Callable[[], Any], candidate: Callable[[], Any], *, device: str,
                  threads: int, budget_s: float, call_s: float = 0.0) -> Paired:
    """Time ``reference`` and ``candidate`` alternately within about ``budget_s`` in all.

    ``call_s`` (a guess of one call's time) picks the rounds: when two rounds' minimum
    (warm-ups included) would not fit the budget, one round of 5 samples per side.
    """
    two_rounds = 2 * ROUNDS * (WARMUP_CALLS + MIN_SAMPLES_PER_ROUND) * call_s
    rounds, floor = (ROUNDS, MIN_SAMPLES_PER_ROUND) if two_rounds <= budget_s \
        else (1, SLOW_MIN_SAMPLES)
    rule = StopRule(target_rel_ci=0.02, min_samples=floor,
                    budget_s=max(budget_s / (2 * rounds), 1e-3))
    ref_samples: list[float] = []
    cand_samples: list[float] = []
    for _ in range(rounds):
        for fn, sink, label in ((reference, ref_samples, "eager"),
                                (candidate, cand_samples, "candidate")):
            m = measure(fn, device=device, rule=rule, threads=threads, warmup_s=0.0,
                        name=f"optimize:{label}")
            sink.extend(m.samples)
    return Paired(tuple(ref_samples), Stats.from_samples(cand_samples),
                  compare(ref_samples, cand_samples))


def final_round(forwards: Mapping[str, Callable[[], Any]], *, device: str, threads: int,
                budget_s: float) -> dict[str, Stats]:
    """Time the finalists against each other in alternating rounds (A, B, C, A, B, C) within
    about ``budget_s``: one time window for all, so the fastest is chosen under one load."""
    rule = StopRule(target_rel_ci=0.02, min_samples=MIN_SAMPLES_PER_ROUND,
                    budget_s=max(budget_s / (ROUNDS * len(forwards)), 1e-3))
    samples: dict[str, list[float]] = {name: [] for name in forwards}
    for _ in range(ROUNDS):
        for name, fn in forwards.items():
            samples[name].extend(measure(fn, device=device, rule=rule, threads=threads,
                                         warmup_s=0.0, name=f"optimize:final:{name}").samples)
    return {name: Stats.from_samples(s) for name, s in samples.items()}


class PeakMemory:
    """Peak memory above the level at entry: CPU resident set size (polled every 1 ms in a
    thread) or, on CUDA, torch's peak allocated bytes. Read ``bytes`` after the block."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes: int | None = None
        self._stop = threading.Event()
        self._peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device == "cpu":
            import psutil

            self._process = psutil.Process()
            self._start = self._peak = self._process.memory_info().rss
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        else:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(RSS_POLL_S)

    def __exit__(self, *exc_info: object) -> None:
        if self.device == "cpu":
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._process.memory_info().rss)
        else:
            import torch

            torch.cuda.synchronize(self.device)
            self._peak = torch.cuda.max_memory_allocated(self.device)
        self.bytes = max(0, self._peak - self._start)


@contextmanager
def quiet(record: bool = True) -> Iterator[list[warnings.WarningMessage]]:
    """Silence the process's stdout/stderr (compilers and exporters print at the file
    descriptor level); yields the Python warnings raised inside when ``record``, else
    ignores them (cheaper while timing)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always" if record else "ignore")
                yield caught
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def warning_notes(caught: list[warnings.WarningMessage], limit: int = 2,
                  width: int = 200) -> list[str]:
    """The first ``limit`` distinct warnings, each on one line of at most ``width`` chars;
    deprecation warnings are left out, as Python's default filters do."""
    notes: list[str] = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning):
            continue
        text = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        text = text if len(text) <= width else text[: width - 3] + "..."
        if text not in notes:
            notes.append(text)
        if len(notes) == limit:
            break
    return notes
