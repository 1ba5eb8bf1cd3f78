"""Benchmark: configurations per second of `perfcast.estimate.sweep.sweep`, and the time of
one `perfcast.llm.estimate(...)` call (cold, in a fresh process, and warm).

Goal: >= 100,000 configurations/s on the dense grid (concurrency 1..1024 in steps of
one). The powers-of-two grid is reported too: it has ~100x fewer points per
`estimate_serving` call, so the per-call cost (building and partitioning the phase
graphs) dominates there.

Each grid runs with the fitted efficiencies and with the measured GPU kernel profiles
of a serving engine (``--engines fitted,trtllm``), side by side in one run.

    python benchmarks/llm_sweep_speed.py [--repeat 3] [--engines fitted,trtllm] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import time

from perfcast.estimate.sweep import SweepResult, sweep

GOAL_PER_S = 100_000
MODELS = ("gpt-oss-120b", "llama-3.1-70b")
HARDWARE = ("h100-sxm", "h200", "b200")
BASE = {"tp": list(range(1, 9)), "ep": None, "dp_attention": [False, True],
        "precision": ["bf16", "fp8"]}
GRIDS = {
    "powers of two 1..1024, 1k/1k": {"concurrency": [2**i for i in range(11)],
                                     "isl": [1024], "osl": [1024]},
    "dense 1..1024, 1k/1k": {"concurrency": list(range(1, 1025)), "isl": [1024],
                             "osl": [1024]},
    "dense 1..1024, ISL x OSL {1k,8k}^2": {"concurrency": list(range(1, 1025)),
                                          "isl": [1024, 8192], "osl": [1024, 8192]},
}
ESTIMATE_ARGS = {"tp": 8, "ep": 8, "isl": 1024, "osl": 1024, "concurrency": 64,
                 "precision": "fp8"}
COLD_SNIPPET = """
import json, time
t0 = time.perf_counter()
import perfcast.llm as llm
t1 = time.perf_counter()
llm.estimate("gpt-oss-120b", "h200", **{args})
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_call_s": t2 - t1}}))
"""


def run_grid(model: str, grid: dict, repeat: int, engine: str) -> tuple[float, SweepResult]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = sweep(model, list(HARDWARE), **BASE, **grid, engine=engine)
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


def time_estimate(repeat: int) -> dict:
    import perfcast.llm as llm

    cold = []
    for _ in range(max(repeat, 3)):
        code = COLD_SNIPPET.format(args=ESTIMATE_ARGS)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        cold.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    llm.estimate("gpt-oss-120b", "h200", **ESTIMATE_ARGS)  # load catalogs, fill the cache
    warm = []
    for _ in range(50):
        start = time.perf_counter()
        llm.estimate("gpt-oss-120b", "h200", **ESTIMATE_ARGS)
        warm.append(time.perf_counter() - start)
    uncached = []  # a new concurrency each time: the phase graphs are rebuilt
    for c in range(1, 51):
        start = time.perf_counter()
        llm.estimate("gpt-oss-120b", "h200", **{**ESTIMATE_ARGS, "concurrency": 1000 + c})
        uncached.append(time.perf_counter() - start)
    return {
        "import_s": statistics.median(c["import_s"] for c in cold),
        "cold_first_call_s": statistics.median(c["first_call_s"] for c in cold),
        "warm_cached_s": statistics.median(warm),
        "warm_uncached_s": statistics.median(uncached),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="fitted,trtllm",
                        help="Kernel-time models to compare (fitted, trtllm, sglang, vllm).")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one dense sweep and print where the time goes.")
    args = parser.parse_args()

    engines = args.engines.split(",")
    for engine in engines:  # imports, catalogs and profiles stay out of the timings
        sweep(MODELS[0], list(HARDWARE), concurrency=[1], tp=[1], precision=["bf16"],
              isl=[8], osl=[8], engine=engine)
    print(f"hardware {', '.join(HARDWARE)}; tp 1..8, ep auto, DP attention off and on, "
          f"bf16 and fp8; median of {args.repeat}")
    dense_rates = []
    for name, grid in GRIDS.items():
        for model in MODELS:
            for engine in engines:
                seconds, result = run_grid(model, grid, args.repeat, engine)
                rate = result.evaluated / seconds
                if name.startswith("dense"):
                    dense_rates.append(rate)
                print(f"  {name:36s} {model:14s} {engine:7s} {result.evaluated:>9,} evaluated "
                      f"{result.infeasible:>8,} infeasible {seconds:7.3f} s "
                      f"{rate:>11,.0f} configurations/s")
    worst = min(dense_rates)
    verdict = "met" if worst >= GOAL_PER_S else "MISSED"
    print(f"goal >= {GOAL_PER_S:,} configurations/s on the dense grids: {verdict} "
          f"(slowest {worst:,.0f}/s)")

    est = time_estimate(args.repeat)
    print(f"perfcast.llm.estimate(gpt-oss-120b, h200, {ESTIMATE_ARGS}):")
    print(f"  cold (fresh process, first call, after {est['import_s'] * 1e3:.0f} ms of "
          f"imports): {est['cold_first_call_s'] * 1e3:.1f} ms")
    print(f"  warm, same arguments (kernel cache hit): {est['warm_cached_s'] * 1e3:.2f} ms")
    print(f"  warm, new concurrency (graphs rebuilt): {est['warm_uncached_s'] * 1e3:.2f} ms")

    if args.profile or worst < GOAL_PER_S:
        profiler = cProfile.Profile()
        profiler.enable()
        sweep(MODELS[0], list(HARDWARE), **BASE, **GRIDS["dense 1..1024, 1k/1k"])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
