"""``optimize(model, example_inputs)``: enumerate, rank, build, check, measure, choose.

1. Enumerate the candidates; each one that does not apply here is skipped with its reason.
2. Run eager once: its outputs are the reference every candidate is checked against.
3. Rank the rest (:mod:`perfcast.optimize.rank`); predicted-slower ones are skipped.
4. In rank order, while the budget lasts: build the candidate and call it once (an
   exception marks it failed, with the reason, and the next one starts); compare its
   outputs with eager's (beyond tolerance: rejected, with the error); time it against
   eager in alternating rounds and keep the comparison.
5. Choose among the candidates significantly faster than eager (``compare`` verdict
   "faster"): the up to three largest speedups are timed against each other in
   alternating rounds (one time window, one load) and the lowest median wins; when the
   runner-up is the same speed (verdict "same") and more accurate, the runner-up. Without
   budget for that round, the largest speedup over the eager baseline. None faster: eager.

The budget is checked before each candidate starts: a long compilation that starts inside
it may end past it.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfcast.bench import MeasureError, StopRule, Verdict, compare, measure
from perfcast.bench.stats import Stats, format_seconds
from perfcast.bench.timer import torch_threads
from perfcast.frontends.errors import summarize_exception
from perfcast.optimize.candidates import CANDIDATES, Candidate, ModelFacts, Setting
from perfcast.optimize.check import (
    TOLERANCES,
    OutputMismatch,
    compare_outputs,
    flatten_outputs,
    tolerance_for,
)
from perfcast.optimize.machine import (
    default_hardware,
    describe,
    device_of,
    load_notes,
    native_bf16,
)
from perfcast.optimize.measure import (
    PeakMemory,
    final_round,
    paired_timing,
    quiet,
    warning_notes,
)
from perfcast.optimize.rank import NOT_PROMISING, predict, promising, rank
from perfcast.optimize.record import Recorder
from perfcast.optimize.result import CandidateResult, OptimizeReport

TIMING_SHARE = 0.5  # of the budget left per candidate, the part its timing may use
MIN_SLICE_S, MAX_SLICE_S = 1.0, 20.0  # timing per candidate (eager + candidate rounds)
MIN_START_S = 5.0  # a candidate starts only with at least this much budget left...
START_CALLS = 8  # ...and at least this many eager first-call times
FINALISTS = 3  # significantly faster candidates timed against each other at the end


class OptimizeError(ValueError):
    """Bad input to :func:`optimize`: a model that fails in eager mode, unknown names."""


def optimize(model: Any, example_inputs: Any, *, budget_s: float = 300.0,
             threads: int | None = None, hardware: Any = None, efficiency: Any = None,
             candidates: Sequence[Candidate] | None = None, only: Iterable[str] | None = None,
             skip: Iterable[str] | None = None, tolerances: Mapping[str, float] | None = None,
             measure_all: bool = False, max_timing_s: float = MAX_SLICE_S,
             store: Any = None, name: str = "model",
             params: Mapping[str, Any] | None = None, command: str = "perfcast.optimize",
             progress: Callable[[str], None] | None = None) -> OptimizeReport:
    """Find the fastest way to run ``model`` on ``example_inputs`` here; see the module doc.

    ``hardware`` (a spec) and ``efficiency`` feed the estimator (default: this CPU, scaled
    to ``threads``, theoretical efficiency; a GPU's catalog spec). ``only``/``skip`` select
    candidates by name; ``tolerances`` overrides per-dtype tolerances; ``measure_all``
    measures predicted-slower candidates too; ``max_timing_s`` caps the timing of one
    candidate (eager and candidate rounds together). With ``store``, the run and every
    candidate are recorded (``params`` identify the workload there).
    """
    import torch

    start = time.perf_counter()
    if not budget_s > 0:
        raise OptimizeError(f"budget_s must be > 0 seconds, got {budget_s!r}")
    if not max_timing_s > 0:
        raise OptimizeError(f"max_timing_s must be > 0 seconds, got {max_timing_s!r}")
    for key, value in (tolerances or {}).items():
        if key not in TOLERANCES or not value > 0:
            raise OptimizeError(f"tolerance {key}={value!r}: the dtype must be one of "
                                f"{', '.join(TOLERANCES)} and the value > 0")
    if isinstance(example_inputs, Mapping):
        raise OptimizeError("optimize needs positional example inputs (a tensor or a tuple), "
                            "not keyword inputs")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    pool = _select(list(candidates or CANDIDATES), only, skip)
    device = device_of(inputs)
    threads = threads or torch.get_num_threads()
    say = progress or (lambda message: None)
    load = os.getloadavg()[0]
    with torch_threads(threads):
        setting = Setting(device, threads, native_bf16(device), ModelFacts.of(model))
        spec = hardware if hardware is not None else default_hardware(device, threads)
        results = {c.name: CandidateResult(c.name, c.description, "skipped",
                                           c.precision or setting.facts.dtype) for c in pool}
        recorder = None
        if store is not None:
            recorder = Recorder(store, command=command, threads=threads,
                                params={"model": name, **(params or {})},
                                meta={"model": name, "device": device, "budget_s": budget_s})
        options = _Options(start + budget_s, max_timing_s, tolerances, measure_all)
        search = _Search(model, inputs, setting, options, results, recorder, say)
        try:
            report = search.run(pool, spec, efficiency, name)
        except BaseException:
            if recorder is not None:
                recorder.abort()
            raise
        report.budget_s, report.elapsed_s = budget_s, time.perf_counter() - start
        report.notes.extend(load_notes(load, threads))
        if recorder is not None:
            recorder.finish(report)
    return report


@dataclass(frozen=True)
class _Options:
    deadline: float  # perf_counter() time the budget ends
    max_timing_s: float
    tolerances: Mapping[str, float] | None
    measure_all: bool


@dataclass
class _Search:
    """One optimize run's state: the model, where it runs, the results so far."""

    model: Any
    inputs: tuple
    setting: Setting
    options: _Options
    results: dict[str, CandidateResult]
    recorder: Recorder | None
    say: Callable[[str], None]
    eager_fn: Callable[[], Any] = field(init=False)
    reference: list[np.ndarray] = field(init=False)
    eager_samples: list[float] = field(default_factory=list)
    forwards: dict[str, Callable[[], Any]] = field(default_factory=dict)  # timed ones
    finalists: list[tuple[float, str, Callable[[], Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def done(self, result: CandidateResult, hardware: str | None) -> None:
        if self.recorder is not None:
            self.recorder.add(result, hardware)

    def run(self, pool: list[Candidate], spec: Any, efficiency: Any,
            name: str) -> OptimizeReport:
        hw_name = getattr(spec, "name", None)
        applicable = []
        for cand in pool:
            reason = cand.applies(self.setting)
            if reason is None:
                applicable.append(cand)
            else:
                self.results[cand.name].reason = f"not applicable: {reason}"
                self.done(self.results[cand.name], hw_name)
        self.say("eager: reference outputs")
        eager_first_s = self._reference(next(c for c in pool if c.name == "eager"))
        self.say("ranking with the estimator")
        with quiet():
            predictions = predict(self.model, self.inputs, applicable, hardware=spec,
                                  efficiency=efficiency, name=name)
        ordered = rank(applicable, predictions)
        if any(p.theoretical for p in predictions.values()):
            self.notes.append("predictions are THEORETICAL (no calibration profile fits this "
                              "machine): candidates are not ordered or skipped by them; the "
                              "choice rests on measurement alone")
        todo = [c for c in ordered if c.name != "eager"
                and (self.options.measure_all or promising(predictions[c.name]))]
        for position, cand in enumerate(ordered, 1):
            result = self.results[cand.name]
            result.rank, result.prediction = position, predictions[cand.name]
            if cand.name == "eager":
                continue
            left = self.options.deadline - time.perf_counter()
            if cand not in todo:
                result.reason = (f"not promising: predicted {result.prediction.speedup:.2f}x "
                                 f"eager (< {NOT_PROMISING}x); measure_all / --all measures it")
            elif left < max(MIN_START_S, START_CALLS * eager_first_s):
                todo.remove(cand)
                result.reason = f"budget exhausted: {max(left, 0):.0f} s left when its turn came"
            else:
                todo.remove(cand)
                slice_s = min(self.options.max_timing_s,
                              max(MIN_SLICE_S, TIMING_SHARE * left / (len(todo) + 1)))
                self._candidate(cand, result, slice_s)
                gc.collect()
            self.done(result, hw_name)
        eager = self.results["eager"]
        if not self.eager_samples:  # nothing was paired with eager: time it alone
            self.eager_samples.extend(self._time_alone())
        eager.stats, eager.status = Stats.from_samples(self.eager_samples), "measured"
        self._against_baseline(eager.stats)
        self.done(eager, hw_name)
        chosen, forward = self._choose()
        self.results[chosen].chosen = True
        ranked = [c.name for c in ordered]
        listing = ([self.results[n] for n in ranked]
                   + [r for n, r in self.results.items() if n not in ranked])
        return OptimizeReport(model=name, device=self.setting.device,
                              hardware=describe(self.setting), threads=self.setting.threads,
                              budget_s=0.0, elapsed_s=0.0, candidates=listing, chosen=chosen,
                              reference=eager.stats, forward=forward or self.eager_fn,
                              estimator=hw_name or "", notes=self.notes)

    def _against_baseline(self, baseline: Stats) -> None:
        """Compare every timed candidate with the one eager baseline the table shows (its
        samples from all pairings), and keep the significantly faster ones as finalists."""
        for name, forward in self.forwards.items():
            result = self.results[name]
            assert result.stats is not None
            result.comparison = cmp = compare(baseline.samples, result.stats.samples)
            if cmp.verdict != Verdict.FASTER:
                result.reason = f"not significantly faster than eager ({cmp.verdict.value})"
                continue
            self.finalists.append((cmp.speedup, name, forward))
        self.finalists.sort(key=lambda f: -f[0])
        del self.finalists[FINALISTS:]

    def _choose(self) -> tuple[str, Callable[[], Any] | None]:
        """The finalist with the lowest median in a final alternating round (see above)."""
        if not self.finalists:
            return "eager", None
        forwards = {name: fn for _, name, fn in self.finalists}
        top = self.finalists[0][1]
        if len(forwards) == 1:
            return top, forwards[top]
        left = self.options.deadline - time.perf_counter()
        if left < MIN_START_S:
            self.notes.append(f"no budget left for a final round among {', '.join(forwards)}: "
                              f"chose {top}, the largest speedup over eager")
            return top, forwards[top]
        budget_s = min(self.options.max_timing_s, max(MIN_SLICE_S, TIMING_SHARE * left))
        self.say(f"final round: {', '.join(forwards)}")
        try:
            with quiet(record=False):
                stats = final_round(forwards, device=self.setting.device,
                                    threads=self.setting.threads, budget_s=budget_s)
        except MeasureError as exc:
            self.notes.append(f"final round failed ({exc}): chose {top}, the largest speedup")
            return top, forwards[top]
        for name, st in stats.items():
            self.results[name].final = st
        order = sorted(stats, key=lambda n: stats[n].median)
        win, second = order[0], order[1]
        note = ("final round (finalists timed alternately in one window): "
                + ", ".join(f"{n} {format_seconds(stats[n].median)}" for n in order)
                + f"; {win} is fastest")
        cmp = compare(stats[second].samples, stats[win].samples)
        if cmp.verdict != Verdict.FASTER:
            note += (f", but not significantly faster than {second} ({cmp.verdict.value}, "
                     f"ratio {cmp.ratio:.3f})")
        if cmp.verdict == Verdict.SAME and self._error(second) < self._error(win):
            note += f"; a tie, so the more accurate {second} is chosen"
            win = second
        self.notes.append(note)
        return win, forwards[win]

    def _error(self, name: str) -> float:
        error = self.results[name].error
        return error.max_rel if error is not None else 0.0

    def _reference(self, eager: Candidate) -> float:
        """Run eager once for the reference outputs; returns the time of that first call."""
        result = self.results["eager"]
        t0 = time.perf_counter()
        try:
            with quiet() as caught, PeakMemory(self.setting.device) as memory:
                self.eager_fn = eager.build(self.model, self.inputs, self.setting)
                out = self.eager_fn()
            self.reference = flatten_outputs(out)
        except Exception as exc:  # user code: one clear message instead of a traceback
            raise OptimizeError("the model fails in eager PyTorch, the reference every "
                                f"candidate is checked against: {summarize_exception(exc)}"
                                ) from exc
        result.build_s = time.perf_counter() - t0
        result.memory_bytes, result.notes = memory.bytes, warning_notes(caught)
        return result.build_s

    def _candidate(self, cand: Candidate, result: CandidateResult, slice_s: float) -> None:
        """Build, check and time one candidate into ``result``; keep it if it is a finalist."""
        self.say(f"{cand.name}: building")
        stage, caught = "build", []
        t0 = time.perf_counter()
        try:
            with quiet() as caught, PeakMemory(self.setting.device) as memory:
                forward = cand.build(self.model, self.inputs, self.setting)
                stage = "first call"
                out = forward()
        except Exception as exc:  # the candidate's own failure: report it, keep going
            result.status = "failed"
            result.reason = f"{stage} failed: {summarize_exception(exc)}"
            result.notes = warning_notes(caught)
            return
        result.build_s, result.memory_bytes = time.perf_counter() - t0, memory.bytes
        result.notes = warning_notes(caught)
        tol = tolerance_for(cand.precision, self.setting.facts.dtype, self.options.tolerances)
        try:
            result.error = compare_outputs(out, self.reference, tol)
        except OutputMismatch as exc:
            result.status, result.reason = "rejected", f"outputs differ from eager: {exc}"
            return
        if not result.error.ok:
            result.status = "rejected"
            result.reason = f"outputs differ from eager: {result.error.describe()}"
            return
        self.say(f"{cand.name}: timing against eager ({slice_s:.0f} s)")
        try:
            with quiet(record=False):
                paired = paired_timing(self.eager_fn, forward, device=self.setting.device,
                                       threads=self.setting.threads, budget_s=slice_s,
                                       call_s=self.results["eager"].build_s or 0.0)
        except MeasureError as exc:
            result.status, result.reason = "failed", f"timing failed: {exc}"
            return
        self.eager_samples.extend(paired.reference)
        result.status, result.stats = "measured", paired.candidate
        self.forwards[cand.name] = forward

    def _time_alone(self) -> tuple[float, ...]:
        budget_s = min(MIN_SLICE_S, self.options.max_timing_s)
        with quiet(record=False):
            m = measure(self.eager_fn, device=self.setting.device,
                        threads=self.setting.threads,
                        rule=StopRule(min_samples=5, budget_s=budget_s), name="optimize:eager")
        return m.samples


def _select(pool: list[Candidate], only: Iterable[str] | None,
            skip: Iterable[str] | None) -> list[Candidate]:
    """``pool`` restricted by ``only`` and ``skip``; eager always stays (it is the reference)."""
    import difflib

    names = [c.name for c in pool]
    if "eager" not in names:
        raise OptimizeError("the candidates must include 'eager', the reference")
    only_set, skip_set = set(only or ()), set(skip or ())
    for given in sorted(only_set | skip_set):
        if given not in names:
            close = difflib.get_close_matches(given, names, n=2, cutoff=0.5)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise OptimizeError(f"unknown candidate {given!r}{hint}; candidates: "
                                f"{', '.join(names)}")
    if "eager" in skip_set:
        raise OptimizeError("'eager' cannot be skipped: it is the reference")
    return [c for c in pool if c.name == "eager"
            or ((not only_set or c.name in only_set) and c.name not in skip_set)]
