"""``perfcast run TARGET`` and ``perfcast compare-engines TARGET``: execute a model on the
perfcast runtime, check it against PyTorch, and time it beside other engines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.analyze import TARGETS_HELP
from perfcast.cli.errors import fail
from perfcast.cli.options import BatchOption, SeqLenOption

ThreadsOption = Annotated[int, typer.Option("--threads", min=1, help="Threads every engine "
                                                                     "uses.")]


def run(
    target: Annotated[str, typer.Argument(help=TARGETS_HELP)],
    backend: Annotated[str, typer.Option(
        "--backend", help="c (compiled kernels), numpy (reference) or auto (c if a compiler "
                          "works, else numpy).")] = "auto",
    threads: ThreadsOption = 1,
    batch: BatchOption = None,
    seq_len: SeqLenOption = None,
    passes: Annotated[bool, typer.Option(
        "--passes/--no-passes", help="Run the graph passes (fold, simplify, fuse, dce).")]
    = True,
    bench: Annotated[bool, typer.Option(
        "--bench", help="Also time perfcast and eager PyTorch (perfcast.bench.measure).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Compile TARGET (random weights) for the perfcast runtime, run it once, compare its
    outputs with PyTorch eager, and report the memory plan."""
    import numpy as np

    from perfcast.runtime.engines import flatten_outputs, max_abs_error

    if backend not in ("auto", "c", "numpy"):
        fail(f"--backend must be c, numpy or auto, got {backend!r}")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    loaded = _load(target, batch, seq_len)
    with err.status(f"compiling {loaded.name} for the perfcast runtime ..."):
        compiled = _compile(loaded, backend, threads, passes)
    import torch

    example = loaded.example_inputs
    inputs = {k: _numpy(v) for k, v in example.items()} if isinstance(example, Mapping) else \
        [_numpy(x) for x in _as_tuple(example)]
    got = flatten_outputs(list(_as_tuple(_call(compiled, inputs))))
    with torch.inference_mode():
        want = flatten_outputs(_call(loaded.model, example))
    error = max_abs_error(got, want)
    scale = max((float(np.max(np.abs(w))) for w in want if w.size), default=0.0)
    summary: dict[str, Any] = {
        "target": loaded.name, "backend": compiled.backend, "threads": threads,
        "outputs": [{"shape": list(g.shape), "dtype": str(g.dtype)} for g in got],
        "max_abs_err_vs_torch": error, "max_abs_output": scale,
        "steps": len(compiled.program.steps), "plan": compiled.plan_report.to_dict(),
        "passes": compiled.pass_report.summary() if compiled.pass_report else "off"}
    if bench:
        with err.status("timing ..."):
            summary["bench"] = _bench(compiled, inputs, loaded, threads)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_run(Console(highlight=False, soft_wrap=True), summary, compiled)


