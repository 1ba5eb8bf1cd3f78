"""The HTTP API (FastAPI): thin routes over :mod:`perfcast.app.service`.

Errors are JSON ``{"error", "field", "reason"}``: 422 for input that fails validation
(schema or meaning), 404 for unknown names and ids, 413 for oversized bodies, 401 without
the token, 503 when an optional dependency is missing. Long work (sweeps, benchmark runs)
answers 202 with a job id to poll at ``/api/jobs/{id}``. OpenAPI is served at ``/docs``.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from perfcast import __version__
from perfcast.app import service
from perfcast.app.errors import BadInput, NotFound, ServiceError, TooLarge, Unavailable
from perfcast.app.jobs import JobManager
from perfcast.app.schemas import (
    AnalyzeRequest,
    BenchRunRequest,
    ErrorBody,
    JobAccepted,
    JobStatus,
    LLMEstimateRequest,
    LLMSweepRequest,
)
from perfcast.app.security import BodyLimit, HostGuard, TokenGuard

DEFAULT_MAX_UPLOAD_BYTES = 64 << 20
JSON_BODY_LIMIT = 1 << 20
MULTIPART_OVERHEAD = 64 << 10
STATUS = {BadInput: 422, NotFound: 404, TooLarge: 413, Unavailable: 503}
ERRORS = {code: {"model": ErrorBody} for code in (401, 404, 413, 422)}
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,199}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+()\-]{0,199}")


def create_app(db_path: str | Path | None = None, token: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The API (and the dashboard pages) over the results store at ``db_path``.

    ``token``: required on every request but ``/api/health`` when set; ``allowed_hosts``:
    Host header names to accept (None: any); ``max_upload_bytes``: ONNX upload limit.
    """
    jobs = JobManager()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        jobs.shutdown()

    app = FastAPI(title="perfcast", version=__version__, lifespan=lifespan,
                  description="Predict, measure and improve the performance of deep-learning "
                              "models. Errors: JSON {error, field, reason}; 422 invalid input, "
                              "404 unknown name or id, 413 body too large, 401 no token.")
    app.state.db = db_path
    app.state.jobs = jobs
    app.state.token_required = token is not None
    app.state.max_upload_bytes = max_upload_bytes
    _error_handlers(app)
    _routes(app, db_path, jobs, max_upload_bytes)
    from perfcast.app.pages import mount_pages

    mount_pages(app)

    def limit_for(path: str) -> int:
        return max_upload_bytes + MULTIPART_OVERHEAD if path == "/api/analyze/onnx" \
            else JSON_BODY_LIMIT

    app.add_middleware(BodyLimit, limit_for=limit_for)
    if token is not None:
        app.add_middleware(TokenGuard, token=token)
    if allowed_hosts is not None:
        app.add_middleware(HostGuard, hosts=allowed_hosts)
    return app


# -- errors ------------------------------------------------------------------------------


class _ErrorJSON(JSONResponse):
    """ASCII JSON, so an echoed lone surrogate (a broken UTF-16 pair) cannot fail to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return _ErrorJSON(exc.to_dict(), status_code=STATUS.get(type(exc), 422))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in exc.errors()]
        first = problems[0] if problems else {"field": None, "reason": "invalid request"}
        return _ErrorJSON({"error": "validation", **first, "errors": problems},
                          status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not parse the body (e.g. a 5000-digit int)
            problem = {"field": "body", "location": "body", "reason": str(exc.detail)}
            return _ErrorJSON({"error": "validation", **problem, "errors": [problem]},
                              status_code=422)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        reason = f"no route {request.method} {request.url.path}" if exc.status_code in (
            404, 405) else str(exc.detail)
        return _ErrorJSON({"error": kind, "field": "path", "reason": reason},
                            status_code=exc.status_code, headers=exc.headers)


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) for p in error.get("loc", ())]
    where = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "form") else None
    field = ".".join(loc[1:] if where else loc) or where
    if error.get("type") == "json_invalid":
        field = "body"
    out = {"field": field, "location": where, "reason": error.get("msg", "invalid")}
    if "input" in error and _echoable(error["input"]):
        out["value"] = error["input"]
    return out


def _echoable(value: Any) -> bool:
    """Whether ``value`` may be repeated in an error body: short and valid JSON (no NaN,
    infinity or integer beyond 2**53)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= 2**53
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= 200


# -- routes ------------------------------------------------------------------------------


