"""Which kernel-time model an LLM estimate uses: the fitted serving efficiencies, or a
measured GPU profile of a serving engine (``--engine trtllm|sglang|vllm``)."""

from __future__ import annotations

from perfcast.estimate.gpu_profile import ENGINES, GpuProfile, find_profile
from perfcast.estimate.kernel_time import KernelTimeModel
from perfcast.estimate.llm_efficiency import (
    LLMEfficiency,
    ServingTime,
    default_efficiency,
    measured_overheads,
)
from perfcast.estimate.measured_time import DISTRIBUTIONS, MeasuredTime
from perfcast.hardware import HardwareSpec

FITTED = "fitted"
ENGINE_CHOICES = (FITTED, *ENGINES)
DEFAULT_ENGINE = FITTED


class EngineError(ValueError):
    """An unknown engine or MoE token distribution."""


def check_engine(engine: str | None, distribution: str = "random") -> str:
    """The engine name, validated (None: the default)."""
    name = (engine or DEFAULT_ENGINE).strip().lower()
    if name not in ENGINE_CHOICES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_CHOICES)}")
    if distribution not in DISTRIBUTIONS:
        raise EngineError(f"unknown MoE token distribution {distribution!r}; choose one of "
                          f"{', '.join(DISTRIBUTIONS)}")
    return name


def engine_profile(hw: HardwareSpec, engine: str | None) -> GpuProfile | None:
    """The profile of ``hw`` for ``engine`` (None for ``fitted`` or when there is none)."""
    name = check_engine(engine)
    return None if name == FITTED else find_profile(hw.name, name)


def serving_time_model(hw: HardwareSpec, efficiency: LLMEfficiency | None, engine: str | None,
                       distribution: str = "random"
                       ) -> tuple[KernelTimeModel, LLMEfficiency, str | None]:
    """The kernel-time model for ``hw``, the efficiencies and overheads it goes with, and
    the name of the profile it uses (or None). Without ``efficiency``: the fitted defaults,
    or with a profile :func:`~perfcast.estimate.llm_efficiency.measured_overheads`."""
    check_engine(engine, distribution)
    profile = engine_profile(hw, engine)
    if profile is None:
        eff = efficiency or default_efficiency()
        return ServingTime(eff), eff, None
    eff = efficiency or measured_overheads()
    return MeasuredTime(profile, ServingTime(eff), distribution), eff, profile.name
