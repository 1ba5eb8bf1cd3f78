"""``perfcast serve``: the HTTP API and dashboard (FastAPI under uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from perfcast.cli.errors import fail
from perfcast.cli.options import PortOption, TokenOption
from perfcast.cli.store import DbOption


def serve(
    host: Annotated[str, typer.Option(
        help="Address to bind. Anything but loopback needs --token.")] = "127.0.0.1",
    port: PortOption = 8000,
    token: TokenOption = None,
    db: DbOption = None,
    max_upload_mb: Annotated[float, typer.Option(
        "--max-upload-mb", min=0.001, max=2048, help="Largest ONNX upload, in MiB.")] = 64.0,
) -> None:
    """Serve the API (/api, OpenAPI at /docs) and the dashboard on HOST:PORT."""
    from perfcast.app.security import LOOPBACK_NAMES, display_url, is_loopback, server_token

    try:
        token = server_token(host, token)
    except ValueError as exc:
        fail(str(exc))
    local = is_loopback(host)
    try:
        import uvicorn

        from perfcast.app.api import create_app
    except ModuleNotFoundError as exc:
        fail(f"perfcast serve needs {exc.name!r}: pip install fastapi uvicorn python-multipart")
    app = create_app(db_path=db, token=token, max_upload_bytes=int(max_upload_mb * (1 << 20)),
                     allowed_hosts=[*LOOPBACK_NAMES, host] if local else None)
    typer.echo(f"perfcast serving on {display_url(host, port, '/')} (API docs at /docs)"
               + ("; token required" if token else ""), err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
