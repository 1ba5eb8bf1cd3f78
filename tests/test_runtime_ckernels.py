"""The C kernels against torch, one step kind at a time (odd sizes, broadcasting, threads)."""

from __future__ import annotations

import ctypes
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perfcast.runtime import cbuild

pytestmark = pytest.mark.skipif(not cbuild.available(),
                                reason=f"C kernels unavailable: {cbuild.unavailable_reason()}")

if cbuild.available():
    from perfcast.runtime import ckernel_arrays as ka
    from perfcast.runtime import ckernels as ck

SIZES = [1, 7, 33, 129]


@pytest.fixture(autouse=True)
def one_thread():
    ck.set_num_threads(1)
    yield
    ck.set_num_threads(1)


def rnd(*shape, seed=0, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, np.float32)


def t64(x):
    return torch.from_numpy(np.asarray(x)).double()


def close(got, want, rtol=1e-5, atol=1e-6):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                               atol=atol)


# -- gemm ------------------------------------------------------------------------------
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 129), (33, 7, 1), (129, 64, 33),
                                   (32, 768, 96)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("prepacked", [False, True], ids=["blas", "packed"])
def test_gemm_shapes(m, k, n, trans_b, prepacked):
    a, b = rnd(m, k, seed=1), rnd(*((n, k) if trans_b else (k, n)), seed=2)
    want = t64(a) @ (t64(b).T if trans_b else t64(b))
    close(ka.gemm(a, b, trans_b=trans_b, prepacked=prepacked), want, rtol=1e-4,
          atol=1e-4 * math.sqrt(k))


@pytest.mark.parametrize("m", [1, 5, 8, 9, 17, 300])
def test_gemm_packed_row_blocks(m):
    """Every row-block remainder of the packed kernel, and several passes over b."""
    k, n = 1100, 45
    a, b = rnd(m, k, seed=64), rnd(k, n, seed=65)
    c = rnd(n, seed=66)
    got = ka.gemm(a, b, c, prepacked=True, act="relu")
    close(got, F.relu(t64(a) @ t64(b) + t64(c)), rtol=1e-4, atol=1e-4)


ACTS = {"none": lambda x: x, "relu": F.relu, "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu}


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("c_mode", ["none", "row", "full"])
@pytest.mark.parametrize("prepacked", [False, True], ids=["blas", "packed"])
def test_gemm_epilogue(act, c_mode, prepacked):
    m, k, n = 33, 65, 129
    a, b = rnd(m, k, seed=3), rnd(n, k, seed=4)
    c = None if c_mode == "none" else (rnd(n, seed=5) if c_mode == "row" else rnd(m, n, seed=5))
    alpha, beta = 0.5, 2.0
    want = alpha * (t64(a) @ t64(b).T)
    if c is not None:
        want = want + beta * t64(c)
    got = ka.gemm(a, b, c, trans_b=True, alpha=alpha, beta=beta, act=act, prepacked=prepacked)
    close(got, ACTS[act](want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shared", [True, False])
def test_gemm_batched(shared):
    a = rnd(3, 5, 17, 33, seed=6)
    b = rnd(33, 7, seed=7) if shared else rnd(3, 5, 33, 7, seed=7)
    for prepacked in (False, True):
        close(ka.gemm(a, b, rnd(7, seed=8), prepacked=prepacked),
              t64(a) @ t64(b) + t64(rnd(7, seed=8)), rtol=1e-4, atol=1e-4)
    bt = np.ascontiguousarray(np.swapaxes(b, -1, -2))
    close(ka.gemm(a, bt, trans_b=True), t64(a) @ t64(b), rtol=1e-4, atol=1e-4)


def test_gemm_batch_strided_a():
    """a read with a batch stride larger than m*k (a slice of a bigger buffer)."""
    big = rnd(4, 10, 6, seed=9)
    b = rnd(4, 6, 5, seed=10)
    attrs = {"batch": 4, "m": 3, "n": 5, "k": 6, "trans_b": False, "alpha": 1.0, "beta": 1.0,
             "act": "none", "a_batch_stride": 60, "b_batch_stride": 30, "c_mode": "none"}
    got = ka.run_step("gemm", attrs, [big, b], (4, 3, 5))
    close(got, t64(big[:, :3]) @ t64(b), rtol=1e-5, atol=1e-5)


# -- elementwise -------------------------------------------------------------------------
FLOAT_BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
                "maximum": torch.maximum, "minimum": torch.minimum}
COMPARE = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt,
           "ge": torch.ge}
BROADCASTS = [((7, 33), (33,)), ((2, 1, 5), (1, 3, 1)), ((129,), (1,)), ((1,), (129,)),
              ((4, 3, 2, 1, 5, 2), (3, 1, 7, 1, 2)), ((), (7,)), ((33, 1), (1, 129))]


@pytest.mark.parametrize("op", list(FLOAT_BINARY))
@pytest.mark.parametrize("sa,sb", BROADCASTS)
def test_binary_float(op, sa, sb):
    a, b = rnd(*sa, seed=11), rnd(*sb, seed=12)
    if op == "div":
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b)
    close(ka.binary(op, a, b), FLOAT_BINARY[op](torch.from_numpy(a), torch.from_numpy(b)),
          rtol=1e-6, atol=0)


