"""Benchmark: `perfcast analyze` of a Llama-3.1-70B-architecture model on the meta device.

Target (foundation issue): completes in under 30 s with peak RSS under 4 GB on a
2-core machine. Runs the real CLI in a subprocess and reads its peak RSS from the OS.

    python benchmarks/analyze_llama70b.py [--seq-len 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

TIME_LIMIT_S = 30.0
RSS_LIMIT_BYTES = 4 * 1024**3


def run_once(seq_len: int) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "perfcast.cli", "analyze", "examples:llama3-70b",
           "--hardware", "h100-sxm", "--dtype", "bf16", "--seq-len", str(seq_len), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"perfcast analyze failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    # ru_maxrss of children is the largest peak among waited-for children (KiB on Linux)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return wall, rss, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    walls = []
    for _ in range(args.repeat):
        wall, rss, result = run_once(args.seq_len)
        walls.append(wall)
    totals = result["totals"]
    median = statistics.median(walls)
    print(f"llama3-70b, batch 1 x {args.seq_len} tokens, bf16 on h100-sxm (eager)")
    print(f"  params {totals['params']:,}  kernels {len(result['kernels'])}  "
          f"predicted latency {totals['time_s'] * 1e3:.1f} ms")
    print(f"  wall time: median {median:.1f} s over {len(walls)} runs "
          f"(min {min(walls):.1f}, max {max(walls):.1f}); limit {TIME_LIMIT_S:.0f} s "
          f"-> {median / TIME_LIMIT_S:.2f} of budget")
    print(f"  peak RSS: {rss / 1024**3:.2f} GiB; limit 4 GiB "
          f"-> {rss / RSS_LIMIT_BYTES:.2f} of budget")
    ok = median < TIME_LIMIT_S and rss < RSS_LIMIT_BYTES
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
