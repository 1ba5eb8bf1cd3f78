"""Ground truth per kernel for perfcast's runtime: the ``perfcast`` target's kernels are
the compiled program's steps, one to one, so each step's measured time (the timed
dispatch, :meth:`perfcast.runtime.CompiledModel.run_timed`) pairs with the kernel at the
same position; no alignment is needed. Each step's time is its median over iterations.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from perfcast.estimate.efficiency import EfficiencyModel
from perfcast.estimate.result import Estimate
from perfcast.frontends.torch_export import split_inputs
from perfcast.hardware import HardwareSpec
from perfcast.validate.kernels import KernelMatch, KernelReport, _batch_of


def measure_steps(compiled: Any, example_inputs: Any, *, estimate: Estimate,
                  iterations: int = 5, warmup: int = 2,
                  batch: int | None = None) -> KernelReport:
    """Time every step of ``compiled`` and pair it with ``estimate``'s kernel (target
    ``perfcast``, estimated from the same model)."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if estimate.target != "perfcast":
        raise ValueError(f"runtime steps pair with a perfcast estimate, got target "
                         f"{estimate.target!r}")
    steps = compiled.program.steps
    kinds = [k.kernel.step for k in estimate.kernels]
    if kinds != [s.kind for s in steps]:
        raise ValueError(f"the estimate's {len(kinds)} kernels do not line up with the "
                         f"program's {len(steps)} steps")
    args, kwargs = split_inputs(example_inputs)
    for _ in range(warmup):
        compiled.run_timed(*args, **kwargs)
    runs, walls = [], []
    for _ in range(iterations):
        start = time.perf_counter()
        runs.append(compiled.run_timed(*args, **kwargs)[1])
        walls.append(time.perf_counter() - start)
    measured = [statistics.median(ts) for ts in zip(*runs, strict=True)]
    matches = [KernelMatch(
        kernel=k.kernel.name, op=k.kernel.op,
        category=str(k.kernel.category) if k.kernel.category else None,
        module=k.kernel.module, predicted_s=float(np.max(k.time_s)), measured_s=seconds,
        measured_ops=(step.kind,))
        for k, step, seconds in zip(estimate.kernels, steps, measured, strict=True)]
    return KernelReport(estimate.model, compiled.threads or 1,
                        batch or _batch_of(example_inputs), matches, {},
                        statistics.median(walls), engine="perfcast")


def measure_runtime_target(target: str, *, batch: int = 1, seq_len: int = 32,
                           threads: int | None = None, hardware: HardwareSpec | None = None,
                           efficiency: EfficiencyModel | None = None, iterations: int = 5,
                           warmup: int = 2, backend: str = "auto") -> KernelReport:
    """Build ``target`` on CPU (random weights), compile it with perfcast's runtime,
    estimate its ``perfcast`` kernels on ``hardware`` (default: ``local`` scaled to the
    thread count) with ``efficiency`` and time its steps."""
    import torch

    import perfcast.runtime as rt
    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.frontends import load_target
    from perfcast.hardware import load_spec
    from perfcast.hardware.detect import scale_to_threads

    threads = threads or torch.get_num_threads()
    loaded = load_target(target, batch=batch, seq_len=seq_len, device="cpu")
    compiled = rt.compile(loaded.model, loaded.example_inputs, backend=backend,
                          threads=threads, name=loaded.name)
    prepared = prepare(loaded.model, loaded.example_inputs, name=loaded.name)
    spec = hardware or scale_to_threads(load_spec("local"), threads)
    estimate = estimate_prepared(prepared, spec, target="perfcast", efficiency=efficiency)
    return measure_steps(compiled, loaded.example_inputs, estimate=estimate,
                         iterations=iterations, warmup=warmup, batch=batch)