@pytest.mark.parametrize("op", list(COMPARE))
def test_binary_compare(op):
    a, b = rnd(7, 33, seed=13).round(), rnd(33, seed=14).round()
    want = COMPARE[op](torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = ka.binary(op, a, b)
    assert got.dtype == np.bool_ and np.array_equal(got, want)
    ia, ib = a.astype(np.int64), b.astype(np.int64)
    assert np.array_equal(ka.binary(op, ia, ib), want)


def test_binary_pow_nan_and_strided():
    a = np.abs(rnd(33, 7, seed=15)) + 0.1
    close(ka.binary("pow", a, rnd(7, seed=16)), np.power(a, rnd(7, seed=16)), rtol=2e-6)
    x = np.array([1.0, np.nan, 3.0, -np.inf], np.float32)
    y = np.array([np.nan, 2.0, 1.0, 0.0], np.float32)
    for op in ("maximum", "minimum"):
        want = getattr(torch, op)(torch.from_numpy(x), torch.from_numpy(y)).numpy()
        np.testing.assert_array_equal(ka.binary(op, x, y), want)
    t = rnd(33, 129, seed=17).T  # a transposed (non-contiguous) operand
    close(ka.binary("add", t, rnd(33, seed=18)), t + rnd(33, seed=18), rtol=0, atol=0)


def test_binary_int_and_bool():
    a = np.arange(-5, 30, dtype=np.int64).reshape(5, 7)
    b = np.arange(1, 8, dtype=np.int64)
    for op, fn in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                   ("maximum", np.maximum), ("minimum", np.minimum)]:
        assert np.array_equal(ka.binary(op, a, b), fn(a, b))
    close(ka.binary("div", a, b), a / b, rtol=1e-7)
    p, q = rnd(7, 33, seed=19) > 0, rnd(33, seed=20) > 0
    assert np.array_equal(ka.binary("and", p, q), p & q)
    assert np.array_equal(ka.binary("or", p, q), p | q)
    assert np.array_equal(ka.binary("eq", p, q), p == q)
    with pytest.raises(ck.KernelError):
        ka.binary("div", p, q)


SCALAR = {"add": lambda x, v: x + v, "mul": lambda x, v: x * v, "sub": lambda x, v: x - v,
          "rsub": lambda x, v: v - x, "div": lambda x, v: x / v, "rdiv": lambda x, v: v / x,
          "pow": lambda x, v: x ** v, "maximum": lambda x, v: np.maximum(x, np.float32(v)),
          "minimum": lambda x, v: np.minimum(x, np.float32(v))}


