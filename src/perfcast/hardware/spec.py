"""Pydantic schema of a hardware spec. All figures are SI: FLOP/s, bytes, bytes/s, s, W, J."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from perfcast.hardware.errors import UnsupportedPrecisionError
from perfcast.sources import Frozen, Source

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
MemoryKind = Literal["hbm", "dram", "llc", "l2", "l1", "smem"]
OFF_CHIP: frozenset[str] = frozenset({"hbm", "dram"})
NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"



def _not_bool(value: object) -> object:
    """YAML's ``true`` would otherwise pass as the number 1."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _not_tiny(value: float) -> float:
    if value < 1e-30:
        raise ValueError(f"{value:g} is below 1e-30")
    return value


# Finite and within 1e-30..1e30, so every product and quotient of figures stays finite.
Positive = Annotated[float, BeforeValidator(_not_bool),
                     Field(gt=0, le=1e30, allow_inf_nan=False), AfterValidator(_not_tiny)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=2**31)]

_DTYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "fp64": ("float64", "double", "f64"),
    "fp32": ("float32", "float", "single", "f32"),
    "tf32": ("tensorfloat32", "tensorfloat-32"),
    "bf16": ("bfloat16",),
    "fp16": ("float16", "half", "f16"),
    "fp8": (
        "float8",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e5m2",
        "float8_e5m2fnuz",
        "e4m3",
        "e5m2",
    ),
    "int8": ("qint8", "quint8", "uint8", "i8"),
    "fp4": ("float4", "float4_e2m1", "float4_e2m1fn_x2", "nvfp4", "mxfp4", "e2m1"),
}
_DTYPE_LOOKUP: dict[str, str] = {
    alias: canon for canon, aliases in _DTYPE_ALIASES.items() for alias in (canon, *aliases)
}


def normalize_dtype(dtype: object) -> str | None:
    """Map a dtype name or ``torch.dtype`` to a catalog precision key, or None if unknown."""
    key = str(dtype).strip().lower().removeprefix("torch.")
    return _DTYPE_LOOKUP.get(key)


class Sourced(Frozen):
    """A figure group that names a key of ``HardwareSpec.sources``."""

    source: str
    note: str | None = None


class ComputeFigure(Sourced):
    """Peak throughput for one precision; ``dense`` excludes 2:4 sparsity."""

    dense: Positive
    sparse: Positive | None = None

    @model_validator(mode="after")
    def _sparse_not_below_dense(self) -> ComputeFigure:
        if self.sparse is not None and self.sparse < self.dense:
            raise ValueError(f"sparse ({self.sparse:g}) is below dense ({self.dense:g})")
        return self


class MemoryLevel(Sourced):
    """One level of the memory hierarchy (capacity summed over the whole device)."""

    level: MemoryKind
    capacity_bytes: Positive
    bandwidth_bytes_per_s: Positive | None = None


class Link(Sourced):
    """An interconnect; bandwidth is per device and per direction.

    ``latency_s`` is the per-hop (per algorithm step) latency of one small message over
    the link, as collective libraries model it; ``latency_source`` names the source of
    that figure when it differs from the link's ``source``.
    """

    name: str
    bandwidth_bytes_per_s_per_direction: Positive
    domain_size: Count
    latency_s: Positive | None = None
    latency_source: str | None = None

    @model_validator(mode="after")
    def _latency_source_needs_latency(self) -> Link:
        if self.latency_source is not None and self.latency_s is None:
            raise ValueError("latency_source is set but latency_s is not")
        return self


class Power(Sourced):
    """Board/package power envelope."""

    tdp_w: Positive
    idle_w: Positive

    @model_validator(mode="after")
    def _idle_below_tdp(self) -> Power:
        if self.idle_w >= self.tdp_w:
            raise ValueError(f"idle_w ({self.idle_w:g}) must be below tdp_w ({self.tdp_w:g})")
        return self


