"""``perfcast mcp`` driven by the official SDK's client over stdio (and once over HTTP).

One server process answers every call of the session; its numbers are checked against the
CLI's ``--json`` output of the same request, run as separate processes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from typer.testing import CliRunner

from perfcast.cli.main import app
from perfcast.frontends.llm import model_names
from perfcast.hardware import catalog_names

PERFCAST = [sys.executable, "-m", "perfcast.cli"]
TOOLS = {"list_hardware", "show_hardware", "analyze", "llm_estimate", "llm_sweep",
         "list_runs", "compare_runs", "validation_llm", "validation_summary"}
LLM_ARGS = {"model": "llama-3.1-70b", "hardware": "h200", "tp": 4, "concurrency": 32,
            "precision": "fp8", "isl": 2048, "osl": 512}
LLM_CLI = ["llm", "estimate", "-m", "llama-3.1-70b", "-H", "h200", "--tp", "4", "-c", "32",
           "--precision", "fp8", "--isl", "2048", "--osl", "512", "--json"]
ANALYZE_ARGS = {"model": "mlp", "hardware": ["h100-sxm", "mi300x"], "batch": 4, "top": 0}
ANALYZE_CLI = ["analyze", "examples:mlp", "-H", "h100-sxm", "-H", "mi300x", "--batch", "4",
               "--json"]


def _text(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


async def _session(db: Path) -> dict[str, Any]:
    """Every call of the test, in order, over one stdio connection."""
    server = StdioServerParameters(command=PERFCAST[0], args=[*PERFCAST[1:], "mcp", "--db",
                                                              str(db)])
    out: dict[str, Any] = {}
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        out["init"] = await session.initialize()
        out["tools"] = (await session.list_tools()).tools
        out["llm"] = await session.call_tool("llm_estimate", LLM_ARGS)
        out["analyze"] = await session.call_tool("analyze", ANALYZE_ARGS)
        out["analyze_top"] = await session.call_tool(
            "analyze", {"model": "mlp", "hardware": ["h100-sxm"], "batch": 4, "top": 2})
        out["bad_schema"] = await session.call_tool("llm_estimate", {**LLM_ARGS, "tp": 0})
        out["bad_enum"] = await session.call_tool("llm_estimate",
                                                  {**LLM_ARGS, "hardware": "h100-foo"})
        out["bad_layout"] = await session.call_tool("llm_estimate", {**LLM_ARGS, "tp": 3})
        out["bad_run"] = await session.call_tool("compare_runs",
                                                 {"run_a": "nope", "run_b": "nope2"})
        out["after"] = await session.call_tool("llm_estimate", LLM_ARGS)
        out["runs"] = await session.call_tool("list_runs", {})
    return out


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("mcp") / "perfcast.db"
    cli = {name: subprocess.Popen([*PERFCAST, *argv], stdout=subprocess.PIPE, text=True)
           for name, argv in (("llm", LLM_CLI), ("analyze", ANALYZE_CLI))}
    out = anyio.run(_session, db)
    for name, proc in cli.items():
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, name
        out[f"cli_{name}"] = json.loads(stdout)
    return out


def test_tools_are_listed_with_descriptions_and_typed_schemas(calls):
    assert calls["init"].server_info.name == "perfcast"
    tools = {t.name: t for t in calls["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description) > 150, tool.name
        assert tool.annotations.read_only_hint is True
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
    # each description says when to pick a neighbour instead
    assert "llm_estimate" in tools["analyze"].description
    assert "llm_sweep" in tools["llm_estimate"].description
    assert "show_hardware" in tools["list_hardware"].description
    assert "validation_llm" in tools["validation_summary"].description
    props = tools["llm_estimate"].input_schema["properties"]
    assert tools["llm_estimate"].input_schema["required"] == ["model"]
    assert props["model"]["enum"] == model_names()
    assert props["hardware"]["enum"] == catalog_names()
    assert (props["tp"]["type"], props["tp"]["minimum"]) == ("integer", 1)
    analyze = tools["analyze"].input_schema["properties"]
    assert "mlp" in analyze["model"]["enum"] and "resnet50" in analyze["model"]["enum"]
    assert analyze["target"]["enum"] == ["eager", "compile", "perfcast"]
    assert analyze["hardware"]["items"]["enum"] == catalog_names()
    status = tools["list_runs"].input_schema["properties"]["status"]
    assert {"type": "null"} in status["anyOf"]


def test_llm_estimate_equals_the_cli_json(calls):
    result = calls["llm"]
    assert not result.is_error
    assert result.structured_content == calls["cli_llm"]
    assert json.loads(_text(result)) == calls["cli_llm"]
    est = result.structured_content
    assert (est["model"], est["hardware"], est["parallelism"]["tp"]) == (
        "llama-3.1-70b", "h200", 4)
    assert est["ttft_s"] > 0 and est["tpot_s"] > 0 and est["throughput_per_gpu"] > 0


def test_analyze_equals_the_cli_json(calls):
    result = calls["analyze"]
    assert not result.is_error
    estimates = result.structured_content["estimates"]
    assert estimates == calls["cli_analyze"]  # two devices: the CLI prints a list
    assert [e["hardware"] for e in estimates] == ["h100-sxm", "mi300x"]
    # the MLP 1024-4096-4096-1024 at batch 4: 2 FLOPs per multiply-add of each linear
    gemm = 2 * 4 * (1024 * 4096 + 4096 * 4096 + 4096 * 1024)
    assert estimates[0]["totals"]["flops_by_category"]["gemm"] == gemm + 4 * (4096 + 4096 + 1024)


def test_analyze_top_keeps_the_slowest_kernels(calls):
    full = calls["cli_analyze"][0]["kernels"]
    result = calls["analyze_top"].structured_content["estimates"][0]
    slowest = sorted(full, key=lambda k: k["time_s"], reverse=True)[:2]
    assert result["kernels"] == slowest
    assert result["kernels_omitted"] == len(full) - 2
    assert result["totals"] == calls["cli_analyze"][0]["totals"]


def test_bad_input_is_a_tool_error_naming_the_field_and_serving_goes_on(calls):
    for key in ("bad_schema", "bad_enum", "bad_layout", "bad_run"):
        assert calls[key].is_error, key
    assert "tp" in _text(calls["bad_schema"]) and "greater than or equal to 1" in _text(
        calls["bad_schema"])
    assert "hardware" in _text(calls["bad_enum"]) and "'h100-sxm'" in _text(calls["bad_enum"])
    assert "parallelism: tp=3 does not divide" in _text(calls["bad_layout"])
    assert "run_a: unknown run_a 'nope'" in _text(calls["bad_run"])
    assert calls["after"].structured_content == calls["cli_llm"]
    assert calls["runs"].structured_content == {"runs": []}


def test_http_transport_needs_a_token_off_loopback():
    result = CliRunner().invoke(app, ["mcp", "--transport", "http", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--token" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_answer(proc: subprocess.Popen, url: str) -> int:
    """Status of the first POST the server at ``url`` answers."""
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"perfcast mcp exited: {proc.stderr.read()}")
        try:
            return httpx.post(url, json={}).status_code
        except httpx.ConnectError:
            time.sleep(0.1)
    pytest.fail(f"perfcast mcp did not answer on {url} within 30 s")


def test_streamable_http_serves_the_same_tools(tmp_path):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    port, token = _free_port(), "t" * 24
    proc = subprocess.Popen([*PERFCAST, "mcp", "--transport", "http", "--port", str(port),
                             "--token", token, "--db", str(tmp_path / "p.db")],
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"

    async def session() -> tuple[set[str], dict[str, Any]]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("llm_estimate", {"model": "llama-3.1-8b"})
            return tools, result.structured_content

    try:
        assert _first_answer(proc, url) == 401  # no token
        tools, est = anyio.run(session)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert tools == TOOLS
    assert est["model"] == "llama-3.1-8b" and est["ttft_s"] > 0
