"""Options several subcommands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from perfcast.app.security import TOKEN_ENV

BatchOption = Annotated[int | None, typer.Option(
    min=1, help="Batch size of the example inputs; default: a factory's own, else 1.")]
SeqLenOption = Annotated[int | None, typer.Option(
    "--seq-len", min=1, help="Sequence length of token inputs; default: a factory's own, "
                             "else 128.")]
TokenOption = Annotated[str | None, typer.Option(
    help=f"Access token every HTTP request must carry (Authorization: Bearer TOKEN); "
         f"default: ${TOKEN_ENV}.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]
