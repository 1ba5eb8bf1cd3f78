"""perfcast's C runtime against PyTorch eager, torch.compile and ONNX Runtime, side by side.

Workloads (batch 1, fp32, random weights, 1 thread unless --threads):
  - GPT-2 small (12 layers, logits) at sequence lengths 32 and 128;
  - a pre-norm transformer block, d=256, 4 heads, sequence 64 (tests/data/runtime_models.py).

Each workload runs in its own process (nothing one leaves behind slows the next). Its
engines are checked against eager PyTorch and timed with perfcast.bench.measure in
interleaved rounds. Prints one table per workload and the ratios (other engine's median /
perfcast's median: above 1 means perfcast is faster).

    .venv/bin/python benchmarks/runtime_vs_engines.py [--threads 1] [--budget 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("gpt2-small seq 32", "gpt2-small seq 128", "block d=256 seq 64")


def build(label: str):
    """(model, inputs) of one workload."""
    import torch

    from perfcast.examples import build_example
    from perfcast.pyfile import import_file

    torch.manual_seed(0)
    if label.startswith("gpt2-small"):
        return build_example("gpt2", batch=1, seq_len=int(label.split()[-1]), device="cpu")
    models = import_file(ROOT / "tests" / "data" / "runtime_models.py",
                         "perfcast_bench_runtime_models")
    return models.block(batch=1, seq=64, dim=256)


def run_one(label: str, threads: int, budget: float, out: Path) -> None:
    """Time one workload in this process and write its results to ``out``."""
    from perfcast.runtime.engines import DEFAULT_ENGINES, compare_engines

    model, inputs = build(label)
    err = Console(stderr=True, highlight=False)
    with err.status(f"{label} ...") as status:
        results = compare_engines(model, inputs, engines=DEFAULT_ENGINES, threads=threads,
                                  budget_s=budget,
                                  progress=lambda m: status.update(f"{label}: {m}"))
    out.write_text(json.dumps({"workload": label, "results": [r.to_dict() for r in results]}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=6.0,
                        help="timing seconds per engine (over 3 interleaved rounds)")
    parser.add_argument("--json", type=Path, help="also write all results here")
    parser.add_argument("--only", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        run_one(args.only, args.threads, args.budget, args.out)
        return 0

    from perfcast.cli.run import print_engine_table
    from perfcast.runtime.engines import EngineResult

    console = Console(highlight=False, width=120)
    report = []
    with tempfile.TemporaryDirectory(prefix="perfcast-engines-") as tmp:
        for k, label in enumerate(WORKLOADS):
            out = Path(tmp) / f"{k}.json"
            subprocess.run([sys.executable, __file__, "--only", label, "--out", str(out),
                            "--threads", str(args.threads), "--budget", str(args.budget)],
                           check=True)
            entry = json.loads(out.read_text())
            results = [EngineResult(**{**r, "ci95_s": tuple(r["ci95_s"]) if r["ci95_s"]
                                       else None}) for r in entry["results"]]
            print_engine_table(console, label, args.threads, results)
            report.append(entry)
    console.print("[bold]perfcast-c speedup (other engine's median / perfcast-c's)[/bold]")
    for entry in report:
        times = {r["engine"]: r["median_s"] for r in entry["results"] if r["median_s"]}
        mine = times.get("perfcast-c")
        if not mine:
            console.print(f"  {entry['workload']}: perfcast-c did not run")
            continue
        ratios = ", ".join(f"vs {name} {t / mine:.2f}x" for name, t in times.items()
                           if name != "perfcast-c")
        console.print(f"  {entry['workload']}: perfcast-c {mine * 1e3:.2f} ms; {ratios}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "workloads": report},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
