"""``perfcast validate zoo``: capture, count, estimate and run every model of the zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from perfcast.cli.errors import fail


def zoo(
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Zoo model names to check (repeatable); default: all.")] = None,
    write: Annotated[Path | None, typer.Option(
        "--write", help="Write the Markdown coverage table here (docs/models.md).")] = None,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Exit 1 if this Markdown file differs from the fresh table.")] = None,
    runtime: Annotated[bool, typer.Option(
        "--runtime/--no-runtime", help="Run the perfcast runtime against eager.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
    list_models: Annotated[bool, typer.Option("--list", help="List the zoo and exit.")] = False,
) -> None:
    """Check every zoo model (see docs/models.md) and print or write the coverage table."""
    from perfcast.validate.coverage import check_zoo
    from perfcast.validate.coverage_report import coverage_markdown, summary
    from perfcast.zoo import ZooError, get_entry, zoo_entries

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    if list_models:
        for e in zoo_entries():
            out.print(f"zoo:{e.name:24s} {e.library:12s} {e.family}", soft_wrap=True)
        return
    try:
        entries = [get_entry(n) for n in only] if only else list(zoo_entries())
    except ZooError as exc:
        fail(str(exc))
    with err.status("checking the zoo ...") as status:
        rows = check_zoo(entries, runtime=runtime,
                         progress=lambda name: status.update(f"checking {name} ..."))
    page = coverage_markdown(rows)
    if write is not None:
        write.write_text(page)
        err.print(f"wrote {write}")
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        for key, value in summary(rows).items():
            out.print(f"{key:16s} {value}")
    if check is not None:
        old = check.read_text() if check.is_file() else ""
        if old != page:
            err.print(f"[red]error:[/red] {check} is out of date: run "
                      f"`perfcast validate zoo --write {check}`")
            raise typer.Exit(1)
