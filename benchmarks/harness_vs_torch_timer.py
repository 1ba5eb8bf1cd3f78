"""perfcast.bench.measure against torch.utils.benchmark.Timer.blocked_autorange, side by side.

Times a CPU GEMM and an elementwise add with both harnesses, interleaved over many short
rounds in one process (the order rotates each round), and prints the median over rounds
of each round's ratio (target: within 3%): runs next to each other in time share the
machine's state, which on a shared VM moves single medians by tens of percent. Two
perfcast settings are shown: its default (one call per sample when a call takes over
100 µs) and the same calls per sample as the Timer chose (``number_per_run``), which
compares the two harnesses on the same statistic: a median of block means is not a
median of single calls when the distribution is skewed.
Then times a no-op to show the harness's cost per sample (target: under 5 µs).

    python benchmarks/harness_vs_torch_timer.py [--rounds 15] [--threads 2]
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
    "add fp32 1M elements": ("torch.add(x, y, out=z)", lambda: {
        "x": torch.randn(1 << 20), "y": torch.randn(1 << 20), "z": torch.empty(1 << 20)}),
}


def compare_case(stmt: str, env: dict, rounds: int, threads: int) -> dict[str, float]:
    """Medians over rounds of each harness's median and of the per-round ratios to Timer."""
    namespace = {"torch": torch, **env}
    fn = eval(f"lambda: {stmt}", namespace)  # the same statement for both harnesses
    rule = StopRule(target_rel_ci=0.01, budget_s=0.3, min_time_s=0.2)
    number = Timer(stmt, globals=namespace, num_threads=threads).blocked_autorange(
        min_run_time=0.2).number_per_run
    runs = {
        "perfcast": lambda: measure(fn, rule=rule, threads=threads).median_s,
        "perfcast_matched": lambda: measure(fn, rule=rule, threads=threads,
                                            number=number).median_s,
        "torch": lambda: Timer(stmt, globals=namespace, num_threads=threads)
        .blocked_autorange(min_run_time=0.3).median,
    }
    names = list(runs)
    values: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % 3:] + names[:r % 3]:
            values[name].append(runs[name]())
    out = {name: statistics.median(v) for name, v in values.items()}
    for name in ("perfcast", "perfcast_matched"):
        out[f"{name}_ratio"] = statistics.median(
            a / b for a, b in zip(values[name], values["torch"], strict=True))
    out["number"] = number
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    print(f"threads={args.threads}, rounds={args.rounds} (interleaved)")
    print(f"{'case':<24} {'torch Timer':>12} {'perfcast':>10} {'ratio':>7} "
          f"{'matched':>10} {'ratio':>7}")
    for name, (stmt, make_env) in CASES.items():
        m = compare_case(stmt, make_env(), args.rounds, args.threads)
        theirs = m["torch"]
        ratio, matched = m["perfcast_ratio"], m["perfcast_matched_ratio"]
        verdict = "ok" if abs(matched - 1) <= 0.03 else "OVER 3%"
        print(f"{name:<24} {theirs * 1e6:>10.1f}us {m['perfcast'] * 1e6:>8.1f}us {ratio:>7.4f} "
              f"{m['perfcast_matched'] * 1e6:>8.1f}us {matched:>7.4f} {verdict} "
              f"(Timer number_per_run={m['number']})")
    noop = measure(lambda: None, number=1, rule=StopRule(min_samples=10_000, budget_s=1.0))
    per_sample = noop.elapsed_s / noop.n
    print(f"no-op: median {noop.median_s * 1e9:.0f} ns per timed call, "
          f"{per_sample * 1e6:.2f} us wall per sample including the loop and stop checks "
          f"(target < 5 us), n={noop.n}")


if __name__ == "__main__":
    main()