class Energy(Sourced):
    """Dynamic energy per FLOP and per byte of main-memory traffic."""

    flop_j: Positive
    dram_byte_j: Positive


class Figure(Sourced):
    """A single sourced scalar."""

    value: Positive


class Price(Figure):
    """A public list or on-demand price (USD per device-hour)."""


class HardwareSpec(Frozen):
    """Everything perfcast knows about one device (one GPU, one CPU socket, one TPU chip)."""

    name: str = Field(pattern=NAME_PATTERN)
    display_name: str
    vendor: str
    kind: Literal["gpu", "cpu", "tpu", "accelerator"]
    aliases: list[str] = Field(default_factory=list)
    sources: dict[str, Source]
    compute: dict[Precision, ComputeFigure]
    memory: list[MemoryLevel]
    scale_up: Link | None = None
    pcie: Link | None = None
    scale_out: Link | None = None
    power: Power
    energy: Energy
    price_per_hour_usd: Price | None = None
    launch_overhead_s: Figure
    cores: Count | None = None

    @field_validator("memory")
    @classmethod
    def _one_off_chip_level(cls, levels: list[MemoryLevel]) -> list[MemoryLevel]:
        off_chip = [m for m in levels if m.level in OFF_CHIP]
        if len(off_chip) != 1:
            raise ValueError(
                f"exactly one off-chip level (hbm or dram) is required, found {len(off_chip)}"
            )
        if off_chip[0].bandwidth_bytes_per_s is None:
            raise ValueError(f"the {off_chip[0].level} level needs bandwidth_bytes_per_s")
        return levels

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> HardwareSpec:
        problems = [
            f"{path}.source: unknown source key {ref!r} (known: {', '.join(self.sources)})"
            for path, ref in self._source_refs()
            if ref not in self.sources
        ]
        stem = (info.context or {}).get("stem")
        if stem is not None and stem != self.name:
            problems.append(f"name: {self.name!r} must equal the file stem {stem!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _source_refs(self) -> Iterator[tuple[str, str]]:
        for dtype, fig in self.compute.items():
            yield f"compute.{dtype}", fig.source
        for i, mem in enumerate(self.memory):
            yield f"memory.{i}", mem.source
        singles: dict[str, Sourced | None] = {
            "scale_up": self.scale_up,
            "pcie": self.pcie,
            "scale_out": self.scale_out,
            "power": self.power,
            "energy": self.energy,
            "price_per_hour_usd": self.price_per_hour_usd,
            "launch_overhead_s": self.launch_overhead_s,
        }
        for path, fig in singles.items():
            if fig is not None:
                yield path, fig.source
            if isinstance(fig, Link) and fig.latency_source is not None:
                yield f"{path}.latency", fig.latency_source

    def supports(self, dtype: object) -> bool:
        """Whether the spec lists a peak for ``dtype`` (any alias accepted)."""
        return normalize_dtype(dtype) in self.compute

    def peak_flops(self, dtype: object) -> float:
        """Dense peak FLOP/s (OP/s for int8) at ``dtype``; raises UnsupportedPrecisionError."""
        key = normalize_dtype(dtype)
        if key is None or key not in self.compute:
            raise UnsupportedPrecisionError(self.name, str(dtype), list(self.compute))
        return self.compute[key].dense

    @property
    def main_memory(self) -> MemoryLevel:
        """The single off-chip level (HBM or DRAM)."""
        return next(m for m in self.memory if m.level in OFF_CHIP)

    @property
    def memory_bandwidth(self) -> float:
        """Main-memory bandwidth in bytes/s."""
        bandwidth = self.main_memory.bandwidth_bytes_per_s
        assert bandwidth is not None  # guaranteed by _one_off_chip_level
        return bandwidth

    @property
    def memory_capacity(self) -> float:
        """Main-memory capacity in bytes."""
        return self.main_memory.capacity_bytes
