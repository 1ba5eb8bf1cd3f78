"""Which kernel-time model an LLM estimate uses: the fitted serving efficiencies, or a
measured GPU profile of a serving engine (``--engine trtllm|sglang|vllm``)."""

from __future__ import annotations

from perfcast.estimate.gpu_profile import ENGINES, GpuProfile, find_profile
from perfcast.estimate.kernel_time import KernelTimeModel
from perfcast.estimate.llm_efficiency import LLMEfficiency, ServingTime
from perfcast.estimate.measured_time import DISTRIBUTIONS, MeasuredTime
from perfcast.hardware import HardwareSpec

FITTED = "fitted"
ENGINE_CHOICES = (FITTED, *ENGINES)
DEFAULT_ENGINE = FITTED


class EngineError(ValueError):
    """An unknown engine or MoE token distribution."""


def check_engine(engine: str | None, distribution: str = "balanced") -> str:
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


def serving_time_model(hw: HardwareSpec, efficiency: LLMEfficiency, engine: str | None,
                       distribution: str = "balanced") -> tuple[KernelTimeModel, str | None]:
    """The kernel-time model for ``hw`` and the name of the profile it uses (or None)."""
    check_engine(engine, distribution)
    base = ServingTime(efficiency)
    profile = engine_profile(hw, engine)
    if profile is None:
        return base, None
    return MeasuredTime(profile, base, distribution), profile.name
