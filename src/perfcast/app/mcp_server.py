"""``perfcast mcp``: the service layer as MCP tools (official ``mcp`` SDK, stdio or HTTP).

Each tool is a thin adapter: typed parameters with bounds (names are enums of the bundled
catalogs) in, the :mod:`perfcast.app.service` function's JSON out, so a tool answers with
the numbers the CLI prints with ``--json``. Service errors come back as tool errors that
name the parameter at fault. No tool reads a path, imports user code or runs a command:
models are built-in examples or catalog entries, and every tool only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

import perfcast
from perfcast.app import service
from perfcast.app.errors import NotFound, ServiceError
from perfcast.app.schemas import Count, Parallel, Tokens
from perfcast.app.service import MAX_BATCH, MAX_DEVICES, MAX_SEQ_LEN
from perfcast.examples import list_examples
from perfcast.frontends.llm import model_names
from perfcast.frontends.llm.precision import PRESETS
from perfcast.hardware import catalog_names
from perfcast.passes import TARGETS
from perfcast.store import RUN_STATUSES

ToolFn = Callable[..., dict[str, Any]]
TRANSPORTS = ("stdio", "http")
HTTP_PATH = "/mcp"

# Enums from the bundled catalogs, so a client sees every valid name in the tool schema.
HardwareName = Literal[tuple(catalog_names())]  # type: ignore[valid-type]
LLMName = Literal[tuple(model_names())]  # type: ignore[valid-type]
ExampleName = Literal[tuple(e.name for e in list_examples())]  # type: ignore[valid-type]
FusionTarget = Literal[tuple(TARGETS)]  # type: ignore[valid-type]
RunStatus = Literal[RUN_STATUSES]  # type: ignore[valid-type]
RunId = Annotated[str, Field(min_length=1, max_length=200,
                             description="A run id from list_runs.")]

_PRESETS = ", ".join(PRESETS)
Precision = Annotated[str, Field(
    min_length=1, max_length=200,
    description=f"A preset ({_PRESETS}) or a mix such as "
                "'weights=fp8,experts=fp4,activations=fp8,kv=fp8'.")]

INSTRUCTIONS = """\
perfcast predicts how fast deep-learning models run on catalog hardware and reports how
accurate those predictions have been. Tools only read: they never run commands or user
code and never store results.
- Hardware: list_hardware (all devices, headline figures), show_hardware (one device, every
  figure with its source).
- A model's forward pass (built-in examples such as resnet50, gpt2, llama3-8b): analyze.
- Serving an LLM from the catalog: llm_estimate (one deployment), llm_sweep (search a grid,
  Pareto front of throughput per GPU against interactivity).
- Benchmarks measured on this machine: list_runs, compare_runs.
- Accuracy: validation_llm (LLM serving vs published benchmarks), validation_summary
  (model latency vs measurements stored on this machine).
All quantities are SI: seconds, bytes, FLOP/s, watts, joules; costs in USD."""


def _tool_error(exc: ServiceError, rename: dict[str, str]) -> ToolError:
    """A service error as the SDK's ToolError, ``field: reason`` plus the allowed values,
    with the service's field renamed to the tool's parameter where ``rename`` says so."""
    field = rename.get(exc.field)
    if field is not None:
        exc = (NotFound(field, exc.value, exc.allowed, exc.suggestions)
               if isinstance(exc, NotFound) else type(exc)(field, exc.reason))
    allowed = getattr(exc, "allowed", None)
    hint = f" (allowed: {', '.join(map(str, allowed))})" if allowed else ""
    return ToolError(f"{exc}{hint}")


def _call(fn: Callable[..., Any], *args: Any, rename: dict[str, str] | None = None,
          **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with service errors raised as tool errors; ``rename`` maps
    the service's field names to the tool's parameter names."""
    try:
        return fn(*args, **kwargs)
    except ServiceError as exc:
        raise _tool_error(exc, rename or {}) from None


