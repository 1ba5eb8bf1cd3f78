"""The ``perfcast`` command: one module per subcommand, each a thin call into the library."""

from __future__ import annotations

import typer

from perfcast import __version__
from perfcast.cli import (
    analyze,
    bench,
    calibrate,
    hw,
    llm,
    mcp,
    optimize,
    run,
    serve,
    track,
    validate,
)

app = typer.Typer(
    name="perfcast",
    help="Predict, measure and improve the performance of deep-learning models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(hw.app, name="hw")
app.add_typer(bench.app, name="bench")
app.add_typer(llm.app, name="llm")
app.add_typer(validate.app, name="validate")
app.command(name="analyze")(analyze.analyze)
app.command(name="calibrate")(calibrate.calibrate)
app.command(name="optimize")(optimize.optimize)
app.command(name="serve")(serve.serve)
app.command(name="mcp")(mcp.mcp)
app.command(name="track")(track.track)
app.command(name="run")(run.run)
app.command(name="compare-engines")(run.compare_engines)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perfcast {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Predict, measure and improve the performance of deep-learning models."""


def main() -> None:
    app()
