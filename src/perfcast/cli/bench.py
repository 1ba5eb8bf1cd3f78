"""``perfcast bench``: list, run, compare and report benchmarks kept in the results store.

Exit codes of ``run`` and ``compare``: 0 all fine, 1 a benchmark failed (raised, or its
check() failed), 2 bad input, 3 an expectation was missed or a target got slower,
4 nothing ran (everything skipped, or no common targets).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.errors import fail
from perfcast.cli.store import DbOption, open_store

app = typer.Typer(help="Time benchmarks, keep results in the store, compare runs.",
                  no_args_is_help=True)

PATH_HELP = "A benchmark file or directory of *.py files defining more targets; repeatable."
PathOption = Annotated[list[Path] | None, typer.Option("--path", help=PATH_HELP)]
EXTERNAL_PROFILERS = ("nsys", "ncu")


def _load_targets(paths: list[Path] | None) -> None:
    from perfcast.bench.benchmark import BenchmarkError, load_builtin_suites, load_path

    load_builtin_suites()
    try:
        for path in paths or []:
            load_path(path)
    except BenchmarkError as exc:
        fail(str(exc))


@app.command("list")
def list_targets(
    pattern: Annotated[list[str] | None, typer.Argument(
        help="Suites, targets or globs (e.g. micro, 'micro:gemm*'); default: all.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only targets with this tag.")]
    = None,
    path: PathOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print targets as JSON.")] = False,
) -> None:
    """The benchmark targets: suite:name, single or baseline/optimized pair, cases, tags."""
    from perfcast.bench.benchmark import BenchmarkError, select

    _load_targets(path)
    try:
        cases = select(pattern or [], tags=tag or [])
    except BenchmarkError as exc:
        fail(str(exc))
    targets = list({c.target.name: c.target for c in cases}.values())
    rows = [{"target": t.name, "kind": "pair" if t.is_pair else "single",
             "device": t.first.device, "cases": len(t.cases()),
             "params": {k: list(v) for k, v in t.params.items()}, "tags": list(t.tags),
             "description": t.description} for t in targets]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("target", "kind", "device", "cases", "params", "tags"):
        table.add_column(column, justify="right" if column == "cases" else "left")
    for r in rows:
        table.add_row(r["target"], r["kind"], r["device"], str(r["cases"]),
                      escape(", ".join(r["params"])), ", ".join(r["tags"]))
    Console().print(table)


@app.command("run")
def run(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Suites, targets or globs to run (e.g. micro:gemm pairs).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Keep cases with KEY=VALUE[,VALUE...]; repeatable.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only targets with this tag.")]
    = None,
    path: PathOption = None,
    db: DbOption = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name this run.")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", help="torch (trace + kernel table per case), nsys or ncu.")] = None,
    update_expectations: Annotated[bool, typer.Option(
        "--update-expectations", help="Record the measured pair speedups as this "
                                      "hardware's expectations.")] = False,
    expectations: Annotated[Path | None, typer.Option(
        "--expectations", help="Expectations directory (default: $PERFCAST_EXPECTATIONS or "
                               "benchmarks/expectations).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1,
                                                help="torch threads while timing.")] = None,
    budget: Annotated[float, typer.Option("--budget", min=0.01,
                                          help="Seconds of timing per case at most.")] = 2.0,
    target_ci: Annotated[float, typer.Option(
        "--target-ci", min=0.0001, max=1.0,
        help="Stop when the 95% CI of the median is this narrow (relative).")] = 0.02,
    min_samples: Annotated[int, typer.Option("--min-samples", min=2)] = 10,
    cold_cache: Annotated[bool, typer.Option(
        "--cold-cache", help="Evict the CPU caches before every sample.")] = False,
    cuda_graph: Annotated[bool, typer.Option(
        "--cuda-graph", help="Time CUDA-graph replays (CUDA targets).")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help='Print {"run_id", "results": [{"target", "params", "median_s", '
                       '"ci95_s", "n", ...}], "pairs": [...]}.')] = False,
) -> None:
    """Run benchmark cases, store every result, print a table (or JSON); see exit codes."""
    from perfcast.bench.benchmark import BenchmarkError, parse_param_filters, select
    from perfcast.bench.runner import ExitCode, RunOptions, run_cases
    from perfcast.bench.stats import StopRule
    from perfcast.store import StoreError

    if profile in EXTERNAL_PROFILERS:
        raise typer.Exit(_rerun_under(profile, db, run_id))
    if profile not in (None, "torch"):
        fail(f"unknown profiler {profile!r}; choose torch, nsys or ncu")
    _load_targets(path)
    try:
        cases = select(targets or [], params=parse_param_filters(param or []),
                       tags=tag or [])
        rule = StopRule(target_rel_ci=target_ci, min_samples=min_samples, budget_s=budget)
    except (BenchmarkError, ValueError) as exc:
        fail(str(exc))
    if not cases:
        fail("no benchmark case selected")
    store = open_store(db)
    options = RunOptions(rule=rule, threads=threads, cold_cache=cold_cache,
                         cuda_graph=cuda_graph, profile=profile,
                         update_expectations=update_expectations,
                         expectations_dir=expectations)
    command = shlex.join(["perfcast", *sys.argv[1:]])
    try:
        with _progress(len(cases), quiet=as_json) as advance:
            report = run_cases(cases, store=store, command=command, options=options,
                               run_id=run_id, on_result=advance)
    except (StoreError, ValueError) as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_run(report)
    if report.exit_code != ExitCode.OK:
        raise typer.Exit(report.exit_code)


def _rerun_under(tool: str, db: Path | None, run_id: str | None) -> int:
    """Re-run this command under Nsight (nsys/ncu); the child times without --profile."""
    from datetime import UTC, datetime

    from perfcast.bench.profilers import ProfilerUnavailable, wrap_command
    from perfcast.store import default_db_path

    argv = _strip_option(sys.argv[1:], "--profile")
    run_id = run_id or datetime.now(UTC).strftime(f"%Y%m%d-%H%M%S-{tool}")
    if "--run-id" not in argv:
        argv += ["--run-id", run_id]
    output = (db or default_db_path()).parent / "runs" / run_id / tool
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        command = wrap_command(tool, [sys.executable, "-m", "perfcast.cli", *argv], output)
    except (ProfilerUnavailable, ValueError) as exc:
        fail(str(exc))
    Console(stderr=True).print(f"running under {tool}: {escape(shlex.join(command))}")
    return subprocess.run(command, check=False).returncode


def _strip_option(argv: list[str], option: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


class _progress:
    """A rich progress bar on stderr advanced once per finished case side."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        from rich.progress import Progress

        self._bar = None if quiet else Progress(console=Console(stderr=True), transient=True)
        self._total = total

    def __enter__(self) -> Any:
        if self._bar is None:
            return None
        self._bar.start()
        task = self._bar.add_task("benchmarks", total=self._total)
        done: set[str] = set()

        def advance(result: Any) -> None:
            self._bar.update(task, description=escape(result.label))
            if result.case.id not in done:
                done.add(result.case.id)
                self._bar.advance(task)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_run(report: Any) -> None:
    from perfcast.bench.stats import format_seconds

    table = Table(box=box.SIMPLE_HEAD, title=f"run {report.run_id}")
    for column in ("case", "side", "status", "median", "±CI", "n", "GFLOP/s", "GB/s"):
        table.add_column(column, justify="left" if column in ("case", "side", "status")
                         else "right", overflow="fold")
    for r in report.results:
        m = r.measurement
        if m is None:
            table.add_row(escape(r.case.id), r.role or "", r.status, "", "", "", "", "")
            continue
        lo, hi = m.ci95_s
        flops = r.work.flops / m.median_s / 1e9 if r.work and r.work.flops else None
        gbps = r.work.bytes / m.median_s / 1e9 if r.work and r.work.bytes else None
        table.add_row(escape(r.case.id), r.role or "", r.status, format_seconds(m.median_s),
                      f"{(hi - lo) / 2 / m.median_s:.1%}", str(m.n),
                      f"{flops:.1f}" if flops else "", f"{gbps:.1f}" if gbps else "")
    console = Console()
    console.print(table)
    for r in report.results:
        if r.error:
            console.print(f"[red]{r.status}[/red] {escape(r.label)}: {escape(r.error)}")
    for p in report.pairs:
        style = {"missed": "red", "met": "green"}.get(p.verdict, "yellow")
        console.print(f"[{style}]{escape(p.case.id)}: {p.verdict}[/{style}] — "
                      f"{escape(p.message)}")
    for note in report.notes:
        console.print(escape(note))
    console.print(f"stored in run {report.run_id}; artifacts in {escape(str(report.run_dir))}")


