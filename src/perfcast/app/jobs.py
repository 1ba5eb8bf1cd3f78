"""Background jobs: long service calls (sweeps, benchmark runs) run in a thread pool.

A job has an id, a status (queued, running, done, failed), a progress fraction with a
message, and a result or an error. Each kind of job gets its own pool, so a benchmark
run (one at a time: timings must not overlap) never waits behind sweeps. Finished jobs
are kept up to :data:`KEEP_FINISHED`, oldest dropped first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from perfcast.app.errors import ServiceError

KEEP_FINISHED = 200
Work = Callable[[Callable[[float, str], None]], Any]


@dataclass
class Job:
    """One submitted call and what is known about it so far."""

    id: str
    kind: str
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"job_id": self.id, "kind": self.kind, "status": self.status,
               "progress": self.progress, "message": self.message,
               "created_at": self.created_at, "finished_at": self.finished_at}
        if self.status == "done":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


class JobManager:
    """Runs work in background threads and answers status queries about it."""

    def __init__(self, workers: dict[str, int] | None = None) -> None:
        self._pools = {kind: ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"job-{kind}")
                       for kind, n in (workers or {"sweep": 2, "bench": 1}).items()}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Work) -> Job:
        """Queue ``work(progress)`` on the pool of ``kind``; returns the queued job."""
        job = Job(uuid.uuid4().hex, kind)
        with self._lock:
            self._jobs[job.id] = job
            self._prune()
        self._pools[kind].submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job, work: Work) -> None:
        def progress(fraction: float, message: str) -> None:
            job.progress = min(max(float(fraction), 0.0), 1.0)
            job.message = message

        job.status = "running"
        try:
            job.result = work(progress)
        except ServiceError as exc:
            job.error = exc.to_dict()
            job.status = "failed"
        except Exception as exc:  # a job must never take its worker thread down
            job.error = {"error": "internal", "field": None,
                         "reason": f"{type(exc).__name__}: {exc}"}
            job.status = "failed"
        else:
            job.progress, job.message, job.status = 1.0, "done", "done"
        finally:
            job.finished_at = time.time()

    def _prune(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.finished_at is not None),
                          key=lambda j: j.finished_at or 0.0)
        for job in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]
