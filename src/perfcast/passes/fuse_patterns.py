"""Fusion rules written as expression patterns: GELU (tanh and erf forms), RMSNorm,
LayerNorm, SwiGLU and RoPE. Each rule returns its pattern name when it rewrote the node."""

from __future__ import annotations

import math

from perfcast.ir import Node
from perfcast.ir.ops._util import broadcast
from perfcast.passes.match import Match, Op, match, op
from perfcast.passes.rewrite import Work, exclusive


def _last_dim_mean(work: Work, node: Node) -> bool:
    rank = work.tensors[node.inputs[0]].rank
    dims = node.attrs.get("dim")
    dims = [dims] if isinstance(dims, int) else list(dims or [])  # type: ignore[arg-type]
    return ([int(d) % max(rank, 1) for d in dims] == [rank - 1]
            and bool(node.attrs.get("keepdim")) and not node.attrs.get("dtype"))


def _rewrite(work: Work, root: Node, m: Match, kind: str, inputs: list[str],
             attrs: dict) -> bool:
    """Replace ``root`` by one ``kind`` node if the match owns its interior nodes."""
    if not exclusive(work, root, m.nodes):
        return False
    out = work.tensors[root.outputs[0]]
    if any(work.tensors[i].dtype != out.dtype for i in inputs):
        return False
    work.replace(root, [Node(root.name, kind, tuple(inputs), root.outputs, attrs, root.module)],
                 interior=m.nodes)
    return True


# -- GELU -----------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_TANH_INNER = op("tanh", op("mul", op("add", "x", op("mul", op("pow", "x", 3.0), 0.044715)),
                            _SQRT_2_OVER_PI))
_ERF_INNERS = [op("erf", op("mul", "x", math.sqrt(0.5))),
               op("erf", op("div", "x", math.sqrt(2)))]


def _gelu_forms(inner: Op) -> list[Op]:
    """0.5 * x * (1 + inner) in its three association orders."""
    one_plus = op("add", inner, 1.0)
    return [op("mul", op("mul", "x", 0.5), one_plus), op("mul", "x", op("mul", one_plus, 0.5)),
            op("mul", op("mul", "x", one_plus), 0.5)]


_GELU = [(p, "tanh") for p in _gelu_forms(_TANH_INNER)] + [
    (p, "none") for inner in _ERF_INNERS for p in _gelu_forms(inner)]


def fuse_gelu(work: Work, node: Node) -> str | None:
    if node.kind != "mul":
        return None
    for pattern, approximate in _GELU:
        m = match(work, node, pattern)
        if m is not None and _rewrite(work, node, m, "gelu", [m.tensor("x")],
                                      {"approximate": approximate}):
            return "gelu_tanh" if approximate == "tanh" else "gelu_erf"
    return None


# -- normalizations -------------------------------------------------------------------
def _square(var: str) -> list[Op]:
    return [op("pow", var, 2.0), op("mul", var, var), op("square", var)]


def _rms_forms() -> list[Op]:
    forms = []
    for sq in _square("x"):
        ms = op("add", op("mean", sq, check=_last_dim_mean), "$eps")
        forms += [op("mul", "w", op("mul", "x", op("rsqrt", ms))),
                  op("mul", "w", op("div", "x", op("sqrt", ms)))]
    return forms


def _ln_forms() -> list[Op]:
    centered = op("sub", "x", op("mean", "x", check=_last_dim_mean))
    forms = []
    for sq in [op("pow", centered, 2.0), op("mul", centered, centered)]:
        var = op("add", op("mean", sq, check=_last_dim_mean), "$eps")
        for normed in (op("mul", centered, op("rsqrt", var)),
                       op("div", centered, op("sqrt", var))):
            forms.append(op("add", op("mul", normed, "w"), "b"))
    return forms


_RMS, _LN = _rms_forms(), _ln_forms()


def _vector_param(work: Work, m: Match, var: str) -> bool:
    """``var`` is a constant [D] vector over the last dim of ``x``."""
    x, p = work.tensors[m.tensor("x")], work.tensors[m.tensor(var)]
    return p.const and p.shape == (x.shape[-1],)


def fuse_rms_norm(work: Work, node: Node) -> str | None:
    if node.kind != "mul":
        return None
    for pattern in _RMS:
        m = match(work, node, pattern)
        if m is None or not _vector_param(work, m, "w"):
            continue
        d = work.tensors[m.tensor("x")].shape[-1]
        attrs = {"normalized_shape": [d], "eps": m.scalar("$eps")}
        if _rewrite(work, node, m, "rms_norm", [m.tensor("x"), m.tensor("w")], attrs):
            return "rms_norm"
    return None


def fuse_layer_norm(work: Work, node: Node) -> str | None:
    if node.kind != "add":
        return None
    for pattern in _LN:
        m = match(work, node, pattern)
        if m is None or not (_vector_param(work, m, "w") and _vector_param(work, m, "b")):
            continue
        d = work.tensors[m.tensor("x")].shape[-1]
        attrs = {"normalized_shape": [d], "eps": m.scalar("$eps")}
        inputs = [m.tensor("x"), m.tensor("w"), m.tensor("b")]
        if _rewrite(work, node, m, "layer_norm", inputs, attrs):
            return "layer_norm"
    return None


# -- SwiGLU and RoPE ------------------------------------------------------------------
_SWIGLU = op("mul", op("silu", "gate"), "up")


def fuse_swiglu(work: Work, node: Node) -> str | None:
    if node.kind != "mul":
        return None
    m = match(work, node, _SWIGLU)
    if m is None:
        return None
    shapes = {work.tensors[t].shape for t in (m.tensor("gate"), m.tensor("up"), node.outputs[0])}
    if len(shapes) != 1:
        return None
    return "swiglu" if _rewrite(work, node, m, "swiglu", [m.tensor("gate"), m.tensor("up")],
                                {}) else None


def _half(first: bool):
    def check(work: Work, node: Node) -> bool:
        x = work.tensors[node.inputs[0]]
        d = x.shape[-1]
        if int(node.attrs.get("dim", 0)) % x.rank != x.rank - 1 or d % 2:
            return False
        if int(node.attrs.get("step", 1)) != 1:
            return False
        start, end = node.attrs.get("start") or 0, node.attrs.get("end")
        end = d if end is None or end >= d else end
        start, end = (v + d if v < 0 else v for v in (start, end))  # type: ignore[operator]
        return (start, end) == ((0, d // 2) if first else (d // 2, d))

    return check


def _last_cat(work: Work, node: Node) -> bool:
    rank = work.tensors[node.outputs[0]].rank
    return int(node.attrs.get("dim", 0)) % rank == rank - 1


_ROTATED = op("cat", op("neg", op("slice", "x", check=_half(False))),
              op("slice", "x", check=_half(True)), check=_last_cat)
_ROPE = op("add", op("mul", "x", "cos"), op("mul", _ROTATED, "sin"))


def fuse_rope(work: Work, node: Node) -> str | None:
    if node.kind != "add":
        return None
    m = match(work, node, _ROPE)
    if m is None:
        return None
    x = work.tensors[m.tensor("x")]
    for var in ("cos", "sin"):
        t = work.tensors[m.tensor(var)]
        if broadcast(x.shape, t.shape) != x.shape or t.shape[-1] != x.shape[-1]:
            return None
    inputs = [m.tensor("x"), m.tensor("cos"), m.tensor("sin")]
    return "rope" if _rewrite(work, node, m, "rope", inputs, {}) else None
