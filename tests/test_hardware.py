"""Tests for perfcast.hardware: catalog integrity, schema errors, detection and the hw CLI."""

from __future__ import annotations

import copy
import importlib.machinery
import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from perfcast.cli.hw import app
from perfcast.hardware import (
    PRECISIONS,
    CatalogError,
    HardwareError,
    HardwareSpec,
    UnknownHardwareError,
    UnsupportedPrecisionError,
    catalog_names,
    describe_local,
    detect_gpu,
    detect_local,
    list_specs,
    load_spec,
    load_spec_file,
    normalize_dtype,
)
from perfcast.hardware.catalog import CATALOG_DIR, alias_index, resolve_name
from perfcast.hardware.cpuinfo import CpuFacts, parse_cpuinfo, parse_size
from perfcast.hardware.detect import flops_per_cycle
from perfcast.hardware.loader import read_yaml

REQUIRED = {
    "gb300", "b300", "gb200", "b200", "h200", "h100-sxm", "h100-pcie", "h100-nvl", "a100-sxm-80gb",
    "a100-40gb", "l40s", "l4", "a10g", "rtx-4090", "rtx-6000-ada", "rtx-pro-6000",
    "jetson-agx-orin", "mi355x", "mi325x", "mi300x", "tpu-v5e", "tpu-v5p", "tpu-v6e", "gaudi3",
    "xeon-8480", "epyc-9654", "apple-m3-max", "graviton4",
}  # fmt: skip
CATALOG_FILES = sorted(CATALOG_DIR.glob("*.yaml"))


NUMERIC_KEYS = {
    "dense", "sparse", "capacity_bytes", "bandwidth_bytes_per_s", "tdp_w", "idle_w", "flop_j",
    "bandwidth_bytes_per_s_per_direction", "dram_byte_j", "value", "domain_size", "cores",
}  # fmt: skip


