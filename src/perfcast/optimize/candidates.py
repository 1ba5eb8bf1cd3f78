"""The optimizations :func:`perfcast.optimize` tries: what each changes, where it applies,
how it is built.

A :class:`Candidate` is data plus two functions: ``applies(setting)`` returns why it does
not apply here (or None), ``build(model, inputs, setting)`` returns a callable that runs
one forward pass. Builders that change the model work on a deep copy, so the eager
reference and the other candidates never see their changes.
"""

from __future__ import annotations

import copy
import importlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Forward = Callable[[], Any]
Builder = Callable[[Any, tuple, "Setting"], Forward]


@dataclass(frozen=True)
class ModelFacts:
    """What the candidates need to know about a model."""

    dtype: str  # dtype of the first floating-point parameter ("float32" when none)
    convs: int  # nn.Conv2d layers
    linears: int  # nn.Linear layers
    attention: str | None  # the Hugging Face attention implementation; None if not HF

    @classmethod
    def of(cls, model: Any) -> ModelFacts:
        import torch

        floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
        modules = list(model.modules())
        hf = _hf_roots(model)
        attention = getattr(hf[0].config, "_attn_implementation", None) if hf else None
        return cls(
            dtype=str(floats[0]).removeprefix("torch.") if floats else "float32",
            convs=sum(isinstance(m, torch.nn.Conv2d) for m in modules),
            linears=sum(isinstance(m, torch.nn.Linear) for m in modules),
            attention=(attention or "eager") if hf else None,
        )


@dataclass(frozen=True)
class Setting:
    """Where candidates run: the device, its abilities, the thread count, the model."""

    device: str  # "cpu" or "cuda"
    threads: int
    bf16: bool  # native bf16 arithmetic (CPU: avx512_bf16/amx_bf16; CUDA: is_bf16_supported)
    facts: ModelFacts


@dataclass(frozen=True)
class EstimateSpec:
    """How the estimator predicts a candidate: fusion target, dtype, model transform."""

    target: str = "eager"
    dtype: str | None = None  # None: the model's own
    transform: Callable[[Any], Any] | None = None  # returns the changed model to capture
    note: str = ""


@dataclass(frozen=True)
class Candidate:
    """One way to run a model: a name, where it applies, how to build it."""

    name: str
    description: str
    applies: Callable[[Setting], str | None]
    build: Builder
    precision: str | None = None  # dtype it computes in; None: the model's own
    estimate: EstimateSpec | None = None  # None: the estimator cannot tell it apart
    touches: tuple[str, ...] = ()  # op categories it changes ("*": all); ranking heuristic


def _hf_roots(model: Any) -> list[Any]:
    """Outermost Hugging Face ``PreTrainedModel`` modules inside ``model``."""
    transformers = sys.modules.get("transformers")
    if transformers is None:
        return []
    base = transformers.PreTrainedModel
    roots: list[Any] = []
    nested: set[int] = set()
    for module in model.modules():
        if isinstance(module, base) and id(module) not in nested:
            roots.append(module)
            nested.update(id(m) for m in module.modules())
    return roots


def _inference(model: Any, inputs: tuple) -> Forward:
    import torch

    def forward() -> Any:
        with torch.inference_mode():
            return model(*inputs)

    return forward


# -- builders -------------------------------------------------------------------------------


def _build_eager(model: Any, inputs: tuple, setting: Setting) -> Forward:
    return _inference(model, inputs)


def _compile_builder(mode: str) -> Builder:
    def build(model: Any, inputs: tuple, setting: Setting) -> Forward:
        import torch

        return _inference(torch.compile(model, mode=mode), inputs)

    return build


def _autocast_builder(dtype_name: str) -> Builder:
    def build(model: Any, inputs: tuple, setting: Setting) -> Forward:
        import torch

        dtype = getattr(torch, dtype_name)

        def forward() -> Any:
            with torch.inference_mode(), torch.autocast(setting.device, dtype=dtype):
                return model(*inputs)

        return forward

    return build