@pytest.mark.parametrize("op", list(SCALAR))
@pytest.mark.parametrize("value", [2.0, 3.0, 0.5, -1.5])
def test_scalar(op, value):
    x = np.abs(rnd(7, 33, seed=21)) + 0.25
    close(ka.scalar(op, x, value), SCALAR[op](x.astype(np.float64), value), rtol=2e-6)


def test_scalar_int():
    x = np.arange(-3, 30, dtype=np.int64)
    assert np.array_equal(ka.scalar("add", x, 5), x + 5)
    assert np.array_equal(ka.scalar("rsub", x, 1), 1 - x)
    assert np.array_equal(ka.scalar("mul", x, -2), x * -2)
    with pytest.raises(ck.KernelError):
        ka.scalar("add", x, 0.5)


UNARY = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
         "silu": F.silu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp,
         "neg": torch.neg, "abs": torch.abs, "cos": torch.cos, "sin": torch.sin,
         "square": torch.square, "erf": torch.erf}
POSITIVE = {"log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
            "reciprocal": torch.reciprocal}


@pytest.mark.parametrize("op", list(UNARY) + list(POSITIVE))
@pytest.mark.parametrize("n", [*SIZES, 4099])
def test_unary(op, n):
    x = np.linspace(-12, 12, n, dtype=np.float32) + rnd(n, seed=22, scale=0.01)
    if op in POSITIVE:
        x = np.abs(x) + 1e-3
    if op == "exp":
        x = np.clip(x, -80, 80)
    fn = {**UNARY, **POSITIVE}[op]
    close(ka.unary(op, x), fn(t64(x)), rtol=3e-6, atol=2e-7)


@pytest.mark.parametrize("op", ["gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "exp", "erf"])
def test_unary_special_values(op):
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-6, 88.0, 89.0, -87.0, -104.0, 1e4, -1e4,
                  np.inf, -np.inf, np.nan], np.float32)
    if op == "gelu":  # torch's erf gelu gives nan at +inf; ours gives the limit (inf)
        x = x[np.isfinite(x) | np.isnan(x)]
    want = UNARY[op](torch.from_numpy(x)).numpy()
    got = ka.unary(op, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=3e-6, atol=1e-37)


def test_unary_dense_accuracy():
    """exp/erf/tanh/sigmoid within a few ulp over a dense sweep."""
    x = np.linspace(-20, 20, 200001, dtype=np.float32)
    for op in ("exp", "erf", "tanh", "sigmoid", "gelu"):
        xx = np.clip(x, -80, 80) if op == "exp" else x
        want = UNARY[op](t64(xx)).numpy()
        got = ka.unary(op, xx).astype(np.float64)
        err = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
        # gelu's negative tail (x * (1 + erf), as torch computes it) is accurate absolutely
        small = np.abs(want) < (0.1 if op == "gelu" else 1e-30)
        assert err[~small].max() < 4e-7, (op, err[~small].max())
        assert np.abs(got - want)[small].max(initial=0) < (3e-7 if op == "gelu" else 1e-30), op


def test_unary_int_bool():
    x = np.arange(-4, 5, dtype=np.int64)
    assert np.array_equal(ka.unary("neg", x), -x)
    assert np.array_equal(ka.unary("abs", x), np.abs(x))
    b = x > 0
    assert np.array_equal(ka.unary("not", b), ~b)


