"""Built-in benchmark suites: registration, exact work() figures, checks, skips."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from perfcast.bench.benchmark import Benchmark
from perfcast.bench.suites import micro, micro_cuda, pairs, workloads
from perfcast.bench.suites._common import torch_dtype
from perfcast.ir.cost import Cost

_PROBE = """
import json, sys
from perfcast.bench.benchmark import targets
import perfcast.bench.suites.micro
torch_after_micro = "torch" in sys.modules
import perfcast.bench.suites.micro_cuda, perfcast.bench.suites.workloads
import perfcast.bench.suites.pairs
print(json.dumps({"torch": torch_after_micro or "torch" in sys.modules,
                  "targets": {n: sorted(map(str, t.impls)) for n, t in targets().items()}}))
"""


def _benchmarks(module: ModuleType) -> list[type[Benchmark]]:
    """The registered benchmark classes a suite module defines."""
    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Benchmark)
            and c.__module__ == module.__name__ and hasattr(c, "name")]


def _ready(cls: type[Benchmark], **params: Any) -> Benchmark:
    bench = cls()
    bench.setup(**params)
    return bench


def _smallest(cls: type[Benchmark]) -> dict[str, Any]:
    return {key: values[0] for key, values in cls.params.items()}


def _flops_seen(bench: Benchmark) -> int:
    # The fused CPU attention kernel has no flop formula; its math decomposition does.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        bench.run()
    return counter.get_total_flops()


def test_importing_suites_registers_targets_without_torch() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True)
    probe = json.loads(out.stdout)
    assert not probe["torch"], "importing the suites must not import torch"
    found = probe["targets"]
    single = ["None"]
    for name in ("micro:gemm", "micro:conv2d", "micro:memcpy", "micro:launch-overhead",
                 "micro-cuda:gemm", "micro-cuda:memcpy", "workloads:eager",
                 "workloads:compile", "workloads:onnxruntime"):
        assert found[name] == single, name
    for name in ("pairs:attention", "pairs:mlp", "pairs:layernorm"):
        assert found[name] == ["baseline", "optimized"], name
    cpu = {n.split(":")[1] for n in found if n.startswith("micro:")}
    assert cpu == {n.split(":")[1] for n in found if n.startswith("micro-cuda:")}
    assert len(cpu) == 14  # every micro target has a CUDA twin


def test_tags_and_devices() -> None:
    assert all("calibration" in c.tags and c.device == "cpu" for c in _benchmarks(micro))
    assert all("gpu" in c.tags and c.device == "cuda" for c in _benchmarks(micro_cuda))
    assert micro_cuda.Gemm.tags == ("gpu", *micro.Gemm.tags)
    assert all("workload" in c.tags for c in _benchmarks(workloads))
    assert all("pair" in c.tags for c in _benchmarks(pairs))


@pytest.mark.parametrize("cls", _benchmarks(micro), ids=lambda c: c.name)
def test_smallest_micro_case_runs_and_checks(cls: type[Benchmark]) -> None:
    params = _smallest(cls)
    assert cls.skip_reason(**params) is None
    bench = _ready(cls, **params)
    bench.check()
    bench.run()
    work = bench.work()
    assert isinstance(work, Cost) and work.flops >= 0 and work.bytes >= 0
    bench.teardown()
    assert not vars(bench)


@pytest.mark.parametrize(("cls", "params", "flops", "nbytes"), [
    (micro.Gemm, {"n": 128, "dtype": "float32"}, 2 * 128**3, 4 * 3 * 128**2),
    (micro.Gemm, {"n": 256, "dtype": "bfloat16"}, 2 * 256**3, 2 * 3 * 256**2),
    (micro.GemmSkinny, {"m": 1, "nk": "3072x768", "dtype": "float32"}, 2 * 3072 * 768,
     4 * (768 + 3072 * 768 + 3072)),
    (micro.GemmBatched, {"batch": 4, "n": 64, "dtype": "float32"}, 2 * 4 * 64**3,
     4 * 3 * 4 * 64**2),
    (micro.Conv2d, {"shape": "stem7x7-224", "batch": 1, "dtype": "float32"},
     2 * 64 * 112 * 112 * 3 * 7 * 7, 4 * (3 * 224 * 224 + 64 * 3 * 7 * 7 + 64 * 112 * 112)),
    (micro.Conv2d, {"shape": "dw3x3-56", "batch": 1, "dtype": "float32"},
     2 * 128 * 56 * 56 * 9, 4 * (2 * 128 * 56 * 56 + 128 * 9)),
    (micro.Attention, {"batch": 1, "heads": 8, "head_dim": 64, "seq": 128, "causal": True,
                       "dtype": "float32"}, 4 * 8 * 128**2 * 64, 4 * 4 * 8 * 128 * 64),
    (micro.Elementwise, {"op": "add", "numel": 2**16, "dtype": "float32"}, 2**16,
     3 * 4 * 2**16),
    (micro.Elementwise, {"op": "gelu", "numel": 2**16, "dtype": "float32"}, 2**16,
     2 * 4 * 2**16),
    (micro.Reduction, {"kind": "last-dim", "numel": 2**16, "dtype": "float32"},
     2**16 - 64, 4 * (2**16 + 64)),
    (micro.LayerNorm, {"rows": 128, "cols": 768, "dtype": "float32"}, 7 * 128 * 768,
     4 * (2 * 128 * 768 + 2 * 768)),
    (micro.RmsNorm, {"rows": 128, "cols": 768, "dtype": "float32"}, 4 * 128 * 768,
     4 * (2 * 128 * 768 + 768)),
    (micro.Memcpy, {"mib": 1}, 0, 2 * 2**20),
    (micro.LaunchOverhead, {}, 0, 0),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_work_is_exact(cls: type[Benchmark], params: dict[str, Any], flops: int,
                       nbytes: int) -> None:
    bench = _ready(cls, **params)
    assert bench.work() == Cost(flops=flops, bytes=nbytes)


@pytest.mark.parametrize(("cls", "params"), [
    (micro.Gemm, {"n": 128, "dtype": "float32"}),
    (micro.GemmSkinny, {"m": 8, "nk": "3072x768", "dtype": "bfloat16"}),
    (micro.GemmBatched, {"batch": 4, "n": 64, "dtype": "float32"}),
    *[(micro.Conv2d, {"shape": s, "batch": 1, "dtype": "float32"}) for s in micro.CONV_SHAPES],
    *[(micro.Attention, {"batch": 1, "heads": 8, "head_dim": 64, "seq": 128, "causal": c,
                         "dtype": "float32"}) for c in (False, True)],
], ids=str)
def test_compute_flops_match_torch_flop_counter(cls: type[Benchmark],
                                                params: dict[str, Any]) -> None:
    bench = _ready(cls, **params)
    assert bench.work().flops == _flops_seen(bench)


def test_float16_gemm_on_cpu_skips_large_sizes() -> None:
    assert micro.Gemm.skip_reason(n=512, dtype="float16") is None
    assert "float16" in micro.Gemm.skip_reason(n=1024, dtype="float16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA skip")
@pytest.mark.parametrize("cls", _benchmarks(micro_cuda), ids=lambda c: c.name)
def test_micro_cuda_skips_without_cuda(cls: type[Benchmark]) -> None:
    assert cls.suite == "micro-cuda"
    assert "CUDA" in cls.skip_reason(**_smallest(cls))


@pytest.mark.gpu
@pytest.mark.parametrize("cls", _benchmarks(micro_cuda), ids=lambda c: c.name)
def test_smallest_micro_cuda_case_runs_and_checks(cls: type[Benchmark]) -> None:
    bench = _ready(cls, **_smallest(cls))
    bench.check()
    assert bench.work() is not None
    bench.teardown()


def test_bad_dtype_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="float32, bfloat16, float16"):
        torch_dtype("float64")
    with pytest.raises(ValueError, match="allowed dtypes"):
        micro.Gemm().setup(n=128, dtype="fp8")


@pytest.fixture(scope="module", params=[(t, m) for m in ("mlp", "convmix")
                                        for t in (workloads.Eager, workloads.OnnxRuntime)],
                ids=lambda p: f"{p[0].name}-{p[1]}")
def workload(request: pytest.FixtureRequest) -> Iterator[Benchmark]:
    cls, model = request.param
    assert cls.skip_reason(model=model, batch=1) is None
    bench = _ready(cls, model=model, batch=1)
    yield bench
    bench.teardown()


def test_workload_runs_and_checks(workload: Benchmark, monkeypatch: pytest.MonkeyPatch) -> None:
    workload.check()
    out = torch.as_tensor(workload.run())
    assert out.shape == workload.expected.shape
    assert workload.work().flops > 0
    monkeypatch.setattr(workload, "run", lambda: out * 1.01 + 1e-3)
    with pytest.raises(AssertionError):
        workload.check()


def test_onnxruntime_skips_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert "onnxruntime" in workloads.OnnxRuntime.skip_reason(model="mlp", batch=1)
    assert workloads.Eager.skip_reason(model="mlp", batch=1) is None


@pytest.mark.parametrize(("optimized", "params"), [
    (pairs.AttentionSdpa, {"batch": 1, "heads": 12, "head_dim": 64, "seq": 256,
                           "causal": True}),
    (pairs.LayerNormFused, {"rows": 2048, "cols": 768}),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_pair_outputs_agree(optimized: type[Benchmark], params: dict[str, Any]) -> None:
    bench = _ready(optimized, **params)
    bench.check()
    assert bench.work() == _ready(optimized.baseline, **params).work()


def test_pair_check_catches_a_wrong_optimized_side(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _ready(pairs.LayerNormFused, rows=2048, cols=768)
    good = bench.run()
    monkeypatch.setattr(bench, "run", lambda: good + 1e-2)
    with pytest.raises(AssertionError):
        bench.check()


@pytest.mark.slow
@pytest.mark.parametrize("model", workloads.MODELS)
@pytest.mark.parametrize("cls", _benchmarks(workloads), ids=lambda c: c.name)
def test_every_workload_checks(cls: type[Benchmark], model: str) -> None:
    bench = _ready(cls, model=model, batch=1)
    bench.check()
    bench.teardown()


@pytest.mark.slow
def test_compiled_mlp_pair_agrees() -> None:
    _ready(pairs.MlpCompiled, **_smallest(pairs.MlpCompiled)).check()
