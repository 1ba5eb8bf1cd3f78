"""How close the runtime's GEMMs run to the practical sgemm limit, for GPT-2 small.

The limit is the rate the same BLAS (OpenBLAS from scipy-openblas32, through the
runtime's own gemm kernel) reaches on a large square GEMM at the same thread count.
Every gemm step of the compiled GPT-2 program is timed alone, with its own shape,
weights and epilogue, through the same path the runtime takes (packed weights for
constant B). Prints each distinct GEMM's rate against the limit and the share of GEMM
time that runs at or above 85% of it.

    .venv/bin/python benchmarks/runtime_gemm_share.py [--threads 1] [--seq 32 128]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from rich.console import Console
from rich.table import Table

from perfcast.bench import measure
from perfcast.bench.stats import StopRule
from perfcast.runtime import ckernel_arrays, ckernels

RULE = StopRule(target_rel_ci=0.02, min_samples=7, budget_s=2.0)
SQUARE = 2048
THRESHOLD = 0.85


def square_rate(threads: int) -> float:
    """sgemm FLOP/s of the BLAS on a SQUARE x SQUARE x SQUARE product."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((SQUARE, SQUARE), dtype=np.float32) for _ in range(2))
    m = measure(ckernel_arrays.gemm, a, b, threads=threads, rule=RULE, name="square sgemm")
    return 2.0 * SQUARE**3 / m.median_s


def gemm_steps(seq: int) -> Counter:
    """(batch*m, n, k, trans_b, act, c_mode, const_b) of every gemm step, with counts."""
    import torch

    from perfcast.examples import build_example
    from perfcast.runtime import compile as compile_model

    torch.manual_seed(0)
    model, inputs = build_example("gpt2", batch=1, seq_len=seq, device="cpu")
    program = compile_model(model, inputs, backend="numpy").program
    shapes: Counter = Counter()
    for step in program.steps:
        if step.kind != "gemm":
            continue
        at = step.attrs
        const_b = program.bufs[step.inputs[1]].storage == "const"
        shapes[(at["batch"] * at["m"], at["n"], at["k"], bool(at["trans_b"]), at["act"],
                at["c_mode"], const_b)] += 1
    return shapes


def time_gemm(shape: tuple, threads: int) -> float:
    """Median seconds of one gemm with this shape and epilogue, as the runtime runs it."""
    m, n, k, trans_b, act, c_mode, const_b = shape
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32) * 0.02
    c = {"none": None, "row": rng.standard_normal(n, dtype=np.float32),
         "full": rng.standard_normal((m, n), dtype=np.float32)}[c_mode]
    if const_b:  # pack once, as the executor does at load, and time only the product
        packed = ckernels.pack_b(b, n, k, trans_b)
        attrs = {"batch": 1, "m": m, "n": n, "k": k, "trans_b": trans_b, "alpha": 1.0,
                 "beta": 1.0, "act": act, "a_batch_stride": m * k, "b_batch_stride": 0,
                 "c_mode": c_mode}
        run, _ = ckernel_arrays.prepare_step("gemm", attrs, [a, packed, c], (m, n), packed=True)
        return measure(run, threads=threads, rule=RULE, name=str(shape)).median_s
    return measure(ckernel_arrays.gemm, a, b, c, trans_b=trans_b, act=act, threads=threads,
                   rule=RULE, name=str(shape)).median_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seq", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args()
    ckernels.set_num_threads(args.threads)
    out = Console(highlight=False)
    limit = square_rate(args.threads)
    out.print(f"practical limit: {SQUARE}³ sgemm at {args.threads} thread(s) = "
              f"{limit / 1e9:.1f} GFLOP/s")
    for seq in args.seq:
        table = Table(title=f"GPT-2 small, sequence {seq}, {args.threads} thread(s)")
        for col in ("M×N×K", "epilogue", "B", "count", "µs each", "GFLOP/s", "of limit"):
            table.add_column(col, justify="right")
        total = fast = 0.0
        for shape, count in sorted(gemm_steps(seq).items()):
            m, n, k, _, act, c_mode, const_b = shape
            seconds = time_gemm(shape, args.threads)
            rate = 2.0 * m * n * k / seconds
            total += seconds * count
            fast += seconds * count if rate >= THRESHOLD * limit else 0.0
            table.add_row(f"{m}×{n}×{k}", f"{c_mode}/{act}",
                          "packed" if const_b else "BLAS", str(count), f"{seconds * 1e6:.0f}",
                          f"{rate / 1e9:.1f}", f"{rate / limit:.0%}")
        out.print(table)
        out.print(f"sequence {seq}: {fast / total:.0%} of GEMM time runs at ≥ "
                  f"{THRESHOLD:.0%} of the limit ({total * 1e3:.1f} ms of GEMMs per forward)")


if __name__ == "__main__":
    main()
