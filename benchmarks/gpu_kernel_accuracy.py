"""Accuracy of the fitted GPU kernel forms on measurements they never saw.

1. Held-out shapes: per (GPU, engine, form, key) fit on 70% of the shapes (by a hash of
   the shape), score the other 30%; summarized per GPU and op family.
2. Transfer: each of H200, B300 and GB300 predicted from the other GPUs' packaged
   profiles (fitted on those GPUs only) with its own datasheet figures, weighted towards
   GPUs of the same design (perfcast.validate.gpu_kernels.similarity).

    python benchmarks/gpu_kernel_accuracy.py [--data ../shared/data/kernel-measurements]
        [--systems h100_sxm,b200_sxm] [--skip-held-out] [--skip-transfer]

Needs the published tables (../shared/data/kernel-measurements, see its README). Takes
about 3 minutes for the held-out part and 2 for the transfer on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from perfcast.estimate.gpu_profile import find_profile, shipped_profiles
from perfcast.validate.gpu_kernels import held_out_accuracy, summarize, transfer_accuracy

FAMILY = {"gemm": "GEMM", "context_attention": "attention", "generation_attention": "attention",
          "moe": "MoE", "mla_context": "MLA", "mla_generation": "MLA",
          "collective": "collectives"}
TRANSFER = ("h200_sxm", "b300_sxm", "gb300")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kernel-measurements"


def table(frame: pd.DataFrame, by: list[str]) -> str:
    frame = frame.assign(family=frame["form"].map(FAMILY))
    summary = summarize(frame, by)
    lines = ["| " + " | ".join([*by, "shapes", "MAPE", "within ±10%"]) + " |",
             "|" + "---|" * (len(by) + 3)]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join([*(str(r[b]) for b in by), f"{int(r['shapes']):,}",
                                        f"{r['mape']:.1%}", f"{r['within_10']:.0%}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--systems", default=None)
    parser.add_argument("--skip-held-out", action="store_true")
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args()
    systems = args.systems.split(",") if args.systems else None
    if not args.skip_held_out:
        start = time.perf_counter()
        held = held_out_accuracy(args.data, systems)
        print(f"## Held-out shapes (fit on 70%, scored on 30%; "
              f"{time.perf_counter() - start:.0f} s)\n")
        print(table(held, ["family", "gpu"]))
        print("\nPer family, all GPUs and engines:\n")
        print(table(held, ["family"]))
        print("\nPer family and engine:\n")
        print(table(held, ["family", "engine"]))
        worst = held.sort_values("mape", ascending=False).head(12)
        print("\nWorst fits:\n")
        print(worst.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if not args.skip_transfer:
        profiles = [p for p in (find_profile(g, e) for g, e in shipped_profiles()) if p]
        for target in TRANSFER:
            if systems and target not in systems:
                continue
            frame = transfer_accuracy(args.data, target, profiles)
            print(f"\n## Transfer to {target} (predicted from the other GPUs' profiles)\n")
            print(table(frame, ["family"]))
            print()
            print(table(frame, ["family", "engine"]))


if __name__ == "__main__":
    main()
