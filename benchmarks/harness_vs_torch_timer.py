"""perfcast.bench.measure against torch.utils.benchmark.Timer.blocked_autorange, side by side.

Times a CPU GEMM and an elementwise add with both harnesses, interleaved over several
rounds in one process, and prints the ratio of medians (target: within 3%). Then times a
no-op to show the harness's cost per sample (target: under 5 µs).

    python benchmarks/harness_vs_torch_timer.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.benchmark import Timer

from perfcast.bench import StopRule, measure

CASES = {
    "gemm fp32 512x512x512": ("torch.mm(a, b, out=c)", lambda: {
        "a": torch.randn(512, 512), "b": torch.randn(512, 512), "c": torch.empty(512, 512)}),
    "add fp32 4M elements": ("torch.add(x, y, out=z)", lambda: {
        "x": torch.randn(1 << 22), "y": torch.randn(1 << 22), "z": torch.empty(1 << 22)}),
}


def compare_case(stmt: str, env: dict, rounds: int, threads: int) -> tuple[float, float]:
    """Median of per-round medians from perfcast and from torch's Timer, interleaved."""
    namespace = {"torch": torch, **env}
    fn = eval(f"lambda: {stmt}", namespace)  # the same statement for both harnesses
    ours, theirs = [], []
    rule = StopRule(target_rel_ci=0.01, budget_s=1.0, min_time_s=0.5)
    for _ in range(rounds):
        ours.append(measure(fn, rule=rule, threads=threads).median_s)
        timer = Timer(stmt, globals=namespace, num_threads=threads)
        theirs.append(timer.blocked_autorange(min_run_time=1.0).median)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    print(f"threads={args.threads}, rounds={args.rounds} (interleaved)")
    print(f"{'case':<24} {'perfcast':>12} {'torch Timer':>12} {'ratio':>8}")
    for name, (stmt, make_env) in CASES.items():
        ours, theirs = compare_case(stmt, make_env(), args.rounds, args.threads)
        verdict = "ok" if abs(ours / theirs - 1) <= 0.03 else "OVER 3%"
        print(f"{name:<24} {ours * 1e6:>10.1f}us {theirs * 1e6:>10.1f}us "
              f"{ours / theirs:>8.4f} {verdict}")
    noop = measure(lambda: None, number=1, rule=StopRule(min_samples=10_000, budget_s=1.0))
    per_sample = noop.elapsed_s / noop.n
    print(f"no-op: median {noop.median_s * 1e9:.0f} ns per timed call, "
          f"{per_sample * 1e6:.2f} us wall per sample including the loop and stop checks "
          f"(target < 5 us), n={noop.n}")


if __name__ == "__main__":
    main()