def _numeric_figures(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every number-valued field of a raw (unvalidated) spec mapping, with its field path."""
    if not isinstance(node, (dict, list)):
        return
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        sub = f"{path}.{key}".lstrip(".")
        if key in NUMERIC_KEYS and value is not None:
            yield sub, value
        else:
            yield from _numeric_figures(value, sub)


def test_catalog_has_every_requested_device() -> None:
    names = catalog_names()
    assert len(names) >= 28
    assert set(names) >= REQUIRED
    assert [s.name for s in list_specs()] == names


@pytest.mark.parametrize("path", CATALOG_FILES, ids=lambda p: p.stem)
def test_catalog_file_loads_with_float_figures(path: Path) -> None:
    spec = load_spec_file(path)
    assert spec.name == path.stem
    figures = list(_numeric_figures(read_yaml(path)))
    assert len(figures) >= 10
    for field, value in figures:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (field, value)
    for source in spec.sources.values():
        assert source.url is None or source.url.startswith("https://")


def test_yaml_loader_reads_exponent_floats_without_dot_or_sign(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 989.4e12\nb: 1e12\nc: 2.5e-6\nd: 1.0e+3\ne: 42\nf: v5e\n")
    assert read_yaml(path) == {"a": 989.4e12, "b": 1e12, "c": 2.5e-6, "d": 1e3, "e": 42, "f": "v5e"}


def test_aliases_are_unique_and_resolve() -> None:
    seen: dict[str, str] = {}
    for spec in list_specs():
        for key in (spec.name, spec.display_name, *spec.aliases):
            key = key.lower()
            assert seen.setdefault(key, spec.name) == spec.name, f"{key!r} is ambiguous"
            assert resolve_name(key) == spec.name
    assert len(alias_index()) == len(seen)


def _class_peak(spec: HardwareSpec) -> float:
    if spec.kind == "cpu":
        return spec.peak_flops("fp32")
    return spec.peak_flops("bf16" if spec.supports("bf16") else "fp16")


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_figures_are_plausible_for_the_device_class(spec: HardwareSpec) -> None:
    if spec.main_memory.level == "hbm":  # datacenter GPUs / TPUs / accelerators
        assert 50e12 <= spec.peak_flops("bf16") <= 5000e12
        assert 0.3e12 <= spec.memory_bandwidth <= 10e12
    if spec.kind == "cpu":
        assert 0.1e12 < spec.peak_flops("fp32") < 20e12
    for dtype, fig in spec.compute.items():
        if fig.sparse is not None:  # sparse-as-dense mistakes show up as ratio 1 or 4
            assert fig.dense != fig.sparse, dtype
            assert 1.95 <= fig.sparse / fig.dense <= 2.05, dtype
    if spec.supports("fp32") and spec.supports("fp64"):
        assert spec.peak_flops("fp64") <= spec.peak_flops("fp32") * 2.01
    for level in spec.memory:
        assert level.capacity_bytes <= spec.memory_capacity
    assert 10 <= spec.power.tdp_w <= 2000
    assert 1e-14 <= spec.energy.flop_j <= 1e-10
    assert 1e-12 <= spec.energy.dram_byte_j <= 1e-9
    assert 1e-7 <= spec.launch_overhead_s.value <= 1e-4
    expected_flop_j = (spec.power.tdp_w - spec.power.idle_w) / _class_peak(spec)
    assert spec.energy.flop_j == pytest.approx(expected_flop_j, rel=0.01)
    if spec.price_per_hour_usd is not None:
        assert 0.05 <= spec.price_per_hour_usd.value <= 100


def test_known_datasheet_values() -> None:
    h100 = load_spec("h100-sxm")
    assert h100.peak_flops("bf16") == pytest.approx(989.4e12, rel=0.01)
    assert h100.compute["bf16"].sparse == pytest.approx(1979e12, rel=0.01)
    assert h100.peak_flops("fp8") == pytest.approx(1978.9e12, rel=0.01)
    assert h100.memory_bandwidth == pytest.approx(3.35e12, rel=0.01)
    assert h100.memory_capacity == 81559 * 2**20  # nvidia-smi total, MiB x 2^20
    assert h100.main_memory.level == "hbm"
    assert load_spec("a100-sxm-80gb").peak_flops("bf16") == pytest.approx(312e12, rel=0.01)
    assert load_spec("mi300x").peak_flops("bf16") == pytest.approx(1307.4e12, rel=0.01)
    assert load_spec("b200").peak_flops("bf16") == pytest.approx(2.25e15, rel=0.01)
    assert load_spec("tpu-v5e").peak_flops("bf16") == pytest.approx(197e12, rel=0.01)


def test_lookup_by_alias_is_case_insensitive_and_cached() -> None:
    spec = load_spec("h100-sxm")
    assert load_spec("H100") is spec
    assert load_spec("h100-SXM5") is spec
    assert load_spec("NVIDIA H100 80GB HBM3") is spec
    assert load_spec("a100").name == "a100-sxm-80gb"
    assert load_spec("mi300").name == "mi300x"


def test_load_spec_accepts_a_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "h100-sxm.yaml"
    path.write_text((CATALOG_DIR / "h100-sxm.yaml").read_text())
    assert load_spec(str(path)) == load_spec(path) == load_spec("h100-sxm")


@pytest.mark.parametrize(
    ("alias", "canon"),
    [("bf16", "bf16"), ("bfloat16", "bf16"), ("torch.bfloat16", "bf16"), ("float32", "fp32"),
     ("FP32", "fp32"), ("half", "fp16"), ("float16", "fp16"), ("float8_e4m3fn", "fp8"),
     ("float8_e5m2", "fp8"), ("int8", "int8"), ("float64", "fp64"), ("double", "fp64"),
     ("fp4", "fp4"), ("tf32", "tf32"), ("complex64", None)],
)  # fmt: skip
def test_normalize_dtype(alias: str, canon: str | None) -> None:
    assert normalize_dtype(alias) == canon
    assert canon is None or canon in PRECISIONS


def test_peak_flops_accepts_dtype_aliases() -> None:
    h100 = load_spec("h100-sxm")
    assert h100.peak_flops("bfloat16") == h100.peak_flops("bf16")
    assert h100.peak_flops("half") == h100.peak_flops("fp16")
    assert h100.peak_flops("float8_e4m3fn") == h100.peak_flops("fp8")
    assert h100.peak_flops("float32") == 66.9e12
    assert h100.supports("float64") and not h100.supports("fp4")


def test_unsupported_precision_names_device_dtype_and_alternatives() -> None:
    with pytest.raises(UnsupportedPrecisionError) as info:
        load_spec("a100").peak_flops("fp4")
    message = str(info.value)
    assert "a100-sxm-80gb" in message and "fp4" in message
    assert "fp64, fp32, tf32, bf16, fp16, int8" in message
    assert isinstance(info.value, HardwareError) and isinstance(info.value, ValueError)
    with pytest.raises(UnsupportedPrecisionError, match="complex64"):
        load_spec("a100").peak_flops("complex64")


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UnknownHardwareError) as info:
        load_spec("h1OO")
    message = str(info.value)
    assert message.startswith("unknown hardware 'h1OO': did you mean h100-sxm")
    assert "h100-pcie" in message and "h100-nvl" in message
    assert "perfcast hw list shows all" in message
    with pytest.raises(UnknownHardwareError, match=r"did you mean .*mi300x"):
        load_spec("mi300z")
    with pytest.raises(UnknownHardwareError, match="did you mean"):
        load_spec("qqqqqqq")  # nothing close: still lists a few names


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda raw: raw.pop("power"), "power: Field required"),
        (_set("compute.bf16.dense", -1.0), "compute.bf16.dense: Input should be greater than 0"),
        (_set("memory.0.capacity_bytes", "lots"), "memory.0.capacity_bytes: Input should be"),
        (_set("compute.bf16.source", "nope"), "compute.bf16.source: unknown source key 'nope'"),
        (_set("compute.bf16.sparse", 1e12), "compute.bf16: sparse (1e+12) is below dense"),
        (_set("power.idle_w", 800.0), "power: idle_w (800) must be below tdp_w (700)"),
        (_set("name", "h100-other"), "name: 'h100-other' must equal the file stem 'h100-sxm'"),
        (_set("colour", "green"), "colour: Extra inputs are not permitted"),
        (_set("compute.fp12", {"dense": 1.0, "source": "datasheet"}), "compute.fp12 (key)"),
        (_set("scale_up.domain_size", 0), "scale_up.domain_size: Input should be greater"),
        (
            lambda raw: raw["memory"].append(dict(raw["memory"][0])),
            "memory: exactly one off-chip level (hbm or dram) is required, found 2",
        ),
    ],
)
def test_malformed_spec_names_file_and_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    raw = copy.deepcopy(read_yaml(CATALOG_DIR / "h100-sxm.yaml"))
    mutate(raw)
    path = tmp_path / "h100-sxm.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CatalogError) as info:
        load_spec_file(path)
    message = str(info.value)
    assert str(path) in message
    assert any(p.startswith(expected) for p in info.value.problems), message
    assert "errors.pydantic.dev" not in message


def test_yaml_syntax_error_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ncompute: {bf16: [1, 2\nmemory: []\n")
    with pytest.raises(CatalogError, match=r"broken\.yaml.*\n.*YAML syntax error at line \d+"):
        load_spec_file(path)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(CatalogError, match="expected a mapping"):
        load_spec_file(tmp_path / "list.yaml")
    with pytest.raises(CatalogError, match="cannot read file"):
        load_spec_file(tmp_path / "missing.yaml")


def test_detect_local_is_self_consistent() -> None:
    spec = detect_local()
    facts = describe_local()
    assert spec.name == "local" and spec.kind == "cpu"
    assert load_spec("local") is spec and load_spec("this") is spec
    assert spec.cores == facts["cores_used"] >= 1
    assert facts["physical_cores"] <= facts["logical_cores"] == psutil.cpu_count()
    for dtype, per_cycle in facts["flops_per_cycle"].items():
        expected = facts["cores_used"] * facts["freq_hz"] * per_cycle
        assert spec.peak_flops(dtype) == pytest.approx(expected, rel=1e-12)
    assert spec.peak_flops("fp64") == pytest.approx(spec.peak_flops("fp32") / 2)
    assert facts["flops_per_cycle"]["fp32"] in {8.0, 16.0, 32.0, 64.0}
    assert spec.memory_capacity == psutil.virtual_memory().total
    assert 1e9 < spec.memory_bandwidth < 2e12
    assert spec.memory_bandwidth == facts["dram_bandwidth_bytes_per_s"]
    assert 0.2e9 < facts["freq_hz"] < 6e9
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        info = parse_cpuinfo(cpuinfo.read_text())
        assert spec.display_name == info.get("model name", spec.display_name)
        flags = set((info.get("flags") or info.get("features") or "").split())
        assert set(facts["isa"]) <= flags | {"neon"}
    cache_levels = {c["level"] for c in facts["caches"]}
    assert len([m for m in spec.memory if m.level != "dram"]) == len(facts["caches"])
    assert cache_levels <= {1, 2, 3, 4}


def _facts(arch: str, flags: str, vendor: str = "intel", family: int = 6) -> CpuFacts:
    return CpuFacts(
        model_name="test", vendor=vendor, arch=arch, family=family, physical_cores=4,
        logical_cores=8, usable_cpus=8, flags=frozenset(flags.split()), caches=(),
        freq_hz=2e9, freq_source="test", total_ram_bytes=1 << 30,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "fp32", "extra"),
    [
        (_facts("x86_64", "sse2"), 8, {}),
        (_facts("x86_64", "avx"), 16, {}),
        (_facts("x86_64", "avx avx2 fma"), 32, {}),
        (_facts("x86_64", "avx avx2 fma avx512f avx512_vnni"), 64, {"int8": 256}),
        (_facts("x86_64", "avx2 fma avx512f avx512_bf16", "amd", 25), 32, {"bf16": 64}),
        (_facts("x86_64", "avx2 fma avx512f amx_bf16 amx_int8"), 64, {"bf16": 1024, "int8": 2048}),
        (_facts("aarch64", "asimd neon bf16 asimddp"), 16, {"bf16": 32, "int8": 64}),
    ],
)
def test_flops_per_cycle_from_isa(facts: CpuFacts, fp32: float, extra: dict[str, float]) -> None:
    per_cycle = {k: v for k, (v, _) in flops_per_cycle(facts).items()}
    assert per_cycle["fp32"] == fp32 and per_cycle["fp64"] == fp32 / 2
    for dtype, value in extra.items():
        assert per_cycle[dtype] == value
    assert facts.cores == 4


def test_parse_helpers() -> None:
    assert parse_size("32K") == 32768 and parse_size("32768K") == 32 << 20
    assert parse_size("1M") == 1 << 20 and parse_size("512") == 512
    info = parse_cpuinfo("processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: Y\n")
    assert info["model name"] == "X"


def _fake_torch(name: str) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    props = types.SimpleNamespace(name=name, total_memory=85_000_000_000,
                                  multi_processor_count=132)  # fmt: skip
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: True, get_device_properties=lambda index: props
    )
    return torch


def test_detect_gpu_reuses_catalog_spec_only_on_exact_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("NVIDIA H100 80GB HBM3"))
    gpu = detect_gpu()
    assert gpu is not None and gpu.spec is not None and gpu.spec.name == "h100-sxm"
    assert gpu.multiprocessors == 132
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("NVIDIA H100 80GB HBM3 Custom"))
    gpu = detect_gpu()
    assert gpu is not None and gpu.spec is None  # no substring guessing


runner = CliRunner()


def test_cli_list() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in REQUIRED:
        assert name in result.output
    assert "989.4" in result.output


def test_cli_show_table_and_json() -> None:
    result = runner.invoke(app, ["show", "H100"])
    assert result.exit_code == 0, result.output
    assert "989.4 TFLOP/s" in result.output and "whitepaper" in result.output
    result = runner.invoke(app, ["show", "mi300x", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "mi300x" and data["compute"]["bf16"]["dense"] == 1307.4e12
    assert HardwareSpec.model_validate(data) == load_spec("mi300x")


def test_cli_unknown_name_exits_2_with_suggestion() -> None:
    result = runner.invoke(app, ["show", "h1OO"])
    assert result.exit_code == 2
    assert "did you mean h100-sxm" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_bad_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\n")
    result = runner.invoke(app, ["show", str(path)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.stderr and "Field required" in result.stderr


def test_cli_detect() -> None:
    result = runner.invoke(app, ["detect"])
    assert result.exit_code == 0, result.output
    assert "derived peaks" in result.output and "dram bandwidth" in result.output
    result = runner.invoke(app, ["detect", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["spec"]["name"] == "local"
    assert data["facts"]["cores_used"] == data["spec"]["cores"]