def _build_channels_last(model: Any, inputs: tuple, setting: Setting) -> Forward:
    import torch

    moved = copy.deepcopy(model).to(memory_format=torch.channels_last)
    layout = tuple(x.contiguous(memory_format=torch.channels_last)
                   if isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point()
                   else x for x in inputs)
    return _inference(moved, layout)


def with_sdpa(model: Any) -> Any:
    """A deep copy of ``model`` whose Hugging Face models use ``attn_implementation="sdpa"``."""
    switched = copy.deepcopy(model)
    for root in _hf_roots(switched):
        root.set_attn_implementation("sdpa")
    return switched


def _build_sdpa(model: Any, inputs: tuple, setting: Setting) -> Forward:
    return _inference(with_sdpa(model), inputs)


def _build_int8(model: Any, inputs: tuple, setting: Setting) -> Forward:
    import torch
    from torch.ao.quantization import quantize_dynamic

    quantized = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    return _inference(quantized, inputs)


def _build_onnxruntime(model: Any, inputs: tuple, setting: Setting) -> Forward:
    from perfcast.bench.suites.workloads import onnxruntime_session
    from perfcast.frontends.outputs import FlatOutputs

    flat = FlatOutputs(model)  # the exporter returns tensors only, not a transformers Cache
    with tempfile.TemporaryDirectory(prefix="perfcast-optimize-") as tmp:
        session, feeds = onnxruntime_session(flat, inputs, Path(tmp) / "model.onnx",
                                             threads=setting.threads)
    return lambda: session.run(None, feeds)


def _build_perfcast_runtime(model: Any, inputs: tuple, setting: Setting) -> Forward:
    runtime = importlib.import_module("perfcast.runtime")
    run = runtime.compile(model, inputs, backend="auto", threads=setting.threads)
    return lambda: run(*inputs)


# -- where each applies ---------------------------------------------------------------------


def _always(setting: Setting) -> str | None:
    return None


def _compile_blocker(setting: Setting) -> str | None:
    if setting.device != "cpu":
        return None
    from perfcast.bench.suites._common import compile_skip_reason

    return compile_skip_reason()


def _reduce_overhead(setting: Setting) -> str | None:
    if setting.device == "cpu":
        return ("mode='reduce-overhead' is the default mode plus CUDA graphs; on the CPU it "
                "compiles the same code as 'compile'")
    return _compile_blocker(setting)


def _float32_model(setting: Setting) -> str | None:
    if setting.facts.dtype != "float32":
        return f"the model is already {setting.facts.dtype}; autocast lowers float32 models"
    return None


def _bf16(setting: Setting) -> str | None:
    if not setting.bf16:
        return ("this CPU has no native bf16 arithmetic (no avx512_bf16/amx_bf16 flag): "
                "autocast would convert to fp32 for every op" if setting.device == "cpu"
                else "this GPU has no native bf16 arithmetic (torch.cuda.is_bf16_supported())")
    return _float32_model(setting)


def _fp16(setting: Setting) -> str | None:
    if setting.device == "cpu":
        return ("fp16 autocast is offered on CUDA only: CPUs without avx512_fp16/amx_fp16 "
                "convert fp16 matmuls back to fp32")
    return _float32_model(setting)


def _channels_last(setting: Setting) -> str | None:
    if setting.facts.convs == 0:
        return "no nn.Conv2d layers: channels_last only changes the layout of 4-D activations"
    return None


def _sdpa(setting: Setting) -> str | None:
    attention = setting.facts.attention
    if attention is None:
        return ("not a Hugging Face transformers model: there is no attn_implementation "
                "to switch")
    if attention == "sdpa":
        return ("the model already uses attn_implementation='sdpa' (torch's fused "
                "scaled_dot_product_attention); nothing to switch")
    return None


def _int8(setting: Setting) -> str | None:
    if setting.device != "cpu":
        return "dynamic int8 quantization has CPU kernels only (x86/fbgemm, onednn)"
    if setting.facts.linears == 0:
        return "no nn.Linear layers to quantize"
    import torch

    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic"
    engines = set(torch.backends.quantized.supported_engines) - {"none"}
    if not engines:
        return "this torch build has no quantized CPU engine (fbgemm/x86/onednn)"
    return None


