"""Environment capture, fingerprints and hardware keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from perfcast.bench import environment
from perfcast.bench.environment import Environment, capture_environment, gpu_l2_bytes

H100 = "NVIDIA H100 80GB HBM3"
UUID = "0a1b2c3d-0000-0000-0000-000000000000"  # str() of torch's device uuid


def _env(**changes: dict) -> Environment:
    hardware = {"cpu_model": "AMD EPYC", "physical_cores": 2, "logical_cpus": 2,
                "memory_bytes": 25276502016, "gpus": []}
    software = {"python": "3.11.7", "torch": "2.13.0", "torch_cuda": None,
                "git_commit": "a" * 40, "perfcast": "0.1.0"}
    settings = {"torch_threads": 2, "gpus": [], "cpu_freq_mhz": {"current": 2596.0}}
    for part, values in changes.items():
        {"hardware": hardware, "software": software, "settings": settings}[part].update(values)
    return Environment(hardware, software, settings)


def test_capture_on_this_machine() -> None:
    start = time.perf_counter()
    env = capture_environment()
    assert time.perf_counter() - start < 1.5  # torch is already imported here
    hw, sw, st = env.hardware, env.software, env.settings
    assert hw["cpu_model"] and hw["logical_cpus"] >= 1 and hw["memory_bytes"] > 0
    assert sw["python"] == ".".join(map(str, sys.version_info[:3]))
    assert sw["torch"] == torch.__version__ and sw["torch_cuda"] == torch.version.cuda
    assert st["torch_threads"] == torch.get_num_threads()
    assert sw["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", sw["git_commit"])
    assert sw["git_dirty"] in (None, True, False)
    if not torch.cuda.is_available():
        assert hw["gpus"] == [] and st["gpus"] == [] and gpu_l2_bytes() is None
    assert re.fullmatch(r"[0-9a-f]{16}", env.fingerprint())
    assert re.fullmatch(r"[a-z0-9_-]+", env.hardware_key())


def test_threads_argument_and_env_vars(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    env = capture_environment(threads=1)
    assert env.settings["torch_threads"] == 1
    assert env.settings["env"]["OMP_NUM_THREADS"] == "1"
    assert "MKL_NUM_THREADS" not in env.settings["env"]


def test_round_trip_through_json() -> None:
    env = capture_environment()
    data = json.loads(json.dumps(env.to_dict()))
    assert data["fingerprint"] == env.fingerprint()
    assert data["hardware_key"] == env.hardware_key()
    assert Environment.from_dict(data) == env


def test_fingerprint_ignores_clocks_commit_and_version() -> None:
    base = _env()
    same = _env(software={"git_commit": "b" * 40, "perfcast": "9.9"},
                settings={"cpu_freq_mhz": {"current": 3100.0}},
                hardware={"memory_bytes": 25276502016 + (100 << 20)})
    assert same.fingerprint() == base.fingerprint()
    assert base.differences(same) == []


def test_differences_name_what_changed() -> None:
    base = _env()
    other = _env(software={"torch": "2.12.1"}, settings={"torch_threads": 1})
    assert other.fingerprint() != base.fingerprint()
    assert base.differences(other) == ["torch 2.13.0 vs 2.12.1", "threads 2 vs 1"]
    gpu = _env(hardware={"gpus": [{"name": H100, "memory_bytes": 85 << 30}]},
               software={"torch_cuda": "12.8"})
    assert base.differences(gpu) == [f"gpus none vs {H100} 85 GiB", "cuda none vs 12.8"]


@pytest.mark.parametrize(
    ("model", "cpus", "gpus", "key"),
    [
        ("AMD EPYC", 2, 0, "amd-epyc-2c"),
        ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", 208, 8,
         "intel-xeon-platinum-8481c-208c_nvidia-h100-80gb-hbm3-x8"),
        ("AMD EPYC 7763 64-Core Processor", 16, 1, "amd-epyc-7763-16c_nvidia-h100-80gb-hbm3-x1"),
    ],
)
def test_hardware_key(model: str, cpus: int, gpus: int, key: str) -> None:
    gpu = {"name": H100, "memory_bytes": 80 << 30}
    env = _env(hardware={"cpu_model": model, "logical_cpus": cpus, "gpus": [gpu] * gpus})
    assert env.hardware_key() == key


def test_unreadable_facts_become_none(monkeypatch, tmp_path: Path) -> None:
    def broken() -> None:
        raise OSError("no /proc")

    monkeypatch.setattr(environment, "read_cpu_facts", broken)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git
    env = capture_environment(repo=tmp_path)
    assert env.hardware["cpu_model"] is None and env.hardware["logical_cpus"] is None
    assert env.software["git_commit"] is None and env.software["git_dirty"] is None
    assert env.hardware_key() == "unknown-0c"


def test_git_state(tmp_path: Path) -> None:
    assert capture_environment(repo=tmp_path).software["git_commit"] is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    clean = capture_environment(repo=tmp_path).software
    assert (clean["git_commit"], clean["git_dirty"]) == (head, False)
    (tmp_path / "a.txt").write_text("b")
    assert capture_environment(repo=tmp_path).software["git_dirty"] is True


def _fake_torch() -> types.SimpleNamespace:
    props = types.SimpleNamespace(name=H100, total_memory=80 << 30, L2_cache_size=50 << 20,
                                  multi_processor_count=132, major=9, minor=0,
                                  uuid=UUID)
    cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2,
                                 get_device_properties=lambda i: props)
    return types.SimpleNamespace(
        __version__="2.13.0+cu128", version=types.SimpleNamespace(cuda="12.8"),
        backends=types.SimpleNamespace(cudnn=types.SimpleNamespace(version=lambda: 91000)),
        cuda=cuda, get_num_threads=lambda: 4, get_num_interop_threads=lambda: 4,
    )


def _fake_nvml() -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    clocks = {1: 1980, 2: 2619}
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None
    nvml.nvmlSystemGetDriverVersion = lambda: "570.86.15"
    nvml.nvmlDeviceGetHandleByUUID = {f"GPU-{UUID}": "handle"}.__getitem__  # NVML's spelling
    nvml.nvmlDeviceGetClockInfo = lambda handle, kind: clocks[kind] // 2
    nvml.nvmlDeviceGetMaxClockInfo = lambda handle, kind: clocks[kind]
    nvml.nvmlDeviceGetPowerManagementLimit = lambda handle: 700_000
    nvml.nvmlDeviceGetPersistenceMode = lambda handle: 1
    return nvml


def test_gpu_facts_from_torch_and_nvml(monkeypatch) -> None:
    monkeypatch.setattr(environment, "_torch", _fake_torch)
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    env = capture_environment()
    assert env.hardware["gpus"][1] == {
        "index": 1, "name": H100, "memory_bytes": 80 << 30, "l2_bytes": 50 << 20,
        "compute_capability": "9.0", "driver": "570.86.15", "sm_count": 132,
    }
    assert env.settings["gpus"][0] == {
        "index": 0, "sm_clock_mhz": 990, "sm_clock_max_mhz": 1980, "mem_clock_mhz": 1309,
        "mem_clock_max_mhz": 2619, "power_limit_w": 700.0, "persistence_mode": True,
    }
    assert (env.software["torch_cuda"], env.software["cudnn"]) == ("12.8", 91000)
    assert env.settings["torch_threads"] == 4
    assert env.hardware_key().endswith("_nvidia-h100-80gb-hbm3-x2")
    assert gpu_l2_bytes(1) == 50 << 20


def test_gpu_settings_none_without_nvml(monkeypatch) -> None:
    monkeypatch.setattr(environment, "_torch", _fake_torch)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    env = capture_environment()
    assert env.hardware["gpus"][0]["driver"] is None
    assert env.settings["gpus"][0]["sm_clock_mhz"] is None
    assert env.hardware["gpus"][0]["sm_count"] == 132
