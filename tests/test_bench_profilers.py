"""torch.profiler summaries and Nsight command wrapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perfcast.bench import profilers
from perfcast.bench.profilers import (
    ProfilerUnavailable,
    find_tool,
    torch_profile,
    wrap_command,
)


def _matmul_relu():
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    return lambda: torch.relu(a @ b)


def test_torch_profile_on_cpu(tmp_path: Path) -> None:
    trace = tmp_path / "traces" / "deep" / "case.json"
    profile = torch_profile(_matmul_relu(), trace_path=trace, iterations=3, nvtx_name="case")
    assert "traceEvents" in json.loads(trace.read_text())
    by_name = {r.name: r for r in profile.rows}
    assert by_name["aten::mm"].calls == 3 and by_name["aten::relu"].calls == 3
    assert sum(r.share for r in profile.rows) == pytest.approx(1.0)
    assert [r.self_s for r in profile.rows] == sorted((r.self_s for r in profile.rows),
                                                      reverse=True)
    mm = by_name["aten::mm"]
    assert mm.mean_s == pytest.approx(mm.total_s / 3) and mm.self_s <= mm.total_s
    assert "aten::mm" in profile.table() and len(profile.table(top=1).splitlines()) == 2
    assert json.loads(json.dumps(profile.to_dict()))["trace_path"] == str(trace)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA fallback")
def test_torch_profile_cuda_request_without_cuda(tmp_path: Path) -> None:
    profile = torch_profile(_matmul_relu(), trace_path=tmp_path / "t.json", iterations=2,
                            device="cuda")
    assert {r.name: r.calls for r in profile.rows}["aten::mm"] == 2


def _fake_tool(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return tool


@pytest.fixture
def no_tools(monkeypatch, tmp_path: Path) -> Path:
    """An empty PATH and no install directories to search."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(profilers, "TOOL_DIRS", {})
    return empty


def test_wrap_command_with_tools_on_path(no_tools: Path, tmp_path: Path) -> None:
    nsys, ncu = _fake_tool(no_tools, "nsys"), _fake_tool(no_tools, "ncu")
    argv = ["python", "-m", "perfcast", "bench", "run"]
    out = tmp_path / "prof"
    assert wrap_command("nsys", argv, out) == [
        str(nsys), "profile", "--trace=cuda,nvtx,osrt", "--force-overwrite=true",
        "-o", str(out), *argv,
    ]  # fmt: skip
    assert wrap_command("ncu", argv, out) == [
        str(ncu), "--nvtx", "--set", "full", "-f", "-o", str(out), *argv,
    ]  # fmt: skip


def test_find_tool_searches_install_dirs(no_tools: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "nsight-compute"
    _fake_tool(root / "2024.1.0", "ncu")
    newest = _fake_tool(root / "2025.2.1", "ncu")
    monkeypatch.setattr(profilers, "TOOL_DIRS", {"ncu": (str(root / "*"),)})
    assert find_tool("ncu") == str(newest)
    assert find_tool("nsys") is None


def test_missing_tool(no_tools: Path) -> None:
    with pytest.raises(ProfilerUnavailable) as err:
        wrap_command("nsys", ["python"], Path("out"))
    message = str(err.value)
    assert message.startswith("nsys (Nsight Systems) is not installed or not on PATH; "
                              "install NVIDIA Nsight Systems")
    assert message.endswith("or use --profile torch")
    with pytest.raises(ProfilerUnavailable, match=r"ncu \(Nsight Compute\)"):
        wrap_command("ncu", ["python"], Path("out"))


@pytest.mark.parametrize("tool", ["torch", "vtune"])
def test_unknown_tool(tool: str) -> None:
    with pytest.raises(ValueError, match="torch, nsys, ncu"):
        wrap_command(tool, ["python"], Path("out"))
