"""Load check of the API: N POST /api/llm/estimate from this process against a server in
another process (``perfcast serve`` under uvicorn on a free loopback port).

    python benchmarks/load_llm_estimate.py [--requests 2000] [--connections 4]

Prints throughput, p50/p99/max latency and the error count; exits 1 on any error. The
requests cycle through several models, devices and concurrencies, so no two neighbours
are alike.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

CONFIGS = [
    {"model": m, "hardware": h, "concurrency": c, "tp": tp, "precision": p}
    for m, tp in (("llama-3.1-8b", 1), ("llama-3.1-70b", 4), ("qwen3-30b-a3b", 2))
    for h in ("h100-sxm", "h200", "mi300x")
    for c in (1, 16, 64)
    for p in ("bf16", "fp8")
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, db: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "perfcast.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PERFCAST_TOKEN": ""})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not answer /api/health within 60 s")


def fire(base: str, total: int, connections: int) -> tuple[list[float], list[str], float]:
    """Send ``total`` requests over ``connections`` keep-alive clients; latencies in s."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = itertools.count()

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while (k := next(counter)) < total:
                body = CONFIGS[k % len(CONFIGS)]
                t0 = time.perf_counter()
                try:
                    r = client.post("/api/llm/estimate", json=body)
                    ok = r.status_code == 200 and r.json()["tpot_s"] > 0
                    problem = None if ok else f"{r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "load.db")
        try:
            base = f"http://127.0.0.1:{port}"
            fire(base, 20, 1)  # warm-up: imports and catalog loading
            latencies, errors, elapsed = fire(base, args.requests, args.connections)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = sorted(x * 1e3 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(f"{len(ms)} POST /api/llm/estimate over {args.connections} connections in "
          f"{elapsed:.2f} s: {len(ms) / elapsed:.0f} requests/s; latency p50 "
          f"{statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms; "
          f"errors {len(errors)}")
    for e in errors[:5]:
        print("  error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
