"""Helpers shared by the built-in suites: dtypes, seeded tensors, work formulas, checks.

Nothing here imports torch at module import; the functions do, when called.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perfcast.ir.cost import Cost

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16", "float16")
# Largest allowed max|got - want| / max|want| per dtype; float32 leaves room for TF32 convs.
_REL_ERROR = {"float32": 2e-3, "bfloat16": 3e-2, "float16": 5e-3}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype called ``name``; ValueError naming the allowed ones otherwise."""
    import torch

    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; allowed dtypes: {', '.join(DTYPES)}")
    return getattr(torch, name)


def itemsize(name: str) -> int:
    """Bytes per element of the dtype called ``name``."""
    return torch_dtype(name).itemsize


def randn(*shape: int, dtype: str = "float32", device: str = "cpu",
          seed: int = 0) -> torch.Tensor:
    """A standard-normal tensor, the same for the same shape, dtype, device and seed."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(shape, generator=gen, device=device, dtype=torch_dtype(dtype))


def sync(device: str) -> None:
    """Wait for queued GPU work when ``device`` is CUDA; nothing on the CPU."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def missing_modules(*modules: str) -> str | None:
    """A skip reason naming the modules that cannot be imported here, or None."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)} (not installed)" if missing else None


def compile_skip_reason() -> str | None:
    """Why torch.compile cannot build CPU kernels here (no C++ compiler on PATH), or None."""
    candidates = (os.environ.get("CXX", ""), "c++", "g++", "clang++")
    if any(shutil.which(c) for c in candidates if c):
        return None
    return "torch.compile's CPU backend needs a C++ compiler (set CXX or install g++/clang++)"


def gemm_work(m: int, n: int, k: int, dtype: str, batch: int = 1) -> Cost:
    """``batch`` products of [m, k] by [k, n]: 2·B·M·N·K flops, A, B and C moved once."""
    return Cost(flops=2.0 * batch * m * n * k,
                bytes=float(itemsize(dtype) * batch * (m * k + k * n + m * n)))


def attention_work(batch: int, heads: int, seq: int, head_dim: int, dtype: str) -> Cost:
    """Attention with the full S×S score matrix: 4·B·H·S²·D flops; Q, K, V, O moved once."""
    return Cost(flops=4.0 * batch * heads * seq * seq * head_dim,
                bytes=float(4 * batch * heads * seq * head_dim * itemsize(dtype)))


def rowwise_work(rows: int, cols: int, flops_per_element: int, vectors: int,
                 dtype: str) -> Cost:
    """A row-wise op on [rows, cols] with ``vectors`` [cols] parameters: x read, y written."""
    return Cost(flops=float(flops_per_element * rows * cols),
                bytes=float(itemsize(dtype) * (2 * rows * cols + vectors * cols)))


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    causal: bool) -> torch.Tensor:
    """Attention spelled out: Q·Kᵀ, scale by 1/√D, causal mask, softmax, ·V."""
    import torch

    scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if causal:
        seq = q.shape[-2]
        mask = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def check_rel_error(got: torch.Tensor, want: torch.Tensor, dtype: str) -> None:
    """Raise AssertionError when ``got`` is farther from ``want`` than ``dtype`` allows
    or is NaN/inf where ``want`` is finite."""
    import torch

    if got.shape != want.shape:
        raise AssertionError(f"shape {tuple(got.shape)} != expected {tuple(want.shape)}")
    got, want = got.double().to(want.device), want.double()
    bad = ~torch.isfinite(got) & torch.isfinite(want)
    if bool(bad.any()):
        raise AssertionError(f"{int(bad.sum())} non-finite output value(s) (NaN or inf) where "
                             "the float64 reference is finite")
    scale = want.abs().max().clamp_min(1e-30)
    err = float((got - want).abs().max() / scale)
    if not err <= _REL_ERROR[dtype]:
        raise AssertionError(f"max error {err:.3g} of the largest value exceeds "
                             f"{_REL_ERROR[dtype]:g} for {dtype}")


def assert_outputs_close(got: Any, want: Any, *, rtol: float = 1e-3, atol: float = 1e-4) -> None:
    """Raise AssertionError unless two outputs (tensors or arrays) agree within tolerance."""
    import torch

    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(want), rtol=rtol,
                               atol=atol, check_device=False)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs torch's FlopCounterMode sees in ``fn()``, attention counted via the math path."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    # The fused CPU attention kernels have no flop formula; their math decomposition does.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
