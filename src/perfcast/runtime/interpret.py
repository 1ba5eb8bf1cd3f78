"""The IR interpreter: executes any perfcast IR graph node by node with NumPy.

It is the reference for the passes and the backends: ATen-level kinds (as the torch
frontend names them, with their scalar arguments in ``attrs``) and the fused kinds of
docs/runtime.md. Results keep the dtypes the graph declares (float32 math for float32
tensors, int64 and bool where ATen has them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from perfcast.ir import Graph, Node
from perfcast.runtime.interpret_movement import MOVEMENT
from perfcast.runtime.interpret_nn import GEMMS, NN
from perfcast.runtime.interpret_ops import ELEMENTWISE, REDUCTIONS, Args, Impl


class InterpretError(ValueError):
    """The interpreter cannot run a node: unknown kind, bad attributes or inputs."""


KERNELS: dict[str, Impl] = {**ELEMENTWISE, **REDUCTIONS, **GEMMS, **NN, **MOVEMENT}


def supported_kinds() -> list[str]:
    """IR op kinds the interpreter executes."""
    return sorted(KERNELS)


def check_supported(graph: Graph) -> None:
    """Raise :class:`InterpretError` naming the first node whose kind cannot run."""
    for node in graph.nodes:
        if node.kind not in KERNELS:
            raise InterpretError(_unknown(node))


def eval_node(node: Node, graph: Graph, values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Outputs of ``node`` for input arrays ``values`` (in ``node.inputs`` order)."""
    impl = KERNELS.get(node.kind)
    if impl is None:
        raise InterpretError(_unknown(node))
    try:
        result = impl(Args(node, [np.asarray(v) for v in values]))
    except InterpretError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise InterpretError(f"node {node.name!r} ({node.kind}): {exc}") from exc
    outs = list(result) if isinstance(result, list | tuple) else [result]
    if len(outs) != len(node.outputs):
        raise InterpretError(f"node {node.name!r} ({node.kind}) produced {len(outs)} outputs, "
                             f"the graph declares {len(node.outputs)}")
    return [_as_declared(node, graph, name, out) for name, out in zip(node.outputs, outs,
                                                                      strict=True)]


def run_graph(graph: Graph, consts: Mapping[str, np.ndarray],
              inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Execute ``graph`` on ``inputs`` (positional or by input name); its outputs in order."""
    check_supported(graph)
    env: dict[str, np.ndarray] = {}
    for t in graph.constants():
        if t.name not in consts:
            raise InterpretError(f"constant {t.name!r} has no value")
        env[t.name] = np.asarray(consts[t.name])
    named = _bind_inputs(graph, inputs)
    for name, value in named.items():
        t = graph.tensors[name]
        arr = np.asarray(value)
        if tuple(arr.shape) != tuple(t.shape):
            raise InterpretError(f"input {name!r}: expected shape {list(t.shape)}, "
                                 f"got {list(arr.shape)}")
        dtype = _np_dtype(t.dtype, name)
        if _family(arr.dtype) != _family(np.dtype(dtype)):
            raise InterpretError(f"input {name!r}: expected {t.dtype}, got {arr.dtype}")
        env[name] = arr.astype(dtype, copy=False)
    remaining = _last_uses(graph)
    for k, node in enumerate(graph.nodes):
        outs = eval_node(node, graph, [env[i] for i in node.inputs])
        env.update(zip(node.outputs, outs, strict=True))
        for name in remaining.get(k, ()):
            env.pop(name, None)
    return [np.asarray(env[o], order="C") for o in graph.outputs]


def _bind_inputs(graph: Graph, inputs) -> dict[str, np.ndarray]:
    if isinstance(inputs, Mapping):
        missing = [i for i in graph.inputs if i not in inputs]
        if missing:
            raise InterpretError(f"missing graph inputs {missing}; expected {graph.inputs}")
        return {i: inputs[i] for i in graph.inputs}
    values = list(inputs)
    if len(values) != len(graph.inputs):
        raise InterpretError(f"expected {len(graph.inputs)} inputs {graph.inputs}, "
                             f"got {len(values)}")
    return dict(zip(graph.inputs, values, strict=True))


def _last_uses(graph: Graph) -> dict[int, list[str]]:
    """Tensors to free after each node index (not outputs, inputs or constants)."""
    keep = set(graph.outputs) | set(graph.inputs) | {t.name for t in graph.constants()}
    last: dict[str, int] = {}
    for k, node in enumerate(graph.nodes):
        for name in (*node.inputs, *node.outputs):
            last[name] = k
    frees: dict[int, list[str]] = {}
    for name, k in last.items():
        if name not in keep:
            frees.setdefault(k, []).append(name)
    return frees


_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
              "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
              "uint8": np.uint8, "bool": np.bool_}


def _np_dtype(dtype: str, where: str) -> type:
    try:
        return _NP_DTYPES[dtype]
    except KeyError:
        raise InterpretError(f"{where}: dtype {dtype} cannot be interpreted; allowed: "
                             f"{', '.join(_NP_DTYPES)}") from None


def _family(dtype: np.dtype) -> str:
    """Floating, integer or bool: inputs may change precision, not family."""
    return {"u": "i", "c": "f"}.get(dtype.kind, dtype.kind)


def _as_declared(node: Node, graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    arr = np.asarray(value)
    if tuple(arr.shape) != tuple(t.shape):
        raise InterpretError(f"node {node.name!r} ({node.kind}) produced shape "
                             f"{list(arr.shape)} for {name!r}, the graph declares "
                             f"{list(t.shape)}")
    return arr.astype(_np_dtype(t.dtype, f"tensor {name!r}"), copy=False)


def _unknown(node: Node) -> str:
    return (f"node {node.name!r}: op kind {node.kind!r} cannot be interpreted "
            f"(the interpreter runs {len(KERNELS)} kinds; see supported_kinds())")
