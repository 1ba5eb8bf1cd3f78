"""The dashboard: served offline, and used in a real headless Chromium (Debian's,
driven by Playwright).

Each page is loaded from a live server on a loopback port over a temporary store seeded
with benchmark runs and validation predictions; the test checks that no console error
appears, changes an input, and checks that the plot and the numbers follow, against the
API's own answers. A screenshot of each page goes to ``$PERFCAST_ARTIFACTS/screenshots``
(default ``.perfcast/artifacts/screenshots`` in the repository). The browser tests are
skipped, with the reason, where Chromium is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from perfcast.app.pages import PAGES, PLOTLY_ROUTE, STATIC_DIR, plotly_js_path
from perfcast.bench.stats import Stats
from perfcast.store import Store

CHROMIUM = os.environ.get("PERFCAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

REPO = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("PERFCAST_ARTIFACTS", REPO / ".perfcast" / "artifacts")) / "screenshots"
READY_MS = 60_000
# Seeded benchmark history: (target, params, base median in s); runs 3 and 4 are 20% faster.
TARGETS = [("micro:gemm", {"n": 256}, 2e-3), ("micro:gemm", {"n": 512}, 1.5e-2),
           ("micro:softmax", {"n": 4096}, 4e-4)]
RUN_SCALES = [1.0, 1.01, 0.99, 0.8, 0.8]
# Seeded validation: (model, predicted s, measured s, confidence).
VALIDATION = [("mlp", 1.05e-3, 1.0e-3, "CALIBRATED"), ("resnet50", 2.4e-2, 3.0e-2, "INTERPOLATED"),
              ("gpt2", 9e-3, 1.2e-2, "THEORETICAL"), ("llama-tiny", 2.0e-3, 1.6e-3, "CALIBRATED")]


def _seed(path: Path) -> list[str]:
    """Five runs of three targets and four validation predictions; returns the run ids."""
    rng = np.random.default_rng(7)
    runs = []
    with Store(path) as store:
        env = store.environment_id("browser-test", "local", {"hardware": {"cpu": "test"}})
        for i, scale in enumerate(RUN_SCALES):
            run_id = store.begin_run(command=f"perfcast bench run micro (#{i})",
                                     environment_id=env, git_commit=f"{i:07d}deadbeef")
            for target, params, base in TARGETS:
                samples = (base * scale * (1 + 0.05 * rng.standard_normal(15))).tolist()
                stats = Stats.from_samples(samples, n_boot=200)
                store.add_result(run_id, target=target, params=params, status="ok",
                                 median_s=stats.median, ci_low_s=stats.ci95[0],
                                 ci_high_s=stats.ci95[1], n=stats.n, stats=stats.to_dict(),
                                 samples=samples)
            store.finish_run(run_id, "complete")
            runs.append(run_id)
        for name, predicted, measured, confidence in VALIDATION:
            store.add_prediction(target=f"validate:{name}", params={"batch": 1, "threads": 2},
                                 hardware="local", predicted_s=predicted, measured_s=measured,
                                 confidence=confidence, estimator_version="test",
                                 data={"predicted_by_category_s": {"gemm": predicted}})
    return runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    """A live API + dashboard over a seeded store: {"url", "runs"}."""
    import uvicorn

    from perfcast.app.api import create_app

    db = tmp_path_factory.mktemp("store") / "perfcast.db"
    runs = _seed(db)
    port = _free_port()
    config = uvicorn.Config(create_app(db_path=db), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the dashboard server did not start within 30 s")
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "runs": runs}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless; the test is skipped where it is not installed."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "PERFCAST_CHROMIUM to its path)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server) -> Iterator[object]:
    """A fresh page that records console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("requestfailed", lambda r: pg.errors.append(f"request failed: {r.url}"))
    yield pg
    context.close()


def _api(server: dict, path: str, body: dict | None = None):
    url = server["url"] + path
    response = httpx.post(url, json=body, timeout=60) if body is not None else \
        httpx.get(url, timeout=60)
    response.raise_for_status()
    return response.json()


