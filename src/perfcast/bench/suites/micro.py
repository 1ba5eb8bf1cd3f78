"""CPU microbenchmarks (suite ``micro``): one op per target, sized to keep a call under ~0.3 s.

Calibration fits efficiency curves from these, so every ``work()`` is exact for the op as
defined here. Inputs are seeded; ``check()`` compares ``run()`` with a float64 reference.
torch is imported inside the methods only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from perfcast.bench.benchmark import Benchmark, register
from perfcast.bench.suites._common import (
    DTYPES,
    attention_work,
    check_rel_error,
    gemm_work,
    itemsize,
    missing_modules,
    naive_attention,
    randn,
    rowwise_work,
    sync,
    torch_dtype,
)
from perfcast.ir.cost import Cost

if TYPE_CHECKING:
    import torch

ELEMENT_COUNTS = [2**p for p in range(16, 25, 2)]
# ResNet-50 stages (1x1 reductions and 3x3 convs), its 7x7 stem and a depthwise 3x3:
# name -> (c_in, c_out, height = width, kernel, stride, groups); padding is kernel // 2.
CONV_SHAPES = {
    "stem7x7-224": (3, 64, 224, 7, 2, 1),
    "1x1-56": (256, 64, 56, 1, 1, 1),
    "3x3-56": (64, 64, 56, 3, 1, 1),
    "1x1-28": (512, 128, 28, 1, 1, 1),
    "3x3-28": (128, 128, 28, 3, 1, 1),
    "1x1-14": (1024, 256, 14, 1, 1, 1),
    "3x3-14": (256, 256, 14, 3, 1, 1),
    "1x1-7": (2048, 512, 7, 1, 1, 1),
    "3x3-7": (512, 512, 7, 3, 1, 1),
    "dw3x3-56": (128, 128, 56, 3, 1, 128),
}
# Weight shapes [n, k] of LLM linear layers (Llama-3-8B attention and MLP, GPT-2 MLP).
LINEAR_SHAPES = ["4096x4096", "14336x4096", "4096x14336", "3072x768"]
# Memory copies: direction -> (source device, destination device).
COPY_ENDPOINTS = {"h2h": ("cpu", "cpu"), "h2d": ("cpu", "cuda"), "d2h": ("cuda", "cpu"),
                  "d2d": ("cuda", "cuda")}


def conv_shape(shape: str) -> tuple[int, ...]:
    """A named CONV_SHAPES entry, or ``"cin-cout-size-kernel-stride-groups"`` (calibration)."""
    if shape in CONV_SHAPES:
        return CONV_SHAPES[shape]
    parts = shape.split("-")
    if len(parts) != 6 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"conv shape {shape!r} is neither a named shape ({', '.join(CONV_SHAPES)})"
                         " nor 'cin-cout-size-kernel-stride-groups' with positive integers")
    c_in, c_out, size, kernel, stride, groups = (int(p) for p in parts)
    if c_in % groups or c_out % groups:
        raise ValueError(f"conv shape {shape!r}: groups {groups} must divide cin and cout")
    return c_in, c_out, size, kernel, stride, groups


def _dims(text: str) -> tuple[int, ...]:
    """``"14336x4096"`` → ``(14336, 4096)``."""
    return tuple(int(d) for d in text.split("x"))


class _Micro(Benchmark):
    """Base of the micro suite: build() binds one torch call, which run() repeats.

    reference() repeats that call on float64 copies of its tensors (out= made float64 too);
    check() compares the two within the dtype's tolerance.
    """

    suite = "micro"
    device = "cpu"

    def setup(self, **params: Any) -> None:
        self.dtype = params.get("dtype", "float32")
        self.build(**params)
        sync(self.device)

    def build(self, **params: Any) -> None:
        """Make this case's tensors on ``self.device`` and bind() the timed call."""
        raise NotImplementedError

    def bind(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Make ``fn(*args, **kwargs)`` the call that run() times."""
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.call = partial(fn, *args, **kwargs)

    def run(self) -> torch.Tensor:
        return self.call()

    def reference(self) -> torch.Tensor:
        """The bound call on float64 copies of its tensor arguments."""
        import torch

        def wide(value: Any) -> Any:
            return value.double() if isinstance(value, torch.Tensor) else value

        return self.fn(*map(wide, self.args), **{k: wide(v) for k, v in self.kwargs.items()})

    def check(self) -> None:
        check_rel_error(self.run(), self.reference(), self.dtype)

    def teardown(self) -> None:
        vars(self).clear()

    def randn(self, *shape: int, seed: int = 0) -> torch.Tensor:
        """A seeded standard-normal tensor of this case's dtype on its device."""
        return randn(*shape, dtype=self.dtype, device=self.device, seed=seed)

    def empty(self, *shape: int) -> torch.Tensor:
        """An uninitialized output tensor of this case's dtype on its device."""
        import torch

        return torch.empty(shape, dtype=torch_dtype(self.dtype), device=self.device)

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        return missing_modules("torch") or super().skip_reason(**params)


class _MatMul(_Micro):
    """Shared by the GEMMs: ``a`` times ``b`` into a preallocated output (mm, or bmm in 3-D)."""

    tags = ("calibration", "gemm", "compute")

    def operands(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Bind the product of ``a`` and ``b`` into a new output tensor."""
        import torch

        out = self.empty(*a.shape[:-1], b.shape[-1])
        self.bind(torch.bmm if a.dim() == 3 else torch.mm, a, b, out=out)

    def work(self) -> Cost:
        a, b = self.args
        *batch, m, k = a.shape
        return gemm_work(m, b.shape[-1], k, self.dtype, batch=batch[0] if batch else 1)


@register
class Gemm(_MatMul):
    name = "gemm"
    params: ClassVar = {"n": [128, 256, 512, 1024, 2048], "dtype": list(DTYPES)}
    description = "Square GEMM torch.mm(A, B, out=C) with n×n matrices"

    def build(self, n: int, dtype: str) -> None:
        self.operands(self.randn(n, n), self.randn(n, n, seed=1))

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        if cls.device == "cpu" and params.get("dtype") == "float16" and params.get("n", 0) > 512:
            return ("float16 matmul has no fast kernel on most CPUs; n > 512 takes seconds "
                    "per call")
        return super().skip_reason(**params)


@register
class GemmSkinny(_MatMul):
    name = "gemm-skinny"
    params: ClassVar = {"m": [1, 8, 32], "nk": LINEAR_SHAPES, "dtype": ["float32", "bfloat16"]}
    description = ("Linear-layer GEMM x·Wᵀ, x [m, k], weight W [n, k] (nk = 'NxK'): "
                   "m=1 is a decode GEMV, larger m tall-skinny")

    def build(self, m: int, nk: str, dtype: str) -> None:
        n, k = _dims(nk)
        self.operands(self.randn(m, k), self.randn(n, k, seed=1).t())


@register
class GemmBatched(_MatMul):
    name = "gemm-batched"
    params: ClassVar = {"batch": [4, 16, 64], "n": [64, 128, 256, 512], "dtype": ["float32"]}
    description = "Batched square GEMM torch.bmm(A, B, out=C) with batch × n×n matrices"

    def build(self, batch: int, n: int, dtype: str) -> None:
        self.operands(self.randn(batch, n, n), self.randn(batch, n, n, seed=1))


@register
class Conv2d(_Micro):
    name = "conv2d"
    tags = ("calibration", "conv", "compute")
    params: ClassVar = {"shape": list(CONV_SHAPES), "batch": [1], "dtype": ["float32"]}
    description = ("2-D convolution without bias: ResNet-50 stage convs, its 7x7 stem and a "
                   "depthwise 3x3 (shape = kind-spatial size)")

    def build(self, shape: str, batch: int, dtype: str) -> None:
        from torch.nn.functional import conv2d

        c_in, c_out, size, kernel, stride, groups = conv_shape(shape)
        x = self.randn(batch, c_in, size, size)
        w = self.randn(c_out, c_in // groups, kernel, kernel, seed=1)
        self.bind(conv2d, x, w, stride=stride, padding=kernel // 2, groups=groups)

    def work(self) -> Cost:
        x, w = self.args
        stride, padding = self.kwargs["stride"], self.kwargs["padding"]
        batch, _, size, _ = x.shape
        c_out, c_per_group, kernel, _ = w.shape
        side = (size + 2 * padding - kernel) // stride + 1
        out = batch * c_out * side * side
        return Cost(flops=2.0 * out * c_per_group * kernel * kernel,
                    bytes=float((x.numel() + w.numel() + out) * itemsize(self.dtype)))


@register
class Attention(_Micro):
    name = "attention"
    tags = ("calibration", "attention", "compute")
    params: ClassVar = {"batch": [1], "heads": [8, 12], "head_dim": [64],
                        "seq": [128, 256, 512, 1024, 2048], "causal": [False, True],
                        "dtype": ["float32"]}
    description = ("F.scaled_dot_product_attention on Q, K, V [batch, heads, seq, head_dim]; "
                   "flops count the full S×S scores (4·B·H·S²·D) even when causal")

    def build(self, batch: int, heads: int, head_dim: int, seq: int, causal: bool,
              dtype: str) -> None:
        from torch.nn.functional import scaled_dot_product_attention

        qkv = (self.randn(batch, heads, seq, head_dim, seed=i) for i in range(3))
        self.bind(scaled_dot_product_attention, *qkv, is_causal=causal)

    def reference(self) -> torch.Tensor:
        import torch

        # One (batch, head) at a time keeps the float64 score matrix small.
        q, k, v = (t.flatten(0, 1).double() for t in self.args)
        causal = self.kwargs["is_causal"]
        rows = [naive_attention(q[i], k[i], v[i], causal) for i in range(q.shape[0])]
        return torch.stack(rows).view(self.args[0].shape)

    def work(self) -> Cost:
        batch, heads, seq, head_dim = self.args[0].shape
        return attention_work(batch, heads, seq, head_dim, self.dtype)


# Elementwise ops the micro suite times: name -> (torch function name, inputs). The
# transcendental ones cost many times an add per element on a CPU; calibration fits a
# per-element cost for each.
ELEMENTWISE_OPS = {"add": ("add", 2), "mul": ("mul", 2), "div": ("div", 2), "gelu": ("gelu", 1),
                   "tanh": ("tanh", 1), "exp": ("exp", 1), "erf": ("erf", 1),
                   "sigmoid": ("sigmoid", 1), "silu": ("silu", 1), "rsqrt": ("rsqrt", 1)}


@register
class Elementwise(_Micro):
    name = "elementwise"
    tags = ("calibration", "elementwise", "memory")
    params: ClassVar = {"op": list(ELEMENTWISE_OPS), "numel": ELEMENT_COUNTS,
                        "dtype": ["float32"]}
    description = ("One elementwise op (add, mul, div: two inputs; gelu, tanh, exp, erf, "
                   "sigmoid, silu, rsqrt: one) into a preallocated output; flops count one "
                   "per element, bytes every read and write")

    def build(self, op: str, numel: int, dtype: str) -> None:
        import torch

        if op not in ELEMENTWISE_OPS:
            raise ValueError(f"elementwise op {op!r} is not one of {', '.join(ELEMENTWISE_OPS)}")
        name, arity = ELEMENTWISE_OPS[op]
        fn = getattr(torch.ops.aten, name).out
        inputs = [self.randn(numel, seed=i) for i in range(arity)]
        if op in ("rsqrt", "div"):  # operand away from 0: a finite result for check()
            inputs[-1].abs_().add_(0.5)
        self.bind(fn, *inputs, out=self.empty(numel))

    def work(self) -> Cost:
        numel = self.args[0].numel()
        return Cost(flops=float(numel),
                    bytes=float((len(self.args) + 1) * numel * itemsize(self.dtype)))


@register
class Reduction(_Micro):
    name = "reduction"
    tags = ("calibration", "reduction", "memory")
    params: ClassVar = {"kind": ["last-dim", "full"], "numel": ELEMENT_COUNTS,
                        "dtype": ["float32"]}
    description = ("torch.sum over the last dim of [numel/1024, 1024] ('last-dim') or over "
                   "all elements ('full'); flops are the additions, numel − outputs")

    def build(self, kind: str, numel: int, dtype: str) -> None:
        import torch

        shape = (numel // 1024, 1024) if kind == "last-dim" else (numel,)
        x = self.randn(*shape).abs_()  # positive: sums far from 0 for check()
        self.bind(torch.sum, x, dim=-1, out=self.empty(*shape[:-1]))

    def work(self) -> Cost:
        numel, outputs = self.args[0].numel(), self.kwargs["out"].numel()
        return Cost(flops=float(numel - outputs),
                    bytes=float((numel + outputs) * itemsize(self.dtype)))


class _RowWise(_Micro):
    """An op on each row of x [rows, cols]; every other tensor argument is a [cols] vector."""

    tags = ("calibration", "norm", "memory")
    params: ClassVar = {"rows": [128, 512, 2048], "cols": [768, 1024, 4096],
                        "dtype": ["float32"]}
    flops_per_element: ClassVar[int]
    vectors: ClassVar[int] = 0

    def work(self) -> Cost:
        rows, cols = self.args[0].shape
        return rowwise_work(rows, cols, self.flops_per_element, self.vectors, self.dtype)


@register
class LayerNorm(_RowWise):
    name = "layernorm"
    flops_per_element, vectors = 7, 2
    description = ("F.layer_norm over cols with weight and bias (flops 7 per element: mean, "
                   "center, square, sum, normalize, scale, shift)")

    def build(self, rows: int, cols: int, dtype: str) -> None:
        from torch.nn.functional import layer_norm

        weight, bias = self.randn(cols, seed=1), self.randn(cols, seed=2)
        self.bind(layer_norm, self.randn(rows, cols), (cols,), weight, bias, eps=1e-5)


@register
class RmsNorm(_RowWise):
    name = "rmsnorm"
    flops_per_element, vectors = 4, 1
    description = ("F.rms_norm over cols with weight (flops 4 per element: square, sum, "
                   "normalize, scale)")

    def build(self, rows: int, cols: int, dtype: str) -> None:
        from torch.nn.functional import rms_norm

        self.bind(rms_norm, self.randn(rows, cols), (cols,), self.randn(cols, seed=1), eps=1e-6)


# Pooling windows the micro suite times: name -> (kernel, stride, padding).
POOL_WINDOWS = {"2": (2, 2, 0), "3s2": (3, 2, 1)}


@register
class Pool2d(_Micro):
    name = "pool2d"
    tags = ("calibration", "reduction", "memory")
    params: ClassVar = {"op": ["max_pool2d", "avg_pool2d"], "window": list(POOL_WINDOWS),
                        "channels": [16, 64, 256], "size": [56], "dtype": ["float32"]}
    description = ("F.max_pool2d or F.avg_pool2d on [1, channels, size, size] with a 2x2 "
                   "stride-2 or 3x3 stride-2 padded window; flops count the window per "
                   "output, bytes the input and output")

    def build(self, op: str, window: str, channels: int, size: int, dtype: str) -> None:
        import torch.nn.functional as F

        if op not in ("max_pool2d", "avg_pool2d"):
            raise ValueError(f"pool op {op!r} is not max_pool2d or avg_pool2d")
        if window not in POOL_WINDOWS:
            raise ValueError(f"pool window {window!r} is not one of {', '.join(POOL_WINDOWS)}")
        kernel, stride, padding = POOL_WINDOWS[window]
        self.bind(getattr(F, op), self.randn(1, channels, size, size), kernel, stride, padding)

    def work(self) -> Cost:
        x, kernel = self.args[0], self.args[1]
        out = self.run().numel()
        return Cost(flops=float(out * kernel * kernel),
                    bytes=float((x.numel() + out) * itemsize(self.dtype)))


@register
class Softmax(_RowWise):
    name = "softmax"
    tags = ("calibration", "softmax", "memory")
    params: ClassVar = {"rows": [128, 512, 2048], "cols": [128, 512, 2048, 8192],
                        "dtype": ["float32"]}
    flops_per_element = 5
    description = ("torch.softmax over the last dim of [rows, cols] (flops 5 per element: max, "
                   "subtract, exp, sum, divide)")

    def build(self, rows: int, cols: int, dtype: str) -> None:
        import torch

        self.bind(torch.softmax, self.randn(rows, cols), dim=-1)


@register
class Memcpy(_Micro):
    name = "memcpy"
    tags = ("calibration", "memcpy", "memory")
    params: ClassVar = {"mib": [1, 4, 16, 64, 256]}
    description = ("dst.copy_(src) between preallocated buffers of mib MiB; bytes are read + "
                   "write within one device, the bytes transferred between host and device")

    def build(self, mib: int, direction: str = "h2h") -> None:
        import torch

        source, dest = COPY_ENDPOINTS[direction]
        pinned = source != dest  # page-locked host memory for host<->device transfers
        src = randn(mib << 18, device=source)  # 2**18 float32 elements per MiB
        self.src = src.pin_memory() if pinned and source == "cpu" else src
        self.dst = torch.zeros(src.shape, device=dest, pin_memory=pinned and dest == "cpu")
        self.bind(self.dst.copy_, self.src)

    def check(self) -> None:
        import torch

        if not torch.equal(self.run().to(self.src.device), self.src):
            raise AssertionError("the destination buffer differs from the source after copy_")

    def work(self) -> Cost:
        size = self.src.numel() * self.src.element_size()
        return Cost(bytes=float(size * (2 if self.src.device == self.dst.device else 1)))


@register
class LaunchOverhead(_Micro):
    name = "launch-overhead"
    tags = ("calibration", "overhead")
    description = "Dispatch cost of a trivial op: torch.add on one-element tensors, out="

    def build(self) -> None:
        import torch

        x = self.randn(1)
        self.bind(torch.add, x, x, out=self.empty(1))

    def work(self) -> Cost:
        return Cost()


@register
class ModuleOverhead(_Micro):
    name = "module-overhead"
    tags = ("calibration", "overhead")
    description = ("Fixed cost of one eager layer: a 1x1 nn.Linear module called on a "
                   "one-element input (Python module call, dispatch, allocation)")

    def build(self) -> None:
        import torch

        torch.manual_seed(0)
        layer = torch.nn.Linear(1, 1).to(self.device, torch_dtype(self.dtype)).eval()
        layer.requires_grad_(False)
        self.bind(layer, self.randn(1, 1))

    def reference(self) -> torch.Tensor:
        layer, x = self.fn, self.args[0]
        return x.double() @ layer.weight.double().t() + layer.bias.double()

    def work(self) -> Cost:
        return Cost()
