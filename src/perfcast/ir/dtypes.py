"""Element types known to the IR: canonical names, sizes and aliases."""

from __future__ import annotations

# Canonical names follow torch's dtype names; sizes are in bytes per element.
# Sub-byte formats (fp4, int4) have fractional sizes.
ITEMSIZE: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float4_e2m1": 0.5,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "int4": 0.5,
    "bool": 1,
    "complex64": 8,
}

_ALIASES: dict[str, str] = {
    "fp64": "float64",
    "double": "float64",
    "fp32": "float32",
    "float": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "fp8": "float8_e4m3fn",
    "e4m3": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "fp4": "float4_e2m1",
    "nvfp4": "float4_e2m1",
    "mxfp4": "float4_e2m1",
    "long": "int64",
    "int": "int32",
}

FLOATING = frozenset(
    {"float64", "float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1"}
)


class DTypeError(ValueError):
    """An element type the IR does not know."""


def canonical(name: str) -> str:
    """Return the canonical dtype name for ``name`` (``"bf16"`` -> ``"bfloat16"``)."""
    key = str(name).removeprefix("torch.").lower()
    key = _ALIASES.get(key, key)
    if key not in ITEMSIZE:
        allowed = ", ".join(sorted(ITEMSIZE))
        raise DTypeError(f"unknown dtype {name!r}; allowed: {allowed} (or fp32/bf16/fp16/fp8/fp4)")
    return key


def itemsize(name: str) -> float:
    """Bytes per element of dtype ``name``."""
    return ITEMSIZE[canonical(name)]
