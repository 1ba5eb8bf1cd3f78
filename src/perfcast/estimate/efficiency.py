"""Efficiency models: what fraction of peak compute and bandwidth a kernel achieves.

The estimator asks an :class:`EfficiencyModel` for each kernel. The default,
:class:`TheoreticalEfficiency`, returns fixed fractions (1.0: the plain roofline)
with confidence THEORETICAL; calibrated models fitted from measurements plug in
through the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from perfcast.hardware import HardwareSpec
    from perfcast.ir.tensor import Dim
    from perfcast.passes import Kernel


class Confidence(StrEnum):
    """How an estimate was obtained, from most to least trustworthy."""

    CALIBRATED = "CALIBRATED"  # inside the range measured on that machine
    INTERPOLATED = "INTERPOLATED"  # between or near measurements
    THEORETICAL = "THEORETICAL"  # datasheet peaks and default efficiencies
    PARTIAL = "PARTIAL"  # some ops are unknown to the registry: work is missing

    @property
    def rank(self) -> int:
        return list(Confidence).index(self)

    @classmethod
    def weakest(cls, levels: list[Confidence]) -> Confidence:
        return max(levels, key=lambda c: c.rank) if levels else cls.THEORETICAL


@dataclass(frozen=True)
class Efficiency:
    compute: Dim  # achieved / peak FLOP/s, in (0, 1]
    memory: Dim  # achieved / peak bandwidth, in (0, 1]
    confidence: Confidence


class EfficiencyModel(Protocol):
    def __call__(self, kernel: Kernel, hardware: HardwareSpec) -> Efficiency: ...


@dataclass(frozen=True)
class TheoreticalEfficiency:
    """Constant fractions of peak; 1.0 and 1.0 give the plain roofline."""

    compute: float = 1.0
    memory: float = 1.0

    def __post_init__(self) -> None:
        for field, value in (("compute", self.compute), ("memory", self.memory)):
            if not 0 < value <= 1:
                raise ValueError(f"{field} efficiency must be in (0, 1], got {value}")

    def __call__(self, kernel: Kernel, hardware: HardwareSpec) -> Efficiency:
        return Efficiency(self.compute, self.memory, Confidence.THEORETICAL)