def test_inplace_elementwise():
    """The planner writes unary/scalar/binary/swiglu outputs over a dying input."""
    x = rnd(4099, seed=23)
    y = rnd(4099, seed=24)
    buf = x.copy()
    p = buf.ctypes.data
    ck.check(ck.func("pc_unary")(ck.UNARY_OPS["gelu"], ck.DTYPE["float32"], p, p, buf.size), "")
    np.testing.assert_array_equal(buf, ka.unary("gelu", x))
    buf = x.copy()
    ck.check(ck.func("pc_scalar")(ck.SCALAR_OPS["mul"], 0, buf.ctypes.data, 3.0,
                                  buf.ctypes.data, buf.size), "")
    np.testing.assert_array_equal(buf, x * np.float32(3.0))
    shape = (ctypes.c_int64 * 1)(4099)
    one = (ctypes.c_int64 * 1)(1)
    for pos in (0, 1):
        a, b = x.copy(), y.copy()
        target = a if pos == 0 else b
        ck.check(ck.func("pc_binary")(ck.BINARY_OPS["sub"], 0, 0, 1, shape, a.ctypes.data, one,
                                      b.ctypes.data, one, target.ctypes.data), "")
        np.testing.assert_array_equal(target, x - y)
    g = x.copy()
    ck.check(ck.func("pc_swiglu")(g.ctypes.data, y.ctypes.data, g.ctypes.data, g.size), "")
    np.testing.assert_array_equal(g, ka.swiglu(x, y))


def test_swiglu():
    g, u = rnd(7, 129, seed=25), rnd(7, 129, seed=26)
    close(ka.swiglu(g, u), F.silu(t64(g)) * t64(u), rtol=2e-6, atol=1e-7)


def test_where():
    cond = rnd(7, 1, 33, seed=27) > 0
    a, b = rnd(5, 33, seed=28), rnd(7, 5, 1, seed=29)
    want = torch.where(torch.from_numpy(cond), torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_array_equal(ka.where(cond, a, b), want.numpy())
    ia, ib = np.arange(33, dtype=np.int64), np.int64(-1) * np.ones((7, 1, 1), np.int64)
    np.testing.assert_array_equal(ka.where(cond, ia, ib), np.where(cond, ia, ib))


@pytest.mark.parametrize("view", ["transpose", "slice", "broadcast", "rank6", "negative",
                                  "int64", "bool", "scalar"])
def test_copy_views(view):
    base = rnd(3, 4, 5, 6, 2, 3, seed=30)
    x = {"transpose": base.transpose(2, 0, 5, 1, 4, 3), "slice": base[1:, ::2, 1:4, :, 1],
         "broadcast": np.broadcast_to(base[0, 0, 0], (7, 6, 2, 3)),
         "rank6": base.transpose(5, 4, 3, 2, 1, 0), "negative": base[::-1, :, ::-2],
         "int64": np.arange(60, dtype=np.int64).reshape(3, 4, 5).transpose(2, 0, 1),
         "bool": (base > 0)[:, :, 0].T, "scalar": np.array(3.5, np.float32)}[view]
    got = ka.copy(x)
    assert got.dtype == x.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x)


def test_copy_into_slice():
    """cat along the last dim: each piece written with out strides and an offset."""
    a, b = rnd(5, 3, seed=31), rnd(5, 4, seed=32)
    out = np.zeros((5, 7), np.float32)
    for piece, off in ((a, 0), (b, 3)):
        attrs = {"rank": 2, "shape": piece.shape, "strides": (piece.shape[1], 1),
                 "out_offset_elems": off, "out_strides": (7, 1)}
        call_out = ka.run_step("copy", attrs, [piece], (5, 7))  # into a fresh buffer
        mask = np.zeros((5, 7), bool)
        mask[:, off:off + piece.shape[1]] = True
        out[mask] = call_out[mask]
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=1))


@pytest.mark.parametrize("src,dst", [("float32", "int64"), ("float32", "bool"),
                                     ("int64", "float32"), ("int64", "bool"),
                                     ("bool", "float32"), ("bool", "int64")])
def test_cast(src, dst):
    x = (rnd(7, 33, seed=33) * 10).astype(ck.NP_DTYPE[src])
    np.testing.assert_array_equal(ka.cast(x, dst), x.astype(ck.NP_DTYPE[dst]))