def _onnxruntime(setting: Setting) -> str | None:
    if setting.device != "cpu":
        return "perfcast's ONNX Runtime path uses the CPUExecutionProvider only"
    from perfcast.bench.suites._common import missing_modules

    return missing_modules("onnx", "onnxruntime", "onnxscript")


def _perfcast_runtime(setting: Setting) -> str | None:
    if setting.device != "cpu":
        return "the perfcast runtime runs on the CPU only"
    try:
        runtime = importlib.import_module("perfcast.runtime")
    except ImportError as exc:
        return f"perfcast.runtime cannot be imported here ({type(exc).__name__}: {exc})"
    if not callable(getattr(runtime, "compile", None)):
        return "perfcast.runtime has no compile() in this installation"
    return None


COMPILE_NOTE = "Inductor fusion model; autotuning and CUDA graphs are not modelled"
RUNTIME_NOTE = "one kernel per step of the program perfcast.runtime.compile runs"

CANDIDATES: tuple[Candidate, ...] = (
    Candidate("eager", "the model as given, PyTorch eager, under torch.inference_mode",
              _always, _build_eager, estimate=EstimateSpec("eager")),
    Candidate("compile", "torch.compile(mode='default') (Inductor)", _compile_blocker,
              _compile_builder("default"), estimate=EstimateSpec("compile", note=COMPILE_NOTE)),
    Candidate("compile-reduce-overhead", "torch.compile(mode='reduce-overhead'): CUDA graphs",
              _reduce_overhead, _compile_builder("reduce-overhead"),
              estimate=EstimateSpec("compile", note=COMPILE_NOTE)),
    Candidate("compile-max-autotune",
              "torch.compile(mode='max-autotune-no-cudagraphs'): autotuned GEMM/conv "
              "templates (long compile)", _compile_blocker,
              _compile_builder("max-autotune-no-cudagraphs"),
              estimate=EstimateSpec("compile", note=COMPILE_NOTE)),
    Candidate("bf16-autocast", "torch.autocast(dtype=bfloat16): matmuls and convs in bf16",
              _bf16, _autocast_builder("bfloat16"), precision="bfloat16",
              estimate=EstimateSpec("eager", "bf16", note="every op in bf16; autocast keeps "
                                    "norms and softmax in fp32")),
    Candidate("fp16-autocast", "torch.autocast(dtype=float16): matmuls and convs in fp16",
              _fp16, _autocast_builder("float16"), precision="float16",
              estimate=EstimateSpec("eager", "fp16", note="every op in fp16; autocast keeps "
                                    "norms and softmax in fp32")),
    Candidate("channels-last", "weights and 4-D inputs in torch.channels_last (NHWC) layout",
              _channels_last, _build_channels_last, touches=("conv",)),
    Candidate("sdpa", "Hugging Face attn_implementation switched to 'sdpa' "
              "(torch.nn.functional.scaled_dot_product_attention picks flash/efficient/math)",
              _sdpa, _build_sdpa, estimate=EstimateSpec("eager", transform=with_sdpa),
              touches=("attention",)),
    Candidate("int8-dynamic", "torch.ao.quantization.quantize_dynamic: nn.Linear weights in "
              "int8, activations quantized per call (deprecated: torch 2.13 still has it but "
              "warns it will be removed in favour of torchao)",
              _int8, _build_int8, precision="int8", touches=("gemm",)),
    Candidate("onnxruntime", "torch.onnx.export(dynamo=True), ONNX Runtime CPUExecutionProvider "
              "with ORT_ENABLE_ALL", _onnxruntime, _build_onnxruntime, touches=("*",)),
    Candidate("perfcast-runtime", "perfcast.runtime.compile(backend='auto'): perfcast's own "
              "executor", _perfcast_runtime, _build_perfcast_runtime,
              estimate=EstimateSpec("perfcast", note=RUNTIME_NOTE)),
)
