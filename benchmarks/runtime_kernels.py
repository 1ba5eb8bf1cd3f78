"""perfcast C kernels vs torch at GPT-2 small shapes, side by side (1 thread by default).

    python benchmarks/runtime_kernels.py [--seq 32 128] [--threads 1] [--repeat 30]

Each kernel is bound once (no Python wrapper cost in the loop) and timed as the best of
``--repeat`` runs; ``speedup`` = torch time / perfcast time (above 1: perfcast is faster).
GEMMs run the packed constant-weight kernel the backends use for weights; the "(BLAS)"
rows run the same products through cblas_sgemm (the path for non-constant operands).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from perfcast.runtime import ckernel_arrays as ka
from perfcast.runtime import ckernels as ck

D_MODEL, HEADS, VOCAB = 768, 12, 50257


def best_time(fn: Callable[[], object], repeat: int, budget_s: float = 2.0) -> float:
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = max(1, min(1000, int(0.01 / max(once, 1e-7))))
    repeat = max(3, min(repeat, int(budget_s / max(once * inner, 1e-7))))
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def rnd(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def gemm_case(m: int, k: int, n: int, *, trans_b: bool, bias: bool, act: str,
              packed: bool = True):
    """packed: the constant-weight kernel the backends use; else the BLAS path."""
    a = rnd(m, k, seed=1)
    w = rnd(n, k, seed=2) if trans_b else rnd(k, n, seed=2)
    c = rnd(n, seed=3) if bias else None
    attrs = {"batch": 1, "m": m, "n": n, "k": k, "trans_b": trans_b, "alpha": 1.0,
             "beta": 1.0, "act": act, "a_batch_stride": 0, "b_batch_stride": 0,
             "c_mode": "row" if bias else "none"}
    if packed:
        ours, _ = ka.prepare_step("gemm", attrs, [a, ck.pack_b(w, n, k, trans_b), c], (m, n),
                                  packed=True)
    else:
        ours, _ = ka.prepare_step("gemm", attrs, [a, w, c], (m, n))
    ta, tw = torch.from_numpy(a), torch.from_numpy(w)
    tc = torch.from_numpy(c) if bias else None
    act_fn = {"none": lambda x: x, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
              "gelu": F.gelu}[act]
    if trans_b:
        def theirs() -> object:
            return act_fn(F.linear(ta, tw, tc))
    elif bias:
        def theirs() -> object:
            return act_fn(torch.addmm(tc, ta, tw))
    else:
        def theirs() -> object:
            return act_fn(ta @ tw)
    return ours, theirs, 2.0 * m * n * k


def attention_case(s: int, d: int = 64):
    q, k, v = (rnd(1, HEADS, s, d, seed=i) for i in (4, 5, 6))
    attrs = {"b": 1, "hq": HEADS, "hkv": HEADS, "s": s, "t": s, "d": d,
             "scale": 1 / math.sqrt(d), "causal": True, "mask_kind": "none",
             "mask_strides": (0, 0, 0, 0)}
    ours, _ = ka.prepare_step("attention", attrs, [q, k, v], q.shape)
    tq, tk, tv = map(torch.from_numpy, (q, k, v))

    def theirs() -> object:
        return F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

    return ours, theirs, 2.0 * 2 * HEADS * s * s * d / 2


def layer_norm_case(s: int):
    x, w, b = rnd(s, D_MODEL, seed=7), rnd(D_MODEL, seed=8), rnd(D_MODEL, seed=9)
    attrs = {"rows": s, "cols": D_MODEL, "eps": 1e-5}
    ours, _ = ka.prepare_step("layer_norm", attrs, [x, w, b], x.shape)
    tx, tw, tb = map(torch.from_numpy, (x, w, b))

    def theirs() -> object:
        return F.layer_norm(tx, (D_MODEL,), tw, tb, 1e-5)

    return ours, theirs, 0.0


def unary_case(s: int, op: str):
    x = rnd(s, 4 * D_MODEL, seed=10)
    ours, _ = ka.prepare_step("unary", {"op": op}, [x], x.shape)
    tx = torch.from_numpy(x)
    fn = {"gelu_tanh": lambda: F.gelu(tx, approximate="tanh"), "gelu": lambda: F.gelu(tx)}[op]
    return ours, fn, 0.0


def softmax_case(s: int):
    x = rnd(HEADS * s, s, seed=11)
    ours, _ = ka.prepare_step("softmax", {"rows": HEADS * s, "cols": s}, [x], x.shape)
    tx = torch.from_numpy(x)
    return ours, (lambda: torch.softmax(tx, -1)), 0.0


def cases(seq: int):
    yield f"gemm qkv   {seq}x768x2304 +bias", gemm_case(seq, 768, 2304, trans_b=False,
                                                        bias=True, act="none")
    yield f"gemm proj  {seq}x768x768 +bias", gemm_case(seq, 768, 768, trans_b=False, bias=True,
                                                       act="none")
    yield f"gemm fc    {seq}x768x3072 +b+gelu", gemm_case(seq, 768, 3072, trans_b=False,
                                                          bias=True, act="gelu_tanh")
    yield f"gemm fc2   {seq}x3072x768 +bias", gemm_case(seq, 3072, 768, trans_b=False,
                                                        bias=True, act="none")
    yield f"gemm lm    {seq}x768x50257 (B^T)", gemm_case(seq, 768, VOCAB, trans_b=True,
                                                         bias=False, act="none")
    yield f"  (BLAS)   {seq}x768x3072 +b+gelu", gemm_case(seq, 768, 3072, trans_b=False,
                                                          bias=True, act="gelu_tanh",
                                                          packed=False)
    yield f"  (BLAS)   {seq}x768x50257 (B^T)", gemm_case(seq, 768, VOCAB, trans_b=True,
                                                         bias=False, act="none", packed=False)
    yield f"attention  12x{seq}x{seq}x64 causal", attention_case(seq)
    yield f"layer_norm {seq}x768", layer_norm_case(seq)
    yield f"gelu_tanh  {seq}x3072", unary_case(seq, "gelu_tanh")
    yield f"gelu       {seq}x3072", unary_case(seq, "gelu")
    yield f"softmax    {12 * seq}x{seq}", softmax_case(seq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck.set_num_threads(args.threads)
    print(f"perfcast {ck.build_info()}")
    print(f"torch {torch.__version__}, threads {args.threads}")
    print(f"{'case':36s} {'perfcast us':>12s} {'torch us':>10s} {'speedup':>8s} {'GFLOP/s':>8s}")
    for seq in args.seq:
        for name, (ours, theirs, flops) in cases(seq):
            t_ours = best_time(ours, args.repeat)
            t_theirs = best_time(theirs, args.repeat)
            gf = f"{flops / t_ours / 1e9:8.1f}" if flops else f"{'':8s}"
            print(f"{name:36s} {t_ours * 1e6:12.1f} {t_theirs * 1e6:10.1f} "
                  f"{t_theirs / t_ours:8.2f} {gf}")


if __name__ == "__main__":
    main()