# -- row-wise ----------------------------------------------------------------------------
@pytest.mark.parametrize("cols", [*SIZES, 768])
def test_softmax(cols):
    x = rnd(33, cols, seed=34, scale=5)
    close(ka.softmax(x), torch.softmax(t64(x), -1), rtol=2e-6, atol=1e-8)
    x[:, ::3] = -np.inf  # masked entries, as attention masks produce
    if cols > 1:
        close(ka.softmax(x), torch.softmax(t64(x), -1), rtol=2e-6, atol=1e-8)


@pytest.mark.parametrize("cols", [*SIZES, 768])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm(cols, affine):
    x = rnd(7, cols, seed=35, scale=3) + 2.0
    w = rnd(cols, seed=36) if affine != "none" else None
    b = rnd(cols, seed=37) if affine == "both" else None
    want = F.layer_norm(t64(x), (cols,), None if w is None else t64(w),
                        None if b is None else t64(b), 1e-5)
    close(ka.layer_norm(x, w, b, 1e-5), want, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("cols", [*SIZES, 4096])
def test_rms_norm(cols):
    x, w = rnd(7, cols, seed=38, scale=3), rnd(cols, seed=39)
    want = t64(x) * torch.rsqrt(t64(x).pow(2).mean(-1, keepdim=True) + 1e-6) * t64(w)
    close(ka.rms_norm(x, w, 1e-6), want, rtol=1e-5, atol=2e-6)
    close(ka.rms_norm(x, None, 1e-6), want / t64(w), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_reduce(op, axis):
    x = rnd(7, 33, 129, seed=40)
    fn = {"sum": torch.sum, "mean": torch.mean, "max": lambda t, d: torch.amax(t, d)}[op]
    close(ka.reduce(op, x, axis), fn(t64(x), axis), rtol=1e-5, atol=1e-5)


def test_embedding():
    table = rnd(50, 33, seed=41)
    idx = np.array([[0, 49, 7], [7, 3, 1]], np.int64)
    np.testing.assert_array_equal(ka.embedding(table, idx), table[idx])
    with pytest.raises(ck.KernelError, match="INDEX"):
        ka.embedding(table, np.array([50], np.int64))
    with pytest.raises(ck.KernelError):
        ka.embedding(table, np.array([-1], np.int64))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


@pytest.mark.parametrize("s,d", [(1, 2), (7, 64), (33, 128)])
def test_rope(s, d):
    x = rnd(2, 3, s, d, seed=42)
    ang = rnd(s, d // 2, seed=43)
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang), np.sin(ang)
    want = t64(x) * t64(cos) + rotate_half(t64(x)) * t64(sin)
    close(ka.rope(x, cos, sin), want, rtol=1e-5, atol=1e-6)


# -- attention ---------------------------------------------------------------------------
def sdpa_ref(q, k, v, mask=None, scale=None, causal=False):
    """torch SDPA in float64 with GQA expanded and causal aligned bottom right."""
    q, k, v = t64(q), t64(k), t64(v)
    hq, hkv = q.shape[1], k.shape[1]
    k = k.repeat_interleave(hq // hkv, 1)
    v = v.repeat_interleave(hq // hkv, 1)
    s, t = q.shape[2], k.shape[2]
    keep = torch.ones(s, t, dtype=torch.bool)
    if causal:
        keep = torch.ones(s, t, dtype=torch.bool).tril(t - s)
    add = torch.zeros(s, t, dtype=torch.float64)
    if mask is not None:
        m = torch.from_numpy(np.asarray(mask))
        if m.dtype == torch.bool:
            keep = keep & m
        else:
            add = add + m.double()
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-1, -2)) * scale + add
    scores = scores.masked_fill(~keep, -math.inf)
    p = torch.softmax(scores, -1).nan_to_num(0.0)  # rows with no key: zeros
    return p @ v


ATT_SHAPES = [(1, 12, 12, 32, 32, 64), (2, 8, 2, 7, 33, 16), (1, 4, 1, 1, 129, 64),
              (2, 4, 4, 33, 33, 8), (1, 2, 2, 129, 129, 32), (1, 3, 1, 65, 200, 128)]


@pytest.mark.parametrize("shape", ATT_SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_attention(shape, causal):
    b, hq, hkv, s, t, d = shape
    q, k, v = rnd(b, hq, s, d, seed=44), rnd(b, hkv, t, d, seed=45), rnd(b, hkv, t, d, seed=46)
    close(ka.attention(q, k, v, causal=causal), sdpa_ref(q, k, v, causal=causal), rtol=1e-4,
          atol=1e-5)


def test_attention_matches_torch_sdpa():
    """Same as torch's own SDPA (square causal, where its alignment agrees)."""
    q, k, v = rnd(2, 4, 33, 64, seed=47), rnd(2, 4, 33, 64, seed=48), rnd(2, 4, 33, 64, seed=49)
    want = F.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=True)
    close(ka.attention(q, k, v, causal=True), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["bool", "add"])
@pytest.mark.parametrize("mshape", ["st", "b11t", "bhst"])
def test_attention_mask(kind, mshape):
    b, hq, hkv, s, t, d = 2, 4, 2, 7, 33, 16
    q, k, v = rnd(b, hq, s, d, seed=50), rnd(b, hkv, t, d, seed=51), rnd(b, hkv, t, d, seed=52)
    shp = {"st": (s, t), "b11t": (b, 1, 1, t), "bhst": (b, hq, s, t)}[mshape]
    r = rnd(*shp, seed=53)
    mask = (r > -0.5) if kind == "bool" else np.where(r > -0.5, r, -np.inf).astype(np.float32)
    close(ka.attention(q, k, v, mask), sdpa_ref(q, k, v, mask), rtol=1e-4, atol=1e-5)


def test_attention_fully_masked_rows_are_zero():
    q, k, v = rnd(1, 2, 4, 8, seed=54), rnd(1, 2, 6, 8, seed=55), rnd(1, 2, 6, 8, seed=56)
    mask = np.ones((4, 6), bool)
    mask[1] = False
    got = ka.attention(q, k, v, mask)
    assert np.all(got[:, :, 1] == 0)
    close(got, sdpa_ref(q, k, v, mask), rtol=1e-4, atol=1e-5)
    # causal with more queries than keys: the first s - t rows see nothing
    q2 = rnd(1, 2, 9, 8, seed=57)
    got = ka.attention(q2, k, v, causal=True)
    assert np.all(got[:, :, :3] == 0)
    close(got, sdpa_ref(q2, k, v, causal=True), rtol=1e-4, atol=1e-5)


def test_attention_strided_views():
    """q/k/v as transposes of [b, s, h, d] (no copy), as the lowering passes them."""
    b, s, h, d = 2, 33, 4, 16
    qkv = rnd(b, s, 3, h, d, seed=58)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    assert not q.flags.c_contiguous
    close(ka.attention(q, k, v, causal=True), sdpa_ref(q, k, v, causal=True), rtol=1e-4,
          atol=1e-5)


def test_attention_out_strides():
    """The output written as [b, s, hq, d] memory (heads merged without a copy)."""
    b, hq, s, d = 2, 4, 33, 16
    q, k, v = rnd(b, hq, s, d, seed=70), rnd(b, 2, s, d, seed=71), rnd(b, 2, s, d, seed=72)
    attrs = {"b": b, "hq": hq, "hkv": 2, "s": s, "t": s, "d": d, "scale": 0.25, "causal": True,
             "mask_kind": "none", "mask_strides": (0, 0, 0, 0),
             "out_strides": (s * hq * d, d, hq * d, 1)}
    got = ka.run_step("attention", attrs, [q, k, v], (b, s, hq, d))
    want = sdpa_ref(q, k, v, scale=0.25, causal=True).transpose(1, 2)
    close(got, want, rtol=1e-4, atol=1e-5)


# -- threads -----------------------------------------------------------------------------
def test_threads_identical():
    """Row-parallel kernels give the same bits at 1 and 2 threads; gemm agrees closely."""
    x = rnd(256, 768, seed=59)
    q, k, v = rnd(1, 12, 128, 64, seed=60), rnd(1, 12, 128, 64, seed=61), rnd(1, 12, 128, 64,
                                                                              seed=62)
    w = rnd(768, 3072, seed=63)
    results = []
    for n in (1, 2):
        ck.set_num_threads(n)
        assert ck.get_num_threads() == n
        results.append([ka.unary("gelu", x), ka.softmax(x), ka.layer_norm(x, x[0], x[1]),
                        ka.attention(q, k, v, causal=True), ka.binary("add", x, x[0]),
                        ka.reduce("sum", x, 0), ka.gemm(x, w, prepacked=True), ka.gemm(x, w)])
    for one, two in zip(results[0][:-1], results[1][:-1], strict=True):
        np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(results[0][-1], results[1][-1], rtol=1e-5, atol=1e-4)


def test_build_info():
    info = ck.build_info()
    assert "blas=" in info and "flags=" in info
    assert cbuild.kernel_build().path.exists()


# -- no compiler ---------------------------------------------------------------------------
FALLBACK = textwrap.dedent("""
    import warnings
    import numpy as np
    from perfcast.runtime import cbuild, ckernels, ckernel_arrays, backend_c, codegen  # no cc
    assert not cbuild.available()
    reason = cbuild.unavailable_reason()
    assert "CC='/nonexistent/cc'" in reason and "NumPy" in reason, reason
    try:
        ckernels.lib()
    except cbuild.CompilerUnavailable as exc:
        print("raised:", exc)
    else:
        raise SystemExit("no error")
    print("ok")
""")


def test_no_compiler_fallback(tmp_path):
    env = dict(os.environ, CC="/nonexistent/cc", PERFCAST_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout and "cannot be built" in proc.stdout


BUILD = textwrap.dedent("""
    from perfcast.runtime import cbuild, ckernels
    ckernels.lib()
    print("built", cbuild.kernel_build().path)
""")

CACHED_NO_CC = textwrap.dedent("""
    import warnings
    import numpy as np
    from perfcast.runtime import cbuild, ckernels
    from perfcast.runtime.backend_c import CExecutor
    from perfcast.runtime.program import Buf, Program, Step
    assert cbuild.available(), cbuild.unavailable_reason()
    assert cbuild.kernel_build().compiler is None  # found in the cache, not compiled
    x = Buf("x", (4,), "float32", "input", 0, 0, (1,))
    y = Buf("y", (4,), "float32", "arena", 0, -1, (1,))
    prog = Program({"x": x, "y": y}, [Step("unary", ("x",), ("y",), {"op": "relu"})],
                   ["x"], ["y"], [], 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex = CExecutor(prog)
    assert ex.dispatch == "steps" and any("compiled dispatch" in str(w.message)
                                          for w in caught)
    out = ex.run([np.array([-1, 2, -3, 4], np.float32)])[0]
    assert out.tolist() == [0, 2, 0, 4], out
    print("ok")
""")


@pytest.mark.slow
def test_concurrent_builds_and_cached_use_without_compiler(tmp_path):
    """Two processes building into one empty cache both get a complete library (atomic
    rename); later, with no compiler, the cached library still loads."""
    env = dict(os.environ, PERFCAST_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    libs = list((tmp_path / "cache" / "kernels").glob("*/" + cbuild.LIB_NAME))
    assert len(libs) == 1
    assert not list((tmp_path / "cache" / "kernels").glob("*/.build-*"))  # no leftovers
    env["CC"] = "/nonexistent/cc"
    proc = subprocess.run([sys.executable, "-c", CACHED_NO_CC], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