def _open(page, server: dict, path: str) -> None:
    page.goto(server["url"] + path)
    _settle(page)


def _settle(page) -> None:
    """Wait until no API call is in flight and the error banner is empty."""
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=READY_MS)
    banner = page.locator("#error")
    if banner.count():
        assert banner.is_hidden(), f"error banner: {banner.text_content()}"
    assert page.errors == [], f"console errors: {page.errors}"


def _change(page, selector: str, value: str) -> None:
    """Set an input as a person would and wait until the page has updated."""
    before = int(page.evaluate("document.body.dataset.updates"))
    field = page.locator(selector)
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)
        field.dispatch_event("change")
    page.wait_for_function("n => Number(document.body.dataset.updates) > n && "
                           "document.body.dataset.busy === '0'", arg=before, timeout=READY_MS)
    _settle(page)


def _traces(page, plot_id: str) -> list[dict]:
    """The Plotly traces drawn in ``#plot_id`` (name, mode, x, y)."""
    return page.evaluate(
        "id => document.getElementById(id).data.map(t => ({name: t.name, mode: t.mode, "
        "type: t.type, x: Array.from(t.x || []), y: Array.from(t.y || [])}))", plot_id)


def _cell(page, metric: str, hardware: str) -> str:
    return page.locator(f'td[data-metric="{metric}"][data-hardware="{hardware}"]').inner_text()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _si(value: float, unit: str) -> str:
    """The page's si() in Python: 3 significant digits with an SI prefix."""
    scale, prefix = next((s, p) for s, p in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"),
                                             (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"),
                                             (1e-9, "n")) if abs(value) >= s)
    digits = f"{value / scale:#.3g}".rstrip(".")
    return f"{digits} {prefix}{unit}"


def test_pages_and_assets_are_served_offline(tmp_path):
    """Every page and everything it loads comes from this server; nothing from the web."""
    from fastapi.testclient import TestClient

    from perfcast.app.api import create_app

    client = TestClient(create_app(db_path=tmp_path / "perfcast.db"))
    for route in PAGES:
        page = client.get(route)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert "/static/common.js" in assets and "/static/style.css" in assets
        for asset in assets:
            if asset.startswith("/static/"):
                assert client.get(asset).status_code == 200, f"{route}: {asset}"
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), \
            f"{path.name} refers to another host"
    plotly = client.get(PLOTLY_ROUTE)
    assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
    assert plotly.content == plotly_js_path().read_bytes()


def test_index_links_every_page(page, server):
    _open(page, server, "/")
    links = page.locator(".index-list a").evaluate_all("as => as.map(a => a.pathname)")
    assert links == ["/llm", "/analysis", "/runs", "/accuracy", "/system"]
    version = _api(server, "/api/health")["version"]
    assert f"perfcast {version}" in page.locator("#version").inner_text()
    _shot(page, "index")


