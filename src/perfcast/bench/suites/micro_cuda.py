"""CUDA microbenchmarks (suite ``micro-cuda``): the ``micro`` ops with GPU-sized grids.

Each class subclasses its CPU counterpart and changes only suite, device and grid, so
work() formulas and checks are shared. Cases are skipped where no CUDA device is present.
"""

from __future__ import annotations

from typing import Any, ClassVar

from perfcast.bench.benchmark import register
from perfcast.bench.suites import micro

_GPU_ELEMENTS = [2**p for p in range(20, 29, 2)]
_GPU_FLOAT = ["float32", "bfloat16"]


class _Cuda:
    """Mixin moving a micro benchmark to suite micro-cuda on device cuda, tagged gpu."""

    suite = "micro-cuda"
    device = "cuda"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.tags = ("gpu", *cls.tags)


@register
class Gemm(_Cuda, micro.Gemm):
    params: ClassVar = {"n": [256, 512, 1024, 2048, 4096, 8192], "dtype": list(micro.DTYPES)}


@register
class GemmSkinny(_Cuda, micro.GemmSkinny):
    params: ClassVar = {"m": [1, 8, 32, 128], "nk": micro.LINEAR_SHAPES,
                        "dtype": list(micro.DTYPES)}


@register
class GemmBatched(_Cuda, micro.GemmBatched):
    params: ClassVar = {"batch": [8, 32, 128], "n": [128, 512, 1024, 2048], "dtype": _GPU_FLOAT}


@register
class Conv2d(_Cuda, micro.Conv2d):
    params: ClassVar = {"shape": list(micro.CONV_SHAPES), "batch": [1, 32], "dtype": _GPU_FLOAT}


@register
class Attention(_Cuda, micro.Attention):
    params: ClassVar = {"batch": [1, 8], "heads": [12], "head_dim": [64],
                        "seq": [512, 1024, 2048, 4096, 8192], "causal": [False, True],
                        "dtype": ["bfloat16", "float16"]}


@register
class Elementwise(_Cuda, micro.Elementwise):
    params: ClassVar = {"op": ["add", "mul", "gelu"], "numel": _GPU_ELEMENTS, "dtype": _GPU_FLOAT}


@register
class Reduction(_Cuda, micro.Reduction):
    params: ClassVar = {"kind": ["last-dim", "full"], "numel": _GPU_ELEMENTS,
                        "dtype": ["float32"]}


_GPU_ROWS: dict[str, list[Any]] = {"rows": [512, 2048, 8192], "cols": [1024, 4096, 8192],
                                   "dtype": _GPU_FLOAT}


@register
class Pool2d(_Cuda, micro.Pool2d):
    params: ClassVar = {"op": ["max_pool2d", "avg_pool2d"], "window": list(micro.POOL_WINDOWS),
                        "channels": [64, 256, 1024], "size": [112], "dtype": _GPU_FLOAT}


@register
class LayerNorm(_Cuda, micro.LayerNorm):
    params: ClassVar = _GPU_ROWS


@register
class RmsNorm(_Cuda, micro.RmsNorm):
    params: ClassVar = _GPU_ROWS


@register
class Softmax(_Cuda, micro.Softmax):
    params: ClassVar = {"rows": [512, 2048, 8192], "cols": [512, 2048, 8192],
                        "dtype": _GPU_FLOAT}


@register
class Memcpy(_Cuda, micro.Memcpy):
    params: ClassVar = {"direction": ["h2d", "d2h", "d2d"], "mib": [1, 4, 16, 64, 256, 1024]}


@register
class LaunchOverhead(_Cuda, micro.LaunchOverhead):
    description = "Launch cost of a near-empty kernel: torch.add on one-element CUDA tensors"


@register
class ModuleOverhead(_Cuda, micro.ModuleOverhead):
    description = ("Fixed cost of one eager layer on the GPU: a 1x1 nn.Linear module called "
                   "on a one-element CUDA input")
