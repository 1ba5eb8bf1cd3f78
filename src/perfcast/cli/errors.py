"""How every ``perfcast`` subcommand reports bad input: one line on stderr, exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape


def fail(message: str) -> NoReturn:
    """Print ``error: message`` to stderr and exit with code 2 (no traceback)."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)
