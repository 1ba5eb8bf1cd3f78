"""The dashboard: HTML pages and their static assets, mounted on the API's FastAPI app.

Everything is served from the installed package: the pages and scripts from
``perfcast/app/static`` and Plotly from the ``plotly`` package's own ``plotly.min.js``,
so the dashboard works with no network at all. Each page is ``layout.html`` (head and
navigation, shared) around the page's own ``<name>.main.html``, followed by its scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC_DIR = Path(__file__).with_name("static")
PLOTLY_ROUTE = "/static/vendor/plotly.min.js"


@dataclass(frozen=True)
class Page:
    """One dashboard page: ``<name>.main.html`` and ``<name>.js`` in the static folder."""

    name: str
    title: str
    plots: bool = True  # loads Plotly

    def html(self, layout: str) -> str:
        """The complete page: the layout around this page's main block and scripts."""
        scripts = [*([PLOTLY_ROUTE] if self.plots else []), "/static/common.js",
                   f"/static/{self.name}.js"]
        tags = "\n".join(f'  <script src="{src}"></script>' for src in scripts)
        main = (STATIC_DIR / f"{self.name}.main.html").read_text().rstrip("\n")
        return (layout.replace("<!--title-->", self.title).replace("<!--main-->", main)
                .replace("<!--scripts-->", tags))


PAGES = {
    "/": Page("index", "perfcast dashboard", plots=False),
    "/llm": Page("llm", "LLM planner · perfcast"),
    "/analysis": Page("analysis", "Model analysis · perfcast"),
    "/runs": Page("runs", "Runs · perfcast"),
    "/accuracy": Page("accuracy", "Accuracy · perfcast"),
    "/system": Page("system", "System · perfcast"),
}


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
    from fastapi.responses import FileResponse, HTMLResponse
    from fastapi.staticfiles import StaticFiles

    plotly_js = plotly_js_path()
    layout = (STATIC_DIR / "layout.html").read_text()

    def page_route(html: str):
        def serve() -> HTMLResponse:
            return HTMLResponse(html)

        return serve

    for route, page in PAGES.items():
        app.add_api_route(route, page_route(page.html(layout)), methods=["GET"],
                          include_in_schema=False, name=f"page:{page.name}.html")
    app.add_api_route(
        PLOTLY_ROUTE,
        lambda: FileResponse(plotly_js, media_type="text/javascript",
                             headers={"Cache-Control": "max-age=86400"}),
        methods=["GET"], include_in_schema=False, name="plotly.min.js")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
