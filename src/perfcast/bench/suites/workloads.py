"""Whole-model forward passes of built-in examples (suite ``workloads``) on the CPU.

Targets: ``eager``, ``compile`` (torch.compile, compiled in setup) and ``onnxruntime``
(exported with the dynamo exporter, run on CPUExecutionProvider). Every run() is under
torch.inference_mode(); check() compares the output with the eager output from setup.
"""

from __future__ import annotations

from typing import Any, ClassVar

from perfcast.bench.benchmark import Benchmark, register
from perfcast.bench.suites._common import (
    assert_outputs_close,
    compile_skip_reason,
    count_flops,
    missing_modules,
)
from perfcast.ir.cost import Cost

MODELS = ["mlp", "convmix", "resnet50", "gpt2", "bert"]
SEQ_LEN = 128  # token ids per sequence for the transformer examples
_TRANSFORMERS = ("gpt2", "bert")
_FLOPS: dict[tuple[str, int], int] = {}  # (model, batch) -> forward FLOPs, counted once


class _Workload(Benchmark):
    """Base: builds the seeded example and its eager output; prepare() adds the target."""

    suite = "workloads"
    params: ClassVar = {"model": MODELS, "batch": [1]}

    def setup(self, model: str, batch: int) -> None:
        import torch

        from perfcast.examples import build_example

        torch.manual_seed(0)
        self.model, self.inputs = build_example(model, batch=batch, seq_len=SEQ_LEN,
                                                device="cpu")
        with torch.inference_mode():
            self.expected = self.model(*self.inputs)
        if (model, batch) not in _FLOPS:
            _FLOPS[model, batch] = count_flops(self._eager)
        self.flops = _FLOPS[model, batch]
        self.prepare()

    def _eager(self) -> Any:
        import torch

        with torch.inference_mode():
            return self.model(*self.inputs)

    def prepare(self) -> None:
        """Target-specific work after the model is built (compile, export...); not timed."""

    def check(self) -> None:
        assert_outputs_close(self.run(), self.expected)

    def teardown(self) -> None:
        vars(self).clear()

    def work(self) -> Cost:
        return Cost(flops=float(self.flops))

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        needed = ("torch", "transformers") if params.get("model") in _TRANSFORMERS else ("torch",)
        return missing_modules(*needed) or super().skip_reason(**params)


@register
class Eager(_Workload):
    name = "eager"
    tags = ("workload", "eager")
    description = "Forward pass of a built-in example in eager PyTorch"

    def run(self) -> Any:
        return self._eager()


@register
class Compile(_Workload):
    name = "compile"
    tags = ("workload", "compile")
    description = "Forward pass after torch.compile (default mode; compiled in setup)"

    def prepare(self) -> None:
        import torch

        self.compiled = torch.compile(self.model)
        self.run()  # the first call compiles

    def run(self) -> Any:
        import torch

        with torch.inference_mode():
            return self.compiled(*self.inputs)

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        return super().skip_reason(**params) or compile_skip_reason()


@register
class OnnxRuntime(_Workload):
    name = "onnxruntime"
    tags = ("workload", "onnxruntime")
    description = ("Forward pass in ONNX Runtime (CPUExecutionProvider) of the model exported "
                   "with torch.onnx.export(dynamo=True) in setup")

    def prepare(self) -> None:
        import tempfile
        from pathlib import Path

        self.tmp = tempfile.TemporaryDirectory(prefix="perfcast-onnx-")
        self.session, self.feeds = onnxruntime_session(self.model, self.inputs,
                                                       Path(self.tmp.name) / "model.onnx")

    def run(self) -> Any:
        return self.session.run(None, self.feeds)[0]

    def teardown(self) -> None:
        if hasattr(self, "tmp"):
            self.tmp.cleanup()
        super().teardown()

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        return (super().skip_reason(**params)
                or missing_modules("onnx", "onnxruntime", "onnxscript"))


def onnxruntime_session(model: Any, inputs: tuple, path: Any, *,
                        threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Export ``model`` to ``path`` with torch.onnx.export(dynamo=True) and open it in ONNX
    Runtime (CPUExecutionProvider, ORT_ENABLE_ALL); returns (session, feeds of ``inputs``).

    ``threads`` sets the session's intra-op thread count, with one inter-op thread
    (default: ONNX Runtime's own).
    """
    import warnings

    import onnxruntime
    import torch

    with warnings.catch_warnings():  # torch.export's internals warn about themselves
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, inputs, str(path), dynamo=True, verbose=False)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {n: x.detach().cpu().numpy() for n, x in zip(names, inputs, strict=True)}
    return session, feeds