def _slowest(estimate: dict[str, Any], top: int) -> dict[str, Any]:
    """``estimate`` with only its ``top`` slowest kernels (0 keeps every kernel)."""
    kernels = estimate["kernels"]
    if top == 0 or len(kernels) <= top:
        return estimate
    slowest = sorted(kernels, key=lambda k: k["time_s"], reverse=True)[:top]
    return {**estimate, "kernels": slowest, "kernels_omitted": len(kernels) - top}


def build_server(db: str | Path | None = None) -> MCPServer:
    """The perfcast MCP server; store-backed tools read the results database ``db``
    (None: ``$PERFCAST_DB`` or ``.perfcast/perfcast.db``)."""
    server = MCPServer("perfcast", title="perfcast", version=perfcast.__version__,
                       instructions=INSTRUCTIONS, log_level="WARNING")

    def tool(title: str) -> Callable[[ToolFn], ToolFn]:
        hints = ToolAnnotations(title=title, read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True, open_world_hint=False)

        def register(fn: ToolFn) -> ToolFn:
            server.add_tool(fn, title=title, annotations=hints)
            return fn
        return register

    @tool("List catalog hardware")
    def list_hardware() -> dict[str, Any]:
        """Every device in perfcast's hardware catalog (GPUs, TPUs, CPUs, accelerators)
        with headline figures: dense peak FLOP/s per dtype, memory capacity (bytes) and
        bandwidth (bytes/s), TDP (W), price (USD/hour) and aliases. Choose this to find
        device names or compare devices at a glance; choose show_hardware for every figure
        of one device with its sources."""
        return {"devices": _call(service.list_hardware)}

    @tool("Show one device")
    def show_hardware(
        name: Annotated[HardwareName, Field(description="Catalog device name.")],
    ) -> dict[str, Any]:
        """Every figure of one catalog device with the source of each: compute peaks per
        dtype (dense and 2:4 sparse), memory levels (capacity, bandwidth), interconnects,
        power, energy per FLOP and per byte, launch overhead, price. Same JSON as
        `perfcast hw show NAME --json`. Choose list_hardware to compare many devices."""
        return _call(service.show_hardware, name, rename={"key": "name"})

    @tool("Analyze a model")
    def analyze(
        model: Annotated[ExampleName, Field(description="Built-in example model.")],
        hardware: Annotated[list[HardwareName], Field(
            min_length=1, max_length=MAX_DEVICES,
            description="Catalog devices; one estimate each.")] = ["h100-sxm"],  # noqa: B006
        dtype: Annotated[str | None, Field(
            max_length=20, description="Precision of weights and activations (fp32, bf16, "
                                       "fp16, fp8); default: the model's own.")] = None,
        batch: Annotated[int, Field(ge=1, le=MAX_BATCH, description="Batch size.")] = 1,
        seq_len: Annotated[int, Field(
            ge=1, le=MAX_SEQ_LEN,
            description="Sequence length (transformer examples).")] = 128,
        target: Annotated[FusionTarget, Field(
            description="Kernel fusion of the runtime: eager (PyTorch eager, one kernel per "
                        "op), compile (torch.compile), perfcast (perfcast's runtime).")]
        = "eager",
        top: Annotated[int, Field(
            ge=0, le=100_000,
            description="Keep the `top` slowest kernels, slowest first ('kernels_omitted' "
                        "counts the rest); 0 keeps every kernel in graph order, exactly "
                        "as the CLI prints.")] = 20,
    ) -> dict[str, Any]:
        """Latency, FLOPs, bytes moved, parameters, memory and energy of one forward pass
        of a built-in example model (MLP, ResNet-50, a small CNN, GPT-2, BERT, Llama 3,
        Qwen3, Mixtral) on catalog devices, kernel by kernel with its roofline bound, plus
        a per-layer breakdown. Numbers equal `perfcast analyze examples:NAME --json`;
        `estimates` holds one estimate per device. Choose llm_estimate instead to serve
        an LLM (TTFT, TPOT, throughput, KV cache, parallelism, cost)."""
        estimates = _call(service.analyze, model, hardware, dtype=dtype, batch=batch,
                          seq_len=seq_len, target=target)
        return {"estimates": [_slowest(e, top) for e in estimates]}

    @tool("Estimate LLM serving")
    def llm_estimate(
        model: Annotated[LLMName, Field(description="Catalog LLM.")],
        hardware: Annotated[HardwareName, Field(description="Catalog device.")] = "h100-sxm",
        tp: Annotated[Parallel, Field(description="Tensor-parallel GPUs per stage.")] = 1,
        pp: Annotated[Parallel, Field(description="Pipeline stages.")] = 1,
        ep: Annotated[Parallel, Field(description="Expert-parallel groups (divides tp).")] = 1,
        dp: Annotated[Parallel, Field(description="Independent replicas.")] = 1,
        dp_attention: Annotated[bool, Field(
            description="Data-parallel attention over the tp GPUs.")] = False,
        isl: Annotated[Tokens, Field(description="Input tokens per request.")] = 1024,
        osl: Annotated[Tokens, Field(description="Output tokens per request.")] = 1024,
        concurrency: Annotated[Count, Field(description="Requests in flight.")] = 1,
        precision: Precision = "bf16",
        kv_cache: Annotated[str | None, Field(
            max_length=20, description="KV-cache format (bf16, fp8); default: the "
                                       "precision's.")] = None,
        requests: Annotated[Count | None, Field(
            description="Prompts in a benchmark run, all starting at once (InferenceMAX "
                        "uses 10 x concurrency); default: steady state.")] = None,
        engine: Annotated[Literal["fitted", "trtllm", "sglang", "vllm"], Field(
            description="Kernel times: fitted efficiencies, or that serving engine's "
                        "measured GPU kernel profile (CALIBRATED where measured).")] = "fitted",
    ) -> dict[str, Any]:
        """Serving metrics of one LLM deployment: TTFT, TPOT, end-to-end latency,
        interactivity (tokens/s per user), throughput per GPU, memory per GPU (weights, KV
        cache, activations), largest feasible concurrency, cost per million tokens, time
        per phase and per layer group, and whether it fits at all. Same JSON as
        `perfcast llm estimate --json`. Choose llm_sweep to search many parallelism,
        precision, hardware and concurrency settings for the best trade-off."""
        return _call(service.llm_estimate, model, hardware, tp=tp, pp=pp, ep=ep, dp=dp,
                     dp_attention=dp_attention, isl=isl, osl=osl, concurrency=concurrency,
                     precision=precision, kv_cache=kv_cache, requests=requests,
                     engine=engine)

    @tool("Sweep LLM deployments (Pareto front)")
    def llm_sweep(
        model: Annotated[LLMName, Field(description="Catalog LLM.")],
        hardware: Annotated[list[HardwareName], Field(
            min_length=1, max_length=32, description="Catalog devices.")]
        = ["h100-sxm", "h200", "b200"],  # noqa: B006
        tp: Annotated[list[Parallel], Field(
            min_length=1, max_length=64, description="Tensor-parallel sizes.")]
        = [1, 2, 4, 8],  # noqa: B006
        ep: Annotated[list[Parallel] | None, Field(
            max_length=64, description="Expert-parallel sizes; default: every divisor of "
                                       "tp for a MoE model, 1 for a dense one.")] = None,
        pp: Annotated[list[Parallel], Field(
            min_length=1, max_length=64, description="Pipeline stages.")] = [1],  # noqa: B006
        dp_attention: Annotated[Literal["off", "on", "both"], Field(
            description="Data-parallel attention: off, on, or try both.")] = "off",
        precision: Annotated[list[Precision], Field(
            min_length=1, max_length=16, description="Precisions to try.")]
        = ["bf16", "fp8"],  # noqa: B006
        isl: Annotated[list[Tokens], Field(
            min_length=1, max_length=64, description="Input tokens per request.")]
        = [1024],  # noqa: B006
        osl: Annotated[list[Tokens], Field(
            min_length=1, max_length=64, description="Output tokens per request.")]
        = [1024],  # noqa: B006
        concurrency: Annotated[list[Count], Field(
            min_length=1, max_length=256, description="Requests in flight.")]
        = [2**i for i in range(10)],  # noqa: B006
    ) -> dict[str, Any]:
        """Evaluate every combination of hardware x precision x parallelism (tp, ep, pp,
        DP attention) x concurrency x workload for one catalog LLM and return the Pareto
        front of throughput per GPU against interactivity (tokens/s per user) per hardware
        and precision, as InferenceMAX charts it, with counts of evaluated, skipped and
        infeasible configurations. Same JSON as `perfcast llm sweep --json` (Pareto rows).
        Choose llm_estimate for the full breakdown of one configuration."""
        return _call(service.llm_sweep, model, hardware, tp=tp, ep=ep, pp=pp,
                     dp_attention=dp_attention, precision=precision, isl=isl, osl=osl,
                     concurrency=concurrency)

    @tool("List benchmark runs")
    def list_runs(
        limit: Annotated[int, Field(ge=1, le=1000, description="Most runs to return.")] = 20,
        target: Annotated[str | None, Field(
            max_length=200, description="Only runs with results for this benchmark "
                                        "target, e.g. micro:gemm.")] = None,
        status: Annotated[RunStatus | None, Field(description="Only runs in this status.")]
        = None,
    ) -> dict[str, Any]:
        """Benchmark runs stored in the results database by `perfcast bench run`, newest
        first: id, status, start and end time, number of results, git commit, command.
        Same rows as `perfcast bench runs --json`. Choose compare_runs to compare two of
        them."""
        return {"runs": _call(service.list_runs, db, limit=limit, target=target,
                              status=status)}

    @tool("Compare two benchmark runs")
    def compare_runs(
        run_a: Annotated[RunId, Field(description="Baseline run id (from list_runs).")],
        run_b: Annotated[RunId, Field(description="Candidate run id (from list_runs).")],
        min_effect: Annotated[float, Field(
            ge=0.0, le=1.0, description="Smallest relative change that counts.")] = 0.03,
        allow_environment_change: Annotated[bool, Field(
            description="Compare runs measured in different environments.")] = False,
    ) -> dict[str, Any]:
        """Run B against run A target by target: medians, ratio B/A with its 95%
        confidence interval, p-value and a verdict (faster, slower, noisy or unchanged),
        plus targets found in only one run. Same JSON as `perfcast bench compare A B
        --json`. Choose list_runs first to find run ids."""
        return _call(service.compare_runs, db, run_a, run_b, min_effect=min_effect,
                     allow_environment_change=allow_environment_change,
                     rename={"a": "run_a", "b": "run_b"})

    @tool("LLM serving accuracy")
    def validation_llm(
        hardware: Annotated[list[HardwareName] | None, Field(
            max_length=32, description="Only rows on these devices; default: all.")] = None,
    ) -> dict[str, Any]:
        """How accurate perfcast's LLM serving estimates are against published InferenceMAX
        and MLPerf measurements: counts, and the MAPE and median APE of throughput per
        GPU, TPOT, interactivity and TTFT overall and per hardware, model and framework.
        Same JSON as `perfcast validate llm --json` without the per-row list. Choose
        validation_summary for model-latency accuracy measured on this machine."""
        return _call(service.validation_llm, hardware)

    @tool("Model latency accuracy on this machine")
    def validation_summary() -> dict[str, Any]:
        """How accurate perfcast's model-latency estimates are on the machine whose results
        database is served: the newest prediction against the measurement per (model,
        batch, threads) from `perfcast validate models`, APE summaries overall, per model
        and per confidence level, and predicted time per op category. Empty (count 0)
        when that command has not been run. Choose validation_llm for LLM serving
        accuracy against published benchmarks."""
        return _call(service.validation_summary, db)

    return server


def serve(transport: str = "stdio", *, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, db: str | Path | None = None) -> None:
    """Run the server until the client disconnects (stdio) or the process is stopped
    (``http``: streamable HTTP at ``http://HOST:PORT/mcp``, every request carrying
    ``Authorization: Bearer TOKEN`` when ``token`` is set)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    server = build_server(db)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    from perfcast.app.security import TokenGuard

    # On a loopback host the SDK also refuses foreign Host/Origin headers (DNS rebinding).
    app: Any = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    if token is not None:
        app = TokenGuard(app, token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