def test_llm_planner_follows_concurrency_and_layers(page, server):
    _open(page, server, "/llm?model=llama-3.1-8b&hardware=h100-sxm,h200&concurrency=16")
    page.wait_for_function("document.getElementById('pareto').data !== undefined",
                           timeout=READY_MS)
    _settle(page)
    body = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "precision": "bf16",
            "concurrency": 16, "isl": 1024, "osl": 1024}
    expected = _api(server, "/api/llm/estimate", body)
    assert _cell(page, "TTFT", "h100-sxm") == _si(expected["ttft_s"], "s")
    traces = _traces(page, "pareto")
    assert [t["name"] for t in traces] == ["h100-sxm bf16", "h200 bf16", "current concurrency"]
    star = traces[-1]
    assert star["y"][0] == pytest.approx(expected["throughput_per_gpu"])

    _change(page, "#concurrency", "64")
    expected64 = _api(server, "/api/llm/estimate", {**body, "concurrency": 64})
    assert _cell(page, "TTFT", "h100-sxm") == _si(expected64["ttft_s"], "s")
    assert expected64["ttft_s"] != expected["ttft_s"]
    star = _traces(page, "pareto")[-1]
    assert star["y"][0] == pytest.approx(expected64["throughput_per_gpu"])
    assert star["y"][0] > expected["throughput_per_gpu"]  # more batching, more tokens/GPU

    # selecting a layer group opens the layer view; clearing it returns to the system view
    assert page.evaluate("document.body.dataset.view") == "system"
    box = page.locator('#layers input[data-id="full_attention+mlp"]')
    box.check()
    assert page.evaluate("document.body.dataset.view") == "layer"
    assert page.locator("#layer-view").is_visible() and page.locator("#system-view").is_hidden()
    layer_rows = [r for r in expected64["layers"] if r["layer"] == "full_attention+mlp"
                  and r["phase"] == "prefill"]
    bars = {t["name"]: t["y"] for t in _traces(page, "layer-plot")}
    assert set(bars) == {f"full_attention+mlp: {r['part']}" for r in layer_rows}
    for r in layer_rows:  # first bar: h100-sxm prefill
        assert bars[f"full_attention+mlp: {r['part']}"][0] == pytest.approx(r["time_s"])
    _shot(page, "llm-layer-view")
    box.uncheck()
    assert page.evaluate("document.body.dataset.view") == "system"
    assert page.locator("#system-view").is_visible() and page.locator("#layer-view").is_hidden()

    # a measured engine profile: its name and the kernel time it covers are shown
    assert _cell(page, "kernel times", "h100-sxm") == "fitted efficiencies"
    _change(page, "#engine", "trtllm")
    measured = _api(server, "/api/llm/estimate", {**body, "concurrency": 64,
                                                  "engine": "trtllm"})
    assert _cell(page, "TTFT", "h100-sxm") == _si(measured["ttft_s"], "s")
    assert _cell(page, "kernel times", "h100-sxm").startswith("h100-sxm/trtllm (decode: ")
    assert "CALIBRATED" in _cell(page, "kernel times", "h200")
    assert page.errors == []
    _shot(page, "llm")


def _roofline_points(page) -> int:
    return sum(len(t["x"]) for t in _traces(page, "roofline") if t["mode"] == "markers")


def test_analysis_roofline_has_every_kernel(page, server):
    _open(page, server, "/analysis?model=llama-tiny&hardware=h100-sxm&target=eager")
    body = {"model": "llama-tiny", "hardware": ["h100-sxm"], "target": "eager"}
    eager = _api(server, "/api/analyze", body)[0]
    with_work = [k for k in eager["kernels"] if k["flops"] > 0 and k["bytes"] > 0]
    assert _roofline_points(page) == len(with_work)
    assert _cell(page, "kernels", "h100-sxm") == str(len(eager["kernels"]))
    assert _cell(page, "time", "h100-sxm") == _si(eager["totals"]["time_s"], "s")

    _change(page, "#target", "compile")
    fused = _api(server, "/api/analyze", {**body, "target": "compile"})[0]
    assert len(fused["kernels"]) < len(eager["kernels"])
    assert _roofline_points(page) == sum(k["flops"] > 0 and k["bytes"] > 0
                                         for k in fused["kernels"])
    assert _cell(page, "kernels", "h100-sxm") == str(len(fused["kernels"]))
    assert _cell(page, "time", "h100-sxm") == _si(fused["totals"]["time_s"], "s")

    # ticking a layer shows its kernels; unticking returns to the system view
    layer = "model.model.layers.0"
    box = page.locator(f'#layers input[data-id="{layer}"]')
    box.check()
    assert page.evaluate("document.body.dataset.view") == "layer"
    in_layer = [k for k in fused["kernels"] if k["layer"] == layer]
    assert page.locator("#layer-kernels tbody tr").count() == len(in_layer)
    names = {t["name"] for t in _traces(page, "roofline") if t["mode"] == "markers"}
    assert names == {layer, "other layers"}
    _shot(page, "analysis-layer-view")
    box.uncheck()
    assert page.evaluate("document.body.dataset.view") == "system"
    assert page.locator("#categories").is_visible()
    assert page.errors == []
    _shot(page, "analysis")


