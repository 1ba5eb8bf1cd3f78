"""Numeric formats of an LLM deployment: weights, expert weights, activations, KV cache.

A GEMM runs in the wider of its weight and activation formats: fp8 x fp8 runs on the
fp8 tensor cores, while int4 or fp4 weights with bf16 activations ("weight-only")
are dequantized and run at the bf16 rate. Embeddings, norms and the residual stream
stay in bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfcast.ir.dtypes import DTypeError, canonical, itemsize

RESIDUAL_DTYPE = "bfloat16"
_FORMATS = {"bf16", "fp16", "fp8", "fp4", "int8", "int4"}


class PrecisionError(ValueError):
    """A precision name or component spec that cannot be parsed."""


@dataclass(frozen=True)
class Precision:
    """Formats of one deployment (canonical IR dtype names)."""

    name: str
    weights: str = "bfloat16"
    experts: str = "bfloat16"
    activations: str = "bfloat16"
    kv_cache: str = "bfloat16"

    def gemm_dtype(self, weight_dtype: str) -> str:
        """The format a GEMM with ``weight_dtype`` weights computes in."""
        return max(weight_dtype, self.activations, key=itemsize)

    def with_kv_cache(self, kv: str) -> Precision:
        return Precision(self.name, self.weights, self.experts, self.activations,
                         _format(kv, "kv_cache"))


def _format(text: str, what: str) -> str:
    if text.strip().lower() not in _FORMATS | {"bfloat16", "float16", "mxfp4", "nvfp4"}:
        raise PrecisionError(
            f"unknown {what} format {text!r}; allowed: {', '.join(sorted(_FORMATS))}"
        )
    try:
        return canonical(text.strip().lower())
    except DTypeError as exc:
        raise PrecisionError(str(exc)) from None


def _uniform(name: str, weights: str, activations: str, kv: str = "bf16") -> Precision:
    w = _format(weights, "weights")
    return Precision(name, w, w, _format(activations, "activations"), _format(kv, "kv_cache"))


PRESETS: dict[str, Precision] = {
    "bf16": _uniform("bf16", "bf16", "bf16"),
    "fp16": _uniform("fp16", "fp16", "fp16", "fp16"),
    "fp8": _uniform("fp8", "fp8", "fp8"),
    "fp4": _uniform("fp4", "fp4", "fp4", "fp8"),
    "nvfp4": _uniform("nvfp4", "fp4", "fp4", "fp8"),
    "mxfp4": _uniform("mxfp4", "fp4", "fp4", "fp8"),
    "w8a16": _uniform("w8a16", "fp8", "bf16"),
    "w4a16": _uniform("w4a16", "int4", "bf16"),
    "fp4-w4a16": _uniform("fp4-w4a16", "fp4", "bf16"),
}
_KEYS = {"weights": "weights", "w": "weights", "experts": "experts", "e": "experts",
         "activations": "activations", "a": "activations", "kv": "kv_cache",
         "kv_cache": "kv_cache"}


def parse_precision(text: str | Precision) -> Precision:
    """A preset name (``fp8``, ``w4a16``...) or ``weights=fp4,activations=bf16,kv=fp8``."""
    if isinstance(text, Precision):
        return text
    key = text.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    if "=" not in key:
        raise PrecisionError(
            f"unknown precision {text!r}; presets: {', '.join(PRESETS)}; or components like "
            "weights=fp4,experts=fp4,activations=bf16,kv=fp8"
        )
    parts: dict[str, str] = {}
    for item in key.split(","):
        field, _, value = item.partition("=")
        if field.strip() not in _KEYS or not value.strip():
            raise PrecisionError(
                f"bad precision component {item!r} in {text!r}; keys: weights, experts, "
                "activations, kv (each =bf16|fp16|fp8|fp4|int8|int4)"
            )
        parts[_KEYS[field.strip()]] = _format(value, _KEYS[field.strip()])
    weights = parts.get("weights", "bfloat16")
    return Precision(
        name=text.strip(),
        weights=weights,
        experts=parts.get("experts", weights),
        activations=parts.get("activations", "bfloat16"),
        kv_cache=parts.get("kv_cache", "bfloat16"),
    )
