"""Matrix products as the fused ``gemm`` kind: ``act(alpha * a @ op(b) + beta * c)``.

:func:`as_gemm` rewrites ``linear``, ``mm``, ``addmm``, ``bmm``, ``baddbmm`` and
``matmul`` (when ``b`` is shared 2-D or batched with ``a``'s leading dims) into one
``gemm`` node with the same output tensor; other shapes are left alone.
"""

from __future__ import annotations

from perfcast.ir import Node
from perfcast.passes.rewrite import Work

MATMULS = frozenset({"linear", "mm", "addmm", "bmm", "baddbmm", "matmul"})


def gemm_node(like: Node, inputs: list[str], outputs: tuple[str, ...], *, trans_b: bool = False,
              alpha: float = 1.0, beta: float | None = None, act: str = "none",
              name: str | None = None) -> Node:
    """A ``gemm`` node; ``beta`` defaults to 1 with a ``c`` input and 0 without."""
    if beta is None:
        beta = 1.0 if len(inputs) > 2 else 0.0
    attrs = {"trans_b": bool(trans_b), "alpha": float(alpha), "beta": float(beta), "act": act}
    return Node(name or like.name, "gemm", tuple(inputs), outputs, attrs, like.module)


def gemm_flags(node: Node) -> dict:
    a = node.attrs
    return {"trans_b": bool(a.get("trans_b", False)), "alpha": float(a.get("alpha", 1.0)),
            "beta": float(a.get("beta", 1.0)), "act": str(a.get("act", "none"))}


def plain_gemm(node: Node) -> bool:
    """A ``gemm`` without ``c`` and without activation (room for an epilogue)."""
    return node.kind == "gemm" and len(node.inputs) == 2 and gemm_flags(node)["act"] == "none"


def _fits(work: Work, a: str, b: str, c: str | None) -> bool:
    ta, tb = work.tensors[a], work.tensors[b]
    if ta.rank < 2 or tb.rank < 2 or ta.dtype != tb.dtype:
        return False
    if tb.rank > 2 and (tb.rank != ta.rank or ta.shape[:-2] != tb.shape[:-2]):
        return False
    return c is None or work.tensors[c].dtype == ta.dtype


def as_gemm(work: Work, node: Node) -> Node | None:
    """``node`` (a matmul-family op) as an equivalent ``gemm``, or None."""
    kind = node.kind
    if kind not in MATMULS:
        return None
    trans_b, c = False, None
    alpha, beta = float(node.attrs.get("alpha", 1)), float(node.attrs.get("beta", 1))
    if kind == "linear":
        a, b = node.tensor_arg("input", 0), node.tensor_arg("weight", 1)
        c, trans_b = node.tensor_arg("bias", 2), True
        if b is None or work.tensors[b].rank != 2:
            return None
    elif kind in ("addmm", "baddbmm"):
        c, a, b = node.inputs[0], node.inputs[1], node.inputs[2]
    else:
        a, b = node.inputs[0], node.inputs[1]
    if a is None or not _fits(work, a, b, c):
        return None
    inputs = [a, b] if c is None else [a, b, c]
    return gemm_node(node, inputs, node.outputs, trans_b=trans_b, alpha=alpha,
                     beta=beta if c is not None else 0.0)


def to_gemm(work: Work, node: Node) -> str | None:
    """Rule: a matmul-family node becomes ``gemm`` (``matmul_to_gemm``)."""
    new = as_gemm(work, node)
    if new is None:
        return None
    work.replace(node, [new])
    return "matmul_to_gemm"