def test_runs_history_and_compare(page, server):
    _open(page, server, "/runs")
    history = _api(server, "/api/history?target=micro:gemm")
    medians = [t for t in _traces(page, "history") if t["mode"] == "lines+markers"]
    assert len(medians) == 2 and all(len(t["y"]) == len(RUN_SCALES) for t in medians)
    assert medians[0]["y"] == pytest.approx([p["median_s"] for p in
                                             history["series"][0]["points"]])
    bands = [t for t in _traces(page, "history") if t["mode"] == "lines"]
    assert len(bands) == 2 and len(bands[0]["y"]) == 2 * len(RUN_SCALES)

    _change(page, "#target", "micro:softmax")
    medians = [t for t in _traces(page, "history") if t["mode"] == "lines+markers"]
    assert [t["name"] for t in medians] == ["n=4096 on local"]
    assert page.locator("#history-table tbody tr").count() == 1

    oldest, newest = server["runs"][0], server["runs"][-1]
    _change(page, "#run-a", oldest)
    compared = _api(server, f"/api/runs/compare?a={oldest}&b={newest}")
    verdicts = page.locator("#compare-table tbody td:last-child").all_inner_texts()
    assert verdicts == [r["verdict"] for r in compared["results"]] == ["faster"] * 3
    ratios = _traces(page, "compare-plot")[0]["x"]
    assert ratios == pytest.approx([r["ratio"] for r in compared["results"]])
    _shot(page, "runs")


def test_accuracy_scatter_and_error_by_category(page, server):
    _open(page, server, "/accuracy")
    summary = _api(server, "/api/validation")
    mape = page.locator('#summary [data-metric="MAPE"]').inner_text()
    assert mape == f"{100 * summary['mape']:.1f} %"
    points = [t for t in _traces(page, "scatter") if t["mode"] == "markers"]
    assert sum(len(t["x"]) for t in points) == len(VALIDATION)
    bars = _traces(page, "by-group")[0]
    assert bars["x"] == sorted(summary["by_confidence"])
    assert bars["y"] == pytest.approx([summary["by_confidence"][c]["mape"] for c in bars["x"]])

    _change(page, "#group", "model")
    bars = _traces(page, "by-group")[0]
    assert bars["x"] == sorted(name for name, *_ in VALIDATION)
    assert bars["y"] == pytest.approx([summary["by_model"][m]["mape"] for m in bars["x"]])
    assert {t["name"] for t in _traces(page, "scatter") if t["mode"] == "markers"} == \
        {name for name, *_ in VALIDATION}
    _shot(page, "accuracy")


def test_system_page_compares_with_a_catalog_device(page, server):
    _open(page, server, "/system?compare=h100-sxm")
    detect = _api(server, "/api/hardware/detect")
    machine = page.locator("#machine").inner_text()
    assert detect["facts"]["model_name"] in machine
    assert f"{detect['facts']['physical_cores']} physical" in machine
    assert [t["name"] for t in _traces(page, "peaks")] == ["this machine", "h100-sxm"]
    hardware = {h["name"]: h for h in _api(server, "/api/hardware")}

    _change(page, "#compare", "mi300x")
    assert [t["name"] for t in _traces(page, "peaks")] == ["this machine", "mi300x"]
    local_fp32 = detect["spec"]["compute"]["fp32"]["dense"]
    ratio = hardware["mi300x"]["peak_flops"]["fp32"] / local_fp32
    shown = page.locator('#ratio [data-metric="fp32 peak"]').inner_text()
    assert shown == f"{ratio:,.1f} ×"
    system = _api(server, "/api/system")
    software = page.locator("#software").inner_text()
    assert f"Python\t{system['python']}" in software
    assert f"{system['store']['runs']} runs" in software
    _shot(page, "system")
