"""Request and response models of the HTTP API (pydantic, with bounds on every number).

Unknown fields are refused (``extra="forbid"``), so a misspelt option is an error rather
than silently ignored. Response bodies are the service layer's JSON; the models here
describe their envelope for the OpenAPI page.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perfcast.app.service import MAX_BATCH, MAX_DEVICES, MAX_SEQ_LEN

Name = Annotated[str, Field(min_length=1, max_length=100)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]
Parallel = Annotated[int, Field(ge=1, le=1024)]
Tokens = Annotated[int, Field(ge=1, le=10_000_000)]


class _Request(BaseModel):
    """Strict: ``true`` or ``2.0`` is not an integer, ``1`` is not a boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AnalyzeRequest(_Request):
    """Estimate a built-in example (``perfcast analyze examples:NAME``)."""

    model: Name = Field(description="Example name (GET /api/examples), e.g. gpt2 or resnet50.")
    hardware: list[Name] = Field(default=["h100-sxm"], min_length=1, max_length=MAX_DEVICES,
                                 description="Catalog devices or aliases.")
    dtype: Name | None = Field(default=None, description="fp32, bf16, fp16, fp8...; default: "
                                                         "the model's own.")
    batch: int = Field(default=1, ge=1, le=MAX_BATCH)
    seq_len: int = Field(default=128, ge=1, le=MAX_SEQ_LEN)
    target: Literal["eager", "compile", "perfcast"] = "eager"


Engine = Annotated[Literal["fitted", "trtllm", "sglang", "vllm"], Field(
    description="Kernel times: fitted efficiencies, or a serving engine's measured GPU "
                "kernel profile (GET /api/hardware profiles: perfcast hw profiles).")]


class LLMEstimateRequest(_Request):
    """One serving configuration (``perfcast llm estimate``)."""

    model: Name = Field(description="Catalog model or alias (GET /api/llm/models).")
    hardware: Name = "h100-sxm"
    tp: Parallel = 1
    pp: Parallel = 1
    ep: Parallel = 1
    dp: Parallel = 1
    dp_attention: bool = False
    isl: Tokens = 1024
    osl: Tokens = 1024
    concurrency: Count = 1
    precision: Annotated[str, Field(min_length=1, max_length=200)] = "bf16"
    kv_cache: Name | None = None
    requests: Count | None = None
    engine: Engine = "fitted"
    moe_distribution: Literal["random", "balanced", "power_law_1.01",
                              "power_law_1.2"] = "random"


class LLMSweepRequest(_Request):
    """A grid of serving configurations (``perfcast llm sweep``); runs as a job."""

    model: Name
    hardware: list[Name] = Field(default=["h100-sxm", "h200", "b200"], min_length=1,
                                 max_length=32)
    tp: list[Parallel] = Field(default=[1, 2, 4, 8], min_length=1, max_length=64)
    ep: list[Parallel] | None = Field(default=None, max_length=64,
                                      description="None: every divisor of tp (MoE models).")
    pp: list[Parallel] = Field(default=[1], min_length=1, max_length=64)
    dp_attention: Literal["off", "on", "both"] = "off"
    precision: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=["bf16", "fp8"], min_length=1, max_length=16)
    isl: list[Tokens] = Field(default=[1024], min_length=1, max_length=64)
    osl: list[Tokens] = Field(default=[1024], min_length=1, max_length=64)
    concurrency: list[Count] = Field(default=[2**i for i in range(10)], min_length=1,
                                     max_length=256)
    show_all: bool = Field(default=False, description="Every row instead of the Pareto front.")
    engine: Engine = "fitted"


class BenchRunRequest(_Request):
    """Time registered benchmarks (``perfcast bench run``); runs as a job."""

    targets: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=64, description="Suites, targets or globs (micro:gemm*).")
    params: dict[Name, list[Annotated[str, Field(max_length=100)]]] = Field(
        default_factory=dict, description="Keep cases with these parameter values.")
    tags: list[Name] = Field(default_factory=list, max_length=16)
    threads: int | None = Field(default=None, ge=1, le=1024)
    budget_s: float = Field(default=2.0, ge=0.01, le=60.0)
    target_ci: float = Field(default=0.02, ge=0.0001, le=1.0)
    min_samples: int = Field(default=10, ge=2, le=10_000)


class ErrorBody(BaseModel):
    """Every 4xx answer: what kind of error, which input field, and why."""

    error: str = Field(description="bad_input, not_found, unavailable, unauthorized, "
                                   "too_large or validation")
    field: str | None = Field(description="The request field at fault (dotted path).")
    reason: str
    value: Any = None
    allowed: list[str] | None = None


class JobAccepted(BaseModel):
    job_id: str
    status: str
    url: str


class JobStatus(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float
    message: str
    created_at: float
    finished_at: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