def _print_run(out: Console, s: dict[str, Any], compiled: Any) -> None:
    from collections import Counter

    out.print(f"[bold]{escape(s['target'])}[/bold] on the perfcast runtime "
              f"(backend {s['backend']}, {s['threads']} thread(s))")
    shapes = ", ".join(f"{o['dtype']}{o['shape']}" for o in s["outputs"])
    out.print(f"  outputs: {shapes}")
    out.print(f"  max |perfcast - torch| = {s['max_abs_err_vs_torch']:.3g} "
              f"(largest |output| {s['max_abs_output']:.3g})")
    kinds = Counter(step.kind for step in compiled.program.steps)
    out.print(f"  {s['steps']} steps: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    out.print(f"  memory: {compiled.plan_report.describe()}")
    if compiled.pass_report is not None:
        out.print(escape(compiled.pass_report.summary()), style="dim")
    if "bench" in s:
        b = s["bench"]
        out.print(f"  perfcast {b['perfcast_ms']:.3f} ms (95% CI {b['perfcast_ci_ms'][0]:.3f}"
                  f"-{b['perfcast_ci_ms'][1]:.3f}), eager {b['eager_ms']:.3f} ms: "
                  f"{b['speedup_vs_eager']:.2f}x")


def _bench(compiled: Any, inputs: list, loaded: Any, threads: int) -> dict[str, Any]:
    import torch

    from perfcast.bench import measure

    mine = measure(lambda: _call(compiled, inputs), threads=threads, name="perfcast")

    def eager() -> Any:
        with torch.inference_mode():
            return _call(loaded.model, loaded.example_inputs)

    ref = measure(eager, threads=threads, name="eager")
    return {"perfcast_ms": mine.median_s * 1e3,
            "perfcast_ci_ms": [x * 1e3 for x in mine.ci95_s],
            "eager_ms": ref.median_s * 1e3, "eager_ci_ms": [x * 1e3 for x in ref.ci95_s],
            "speedup_vs_eager": ref.median_s / mine.median_s}


def compare_engines(
    target: Annotated[str, typer.Argument(help=TARGETS_HELP)],
    threads: ThreadsOption = 1,
    batch: BatchOption = None,
    seq_len: SeqLenOption = None,
    engine: Annotated[list[str] | None, typer.Option(
        "--engine", "-e", help="Engines to time (repeatable): perfcast-c, perfcast-numpy, "
                               "eager, compile, onnxruntime. Default: all but "
                               "perfcast-numpy.")] = None,
    budget: Annotated[float, typer.Option(
        "--budget", min=0.1, help="Seconds of timing per engine.")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
    = False,
) -> None:
    """Time TARGET's forward pass on perfcast and on PyTorch eager, torch.compile and ONNX
    Runtime at the same thread count: median, 95% CI, speedup, error vs eager."""
    from perfcast.runtime.engines import DEFAULT_ENGINES, check_engines, compare_engines

    try:
        names = check_engines(engine or DEFAULT_ENGINES)
    except ValueError as exc:
        fail(str(exc))
    loaded = _load(target, batch, seq_len)
    if isinstance(loaded.example_inputs, Mapping):
        fail("compare-engines needs positional example inputs (a tensor or a tuple), "
             "not keyword inputs")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    with err.status(f"{loaded.name} ...") as status:
        results = _guard(lambda: compare_engines(
            loaded.model, _as_tuple(loaded.example_inputs), engines=names, threads=threads,
            budget_s=budget, progress=lambda msg: status.update(f"{loaded.name}: {msg} ...")))
    if as_json:
        typer.echo(json.dumps({"target": loaded.name, "threads": threads,
                               "results": [r.to_dict() for r in results]}, indent=2))
        return
    print_engine_table(Console(highlight=False), loaded.name, threads, results)


def print_engine_table(out: Console, name: str, threads: int, results: list) -> None:
    """Median, CI and speedup against eager of each engine."""
    eager = next((r.median_s for r in results if r.engine == "eager" and r.median_s), None)
    table = Table(title=f"{name}, {threads} thread(s)", box=box.SIMPLE_HEAD)
    for col in ("engine", "median ms", "95% CI ms", "vs eager", "max |err|", "setup s"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in results:
        if r.skipped:
            table.add_row(r.engine, "-", "-", "-", "-", escape(f"skipped: {r.skipped}"))
            continue
        speed = f"{eager / r.median_s:.2f}x" if eager else "-"
        table.add_row(r.engine, f"{r.median_s * 1e3:.3f}",
                      f"{r.ci95_s[0] * 1e3:.3f}-{r.ci95_s[1] * 1e3:.3f}", speed,
                      f"{r.max_abs_err:.2g}", f"{r.setup_s:.1f}")
    out.print(table)


def _load(target: str, batch: int | None, seq_len: int | None) -> Any:
    from perfcast.frontends import CaptureError, load_target

    try:
        return load_target(target, batch=batch, seq_len=seq_len, device="cpu")
    except CaptureError as exc:
        fail(str(exc))


def _compile(loaded: Any, backend: str, threads: int, passes: bool) -> Any:
    from perfcast.runtime.compile import compile

    return _guard(lambda: compile(loaded.model, loaded.example_inputs, backend=backend,
                                  threads=threads, passes=None if passes else False,
                                  name=loaded.name))


def _guard(fn: Any) -> Any:
    """Run ``fn``; the runtime's and capture's errors become one line and exit code 2."""
    from perfcast.frontends import CaptureError
    from perfcast.runtime.compile import BackendUnavailable, RuntimeInputError
    from perfcast.runtime.lower import RuntimeLoweringError

    try:
        return fn()
    except (CaptureError, RuntimeLoweringError, BackendUnavailable, RuntimeInputError,
            ValueError) as exc:
        fail(str(exc))


def _call(fn: Any, inputs: Any) -> Any:
    return fn(**inputs) if isinstance(inputs, Mapping) else fn(*_as_tuple(inputs))


def _as_tuple(inputs: Any) -> tuple:
    return tuple(inputs) if isinstance(inputs, list | tuple) else (inputs,)


def _numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