@app.command("runs")
def runs(db: DbOption = None,
         limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The latest runs in the store, newest first."""
    store = open_store(db)
    rows = store.runs(limit=limit)
    store.close()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2, default=str))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("run", "status", "started", "results", "commit", "command"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.id, r.status, r.started_at, str(r.n_results),
                      (r.git_commit or "")[:10], escape(r.command))
    Console().print(table)


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run id.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id.")],
    db: DbOption = None,
    min_effect: Annotated[float, typer.Option(
        "--min-effect", min=0.0, max=1.0, help="Smallest relative change that counts.")] = 0.03,
    allow_env: Annotated[bool, typer.Option(
        "--allow-environment-change", help="Compare runs from different environments.")]
    = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help='Print {"run_a", "run_b", "results": [{"target", "params", '
                       '"median_a_s", "median_b_s", "ratio", "ratio_ci95", "p_value", '
                       '"verdict"}], "only_in_a", "only_in_b", "summary"}.')] = False,
) -> None:
    """Run B against run A per target: ratio of medians with 95% CI and a verdict."""
    from perfcast.bench.compare import RunCompareError, compare_runs
    from perfcast.bench.runner import ExitCode
    from perfcast.bench.stats import Verdict
    from perfcast.store import StoreError

    store = open_store(db)
    try:
        result = compare_runs(store, run_a, run_b, min_effect=min_effect,
                              allow_environment_change=allow_env)
    except (StoreError, RunCompareError, ValueError) as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_comparison(result)
    if not result.rows:
        raise typer.Exit(ExitCode.NOTHING_RAN)
    if result.count(Verdict.SLOWER):
        raise typer.Exit(ExitCode.REGRESSION)


def _print_comparison(result: Any) -> None:
    from perfcast.bench.stats import Verdict, format_seconds

    table = Table(box=box.SIMPLE_HEAD, title=f"{result.run_b.id} vs {result.run_a.id}")
    for column in ("target", "A", "B", "B/A", "95% CI", "verdict"):
        table.add_column(column, justify="left" if column == "target" else "right")
    colors = {Verdict.FASTER: "green", Verdict.SLOWER: "red", Verdict.NOISY: "yellow"}
    for row in result.rows:
        c = row.comparison
        params = ",".join(f"{k}={v}" for k, v in row.params.items())
        color = colors.get(c.verdict, "default")
        table.add_row(escape(f"{row.target}[{params}]" if params else row.target),
                      format_seconds(c.baseline_median), format_seconds(c.candidate_median),
                      f"{c.ratio:.3f}", f"{c.ratio_ci95[0]:.3f} – {c.ratio_ci95[1]:.3f}",
                      f"[{color}]{c.verdict}[/{color}]")
    console = Console()
    console.print(table)
    for text in result.environment_differences:
        console.print(f"[yellow]environment differs:[/yellow] {escape(text)}")
    for label, items in (("only in A", result.only_a), ("only in B", result.only_b)):
        if items:
            console.print(f"{label}: {escape(', '.join(items))}")


@app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="Run id, or 'latest'.")] = "latest",
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, json or csv.")]
    = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")]
    = None,
) -> None:
    """A stored run as Markdown, JSON or CSV."""
    from perfcast.bench.report import render_run
    from perfcast.store import StoreError

    store = open_store(db)
    try:
        if run_id == "latest":
            latest = store.latest_run()
            if latest is None:
                fail(f"no runs in {store.path}")
            run_id = latest.id
        text = render_run(store, run_id, fmt)
    except (StoreError, ValueError) as exc:
        fail(str(exc))
    finally:
        store.close()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
