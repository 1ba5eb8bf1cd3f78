"""``perfcast mcp``: serve perfcast's tools to MCP clients (stdio, or streamable HTTP)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from perfcast.app.security import display_url, server_token
from perfcast.cli.errors import fail
from perfcast.cli.options import PortOption, TokenOption
from perfcast.cli.store import DbOption


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def mcp(
    transport: Annotated[Transport, typer.Option(
        help="stdio: the client starts this command and talks over stdin/stdout; http: "
             "streamable HTTP at http://HOST:PORT/mcp.")] = Transport.stdio,
    host: Annotated[str, typer.Option(
        help="Address to bind (http). Anything but loopback needs --token.")] = "127.0.0.1",
    port: PortOption = 8765,
    token: TokenOption = None,
    db: DbOption = None,
) -> None:
    """Serve the MCP tools: hardware catalog, model analysis, LLM estimates and sweeps,
    benchmark runs and validation (read-only; nothing is executed)."""
    try:
        from perfcast.app.mcp_server import serve
    except ModuleNotFoundError as exc:
        fail(f"perfcast mcp needs the MCP Python SDK 2.x ({exc.name!r} is missing): "
             "pip install 'mcp>=2'")
    if transport is Transport.http:
        try:
            token = server_token(host, token)
        except ValueError as exc:
            fail(str(exc))
        typer.echo(f"perfcast MCP server on {display_url(host, port, '/mcp')}"
                   + ("; token required" if token else ""), err=True)
    serve(transport.value, host=host, port=port,
          token=token if transport is Transport.http else None, db=db)
