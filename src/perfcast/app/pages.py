"""The dashboard: HTML pages and their static assets, mounted on the API's FastAPI app.

Everything is served from the installed package: the pages and scripts from
``perfcast/app/static`` and Plotly from the ``plotly`` package's own ``plotly.min.js``,
so the dashboard works with no network at all.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC_DIR = Path(__file__).with_name("static")
PAGES = {
    "/": "index.html",
    "/llm": "llm.html",
    "/analysis": "analysis.html",
    "/runs": "runs.html",
    "/accuracy": "accuracy.html",
    "/system": "system.html",
}
PLOTLY_ROUTE = "/static/vendor/plotly.min.js"


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` that ships inside the installed ``plotly`` package."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError as exc:
        raise RuntimeError("the dashboard needs the 'plotly' package for plotly.min.js; "
                           "install perfcast's dependencies (pip install -e .)") from exc
    if not path.is_file():
        raise RuntimeError(f"plotly.min.js is missing from the installed plotly package "
                           f"(looked at {path}); reinstall plotly")
    return path


def mount_pages(app: FastAPI) -> None:
    """Add the dashboard pages (``/``, ``/llm``, ...) and ``/static`` assets to ``app``."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    plotly_js = plotly_js_path()

    def page_route(filename: str):
        path = STATIC_DIR / filename

        def serve() -> FileResponse:
            return FileResponse(path, media_type="text/html")

        return serve

    for route, filename in PAGES.items():
        app.add_api_route(route, page_route(filename), methods=["GET"],
                          include_in_schema=False, name=f"page:{filename}")
    app.add_api_route(
        PLOTLY_ROUTE,
        lambda: FileResponse(plotly_js, media_type="text/javascript",
                             headers={"Cache-Control": "max-age=86400"}),
        methods=["GET"], include_in_schema=False, name="plotly.min.js")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