def _routes(app: FastAPI, db: str | Path | None, jobs: JobManager, max_upload: int) -> None:
    @app.get("/api/health", tags=["system"])
    def health() -> dict[str, str]:
        """Liveness: always 200 while the server runs (no token needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/system", tags=["system"])
    def system() -> dict[str, Any]:
        """Software versions, dependency health, the store, the catalogs, server settings."""
        return {**service.system_info(db),
                "server": {"token_required": app.state.token_required,
                           "max_upload_bytes": max_upload,
                           "jobs": len(jobs.list())}}

    @app.get("/api/hardware", tags=["hardware"])
    def hardware_list() -> list[dict[str, Any]]:
        """Every catalog device with headline figures (SI units, dense peaks)."""
        return service.list_hardware()

    @app.get("/api/hardware/detect", tags=["hardware"])
    def hardware_detect() -> dict[str, Any]:
        """This machine (``perfcast hw detect --json``)."""
        return service.detect_hardware()

    @app.get("/api/hardware/{key}", tags=["hardware"], responses=ERRORS)
    def hardware_show(key: str) -> dict[str, Any]:
        """One device with every figure and source (``perfcast hw show KEY --json``)."""
        return service.show_hardware(key)

    @app.get("/api/examples", tags=["analysis"])
    def examples() -> list[dict[str, str]]:
        """The built-in example models."""
        return service.list_examples()

    @app.post("/api/analyze", tags=["analysis"], responses=ERRORS)
    def analyze(req: AnalyzeRequest) -> list[dict[str, Any]]:
        """One estimate per device (``perfcast analyze --json``), kernels and layers
        included."""
        return service.analyze(req.model, req.hardware, dtype=req.dtype, batch=req.batch,
                               seq_len=req.seq_len, target=req.target)

    @app.post("/api/analyze/onnx", tags=["analysis"], responses=ERRORS)
    def analyze_onnx(
        file: Annotated[UploadFile, File(description="An .onnx model (protobuf).")],
        hardware: Annotated[list[str], Form(max_length=service.MAX_DEVICES)] = ["h100-sxm"],  # noqa: B006
        dtype: Annotated[str | None, Form(max_length=100)] = None,
        batch: Annotated[int | None, Form(ge=1, le=service.MAX_BATCH)] = None,
        target: Annotated[str, Form(pattern="^(eager|compile|perfcast)$")] = "eager",
        dims: Annotated[str | None, Form(max_length=2000, description='JSON object of '
                                         'symbolic input dimensions, e.g. {"seq": 128}')]
        = None,
    ) -> list[dict[str, Any]]:
        """Estimate an uploaded ONNX model (parsed with onnx; size-limited)."""
        name = _upload_name(file.filename)
        data = file.file.read(max_upload + 1)
        if len(data) > max_upload:
            raise TooLarge("file", f"the upload is larger than the limit of {max_upload:,} bytes")
        return service.analyze_onnx(data, hardware, name=name, dtype=dtype, batch=batch,
                                    target=target, dims=_dims(dims))

    @app.get("/api/llm/models", tags=["llm"])
    def llm_models() -> list[dict[str, Any]]:
        """The LLM catalog (``perfcast llm models --json``)."""
        return service.llm_models()

    @app.post("/api/llm/estimate", tags=["llm"], responses=ERRORS)
    def llm_estimate(req: LLMEstimateRequest) -> dict[str, Any]:
        """Serving metrics of one deployment (``perfcast llm estimate --json``)."""
        return service.llm_estimate(**req.model_dump())

    @app.post("/api/llm/sweep", tags=["llm"], status_code=202, responses=ERRORS)
    def llm_sweep(req: LLMSweepRequest, request: Request) -> JobAccepted:
        """Start a sweep (``perfcast llm sweep --json``) as a job; poll its URL."""
        args = req.model_dump()
        service.check_sweep(**args)
        job = jobs.submit("sweep", lambda progress: service.llm_sweep(**args,
                                                                     progress=progress))
        return _accepted(job, request)

    @app.get("/api/jobs", tags=["jobs"])
    def job_list() -> list[dict[str, Any]]:
        """Every known job, newest first, without results."""
        return [{k: v for k, v in j.to_dict().items() if k != "result"} for j in jobs.list()]

    @app.get("/api/jobs/{job_id}", tags=["jobs"], responses=ERRORS)
    def job_status(job_id: str) -> JobStatus:
        """Status, progress (0..1) and, when done, the result or the error."""
        job = jobs.get(job_id)
        if job is None:
            raise NotFound("job_id", job_id)
        return JobStatus(**job.to_dict())

    @app.get("/api/bench/targets", tags=["runs"])
    def bench_targets() -> list[dict[str, Any]]:
        """The built-in benchmark targets (``perfcast bench list --json``)."""
        return service.bench_targets()

    @app.post("/api/runs", tags=["runs"], status_code=202, responses=ERRORS)
    def bench_run(req: BenchRunRequest, request: Request) -> JobAccepted:
        """Start a benchmark run (``perfcast bench run --json``) as a job."""
        args = req.model_dump()
        threads = args.pop("threads")
        service.check_benchmarks(**args)
        job = jobs.submit("bench", lambda progress: service.run_benchmarks(
            db, **args, threads=threads, progress=progress))
        return _accepted(job, request)

    @app.get("/api/runs", tags=["runs"], responses=ERRORS)
    def runs(limit: Annotated[int, Query(ge=1, le=1000)] = 20,
             target: Annotated[str | None, Query(max_length=200)] = None,
             status: Annotated[str | None, Query(max_length=50)] = None) -> list[dict[str, Any]]:
        """The latest runs, newest first (``perfcast bench runs --json``)."""
        return service.list_runs(db, limit=limit, target=target, status=status)

    @app.get("/api/runs/compare", tags=["runs"], responses=ERRORS)
    def runs_compare(a: Annotated[str, Query(description="Baseline run id.")],
                     b: Annotated[str, Query(description="Candidate run id.")],
                     min_effect: Annotated[float, Query(ge=0.0, le=1.0)] = 0.03,
                     allow_environment_change: bool = False) -> dict[str, Any]:
        """Run B against run A per target (``perfcast bench compare A B --json``)."""
        return service.compare_runs(db, _run_id("a", a), _run_id("b", b),
                                    min_effect=min_effect,
                                    allow_environment_change=allow_environment_change)

    @app.get("/api/runs/{run_id}", tags=["runs"], responses=ERRORS)
    def run_show(run_id: str) -> dict[str, Any]:
        """One run: environment and results (``perfcast bench report RUN -f json``)."""
        return service.show_run(db, _run_id("run_id", run_id))

    @app.get("/api/history/targets", tags=["runs"])
    def history_targets() -> list[str]:
        """Targets with at least one successful result."""
        return service.history_targets(db)

    @app.get("/api/history", tags=["runs"], responses=ERRORS)
    def history(target: Annotated[str, Query(min_length=1, max_length=200)],
                params: Annotated[str | None, Query(
                    max_length=2000, description='JSON object, e.g. {"n": 1000}')] = None,
                limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
        """Medians with 95% CI of one target, run after run, per params and environment."""
        return service.history(db, target, params=_json_object("params", params),
                               limit=limit)

    @app.get("/api/validation", tags=["validation"])
    def validation() -> dict[str, Any]:
        """Latest ``perfcast validate models`` predictions vs measurements: per model, per
        confidence category, predicted time per op category."""
        return service.validation_summary(db)

    @app.get("/api/validation/llm", tags=["validation"], responses=ERRORS)
    def validation_llm(hardware: Annotated[list[str] | None, Query(max_length=32)] = None,
                       rows: bool = False) -> dict[str, Any]:
        """Predicted vs published LLM serving results (``perfcast validate llm --json``)."""
        return service.validation_llm(hardware, include_rows=rows)


def _accepted(job: Any, request: Request) -> JobAccepted:
    return JobAccepted(job_id=job.id, status=job.status,
                       url=str(request.url_for("job_status", job_id=job.id).path))


def _run_id(field: str, value: str) -> str:
    if not _RUN_ID.fullmatch(value) or ".." in value:
        raise BadInput(field, f"{value!r} is not a run id (letters, digits and . _ : @ + -; "
                              "no paths)")
    return value


def _upload_name(filename: str | None) -> str:
    """The model name from the upload's file name; a name with a path is refused."""
    if not filename:
        return "model"
    if "/" in filename or "\\" in filename or ".." in filename or \
            not _FILE_NAME.fullmatch(filename):
        raise BadInput("file", f"file name {filename!r} must be a plain name (no path, no "
                               "'..', letters, digits, spaces and . _ + - ( ) only)")
    return filename.removesuffix(".onnx") or "model"


def _json_object(field: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(field, f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise BadInput(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _dims(text: str | None) -> dict[str, int] | None:
    dims = _json_object("dims", text)
    if dims is not None and not all(isinstance(v, int) and not isinstance(v, bool)
                                    and 1 <= v <= service.MAX_SEQ_LEN for v in dims.values()):
        raise BadInput("dims", f"values must be integers from 1 to {service.MAX_SEQ_LEN}")
    return dims

