"""Frontend: torch.export -> perfcast IR.

The exported program (ATen ops, training IR, no decompositions) is converted node by
node. Shapes come from the tracer's fake tensors, so weights may live on the meta
device: a 70B-parameter model is captured without allocating its weights. Ops the
registry does not know are kept in the graph under their ATen name; the estimator
lists them and lowers its confidence.
"""

from __future__ import annotations

import io
import logging
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from typing import Any

from perfcast.frontends import aten_names
from perfcast.frontends.errors import CaptureError
from perfcast.frontends.export_errors import explain_export_failure
from perfcast.ir import Graph, Node, Tensor, canonical

Progress = Callable[[str], None]
WRAPPED = "perfcast_model"  # FlatOutputs' attribute holding the user's model


def strip_wrapper(path: str) -> str:
    """A module or weight path inside ``FlatOutputs`` as the user's model names it."""
    return "" if path == WRAPPED else path.removeprefix(WRAPPED + ".")


@dataclass
class Capture:
    """A captured model: its graph and facts the graph alone does not keep."""

    graph: Graph
    params: int
    param_bytes: float
    buffer_bytes: float
    skipped: dict[str, int] = field(default_factory=dict)  # no-work ops dropped, by kind
    # values of the graph's constant tensors by IR name; filled only with keep_weights=True
    weights: dict[str, Any] = field(default_factory=dict)


def capture(model: Any, example_inputs: Sequence[Any] | Mapping[str, Any], *,
            dtype: str | None = None, name: str | None = None,
            progress: Progress | None = None, keep_weights: bool = False) -> Capture:
    """Export ``model`` with ``example_inputs`` and convert it to an IR graph.

    ``dtype`` converts floating-point weights and inputs first (free on the meta
    device). ``keep_weights`` fills :attr:`Capture.weights` with the NumPy value of
    every constant tensor (parameters, buffers, lifted constants), which needs real
    (not meta) weights. Raises :class:`CaptureError` with a short reason if export fails.
    """
    import torch

    from perfcast.frontends.outputs import FlatOutputs

    say = progress or (lambda _msg: None)
    args, kwargs = split_inputs(example_inputs)
    if dtype is not None:
        tdtype = _torch_dtype(dtype)
        model = model.to(tdtype)
        args = tuple(_cast_floating(a, tdtype) for a in args)
        kwargs = {k: _cast_floating(v, tdtype) for k, v in kwargs.items()}
    if hasattr(model, "eval"):
        model.eval()
    say("exporting with torch.export")
    root = FlatOutputs(model) if isinstance(model, torch.nn.Module) else model
    try:
        with torch.no_grad(), _quiet_torch_logs():
            program = torch.export.export(root, args, kwargs, strict=False)
    except Exception as exc:  # export raises many types; all become one clear error
        raise CaptureError(explain_export_failure(exc, model)) from None
    say("converting to perfcast IR")
    return _Converter(program, name or type(model).__name__, keep_weights).run()


@contextmanager
def _quiet_torch_logs():
    """torch.export prints whole graphs to stderr when it fails; the CaptureError says why.

    What it writes is held back and passed on only when the export succeeds.
    """
    held = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with redirect_stderr(held):
            yield
    finally:
        logging.disable(previous)
    sys.stderr.write(held.getvalue())


def split_inputs(example_inputs: Any) -> tuple[tuple, dict]:
    """Example inputs as ``(args, kwargs)``: a mapping is keywords, a sequence positional,
    anything else one argument."""
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, list | tuple):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def _torch_dtype(name: str):
    import torch

    return getattr(torch, canonical(name))


def _cast_floating(value, tdtype):
    import torch

    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(tdtype)
    return value


class _Converter:
    def __init__(self, program, name: str, keep_weights: bool = False) -> None:
        self.program = program
        self.keep_weights = keep_weights
        self.weights: dict[str, Any] = {}
        self.graph = Graph(name=name)
        self.env: dict[str, list[str] | str | None] = {}  # fx node name -> IR tensor name(s)
        self.skipped: dict[str, int] = {}

    def run(self) -> Capture:
        import torch

        sig = self.program.graph_signature
        kinds = {spec.arg.name: spec for spec in sig.input_specs}
        state = {**self.program.state_dict, **self.program.constants}
        params = param_bytes = buffer_bytes = 0
        tied: dict[int, str] = {}  # id of a weight object -> IR tensor of its first use
        for node in self.program.graph.nodes:
            if node.op != "placeholder":
                continue
            spec = kinds.get(node.name)
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                self.env[node.name] = None
                continue
            if spec is None or spec.kind.name == "USER_INPUT":
                t = self.graph.add_tensor(_tensor(node.name, val))
                self.graph.inputs.append(t.name)
                self.env[node.name] = t.name
                continue
            obj = state.get(spec.target)
            if obj is not None and id(obj) in tied:  # tied weights share one tensor
                self.env[node.name] = tied[id(obj)]
                continue
            name = strip_wrapper(spec.target) if spec.target else node.name
            t = self.graph.add_tensor(_tensor(name, val, const=True))
            self.env[node.name] = t.name
            if obj is not None:
                tied[id(obj)] = t.name
            if self.keep_weights:
                self.weights[t.name] = _numpy_value(obj, t.name)
            if spec.kind.name == "PARAMETER":
                params += val.numel()
                param_bytes += t.nbytes
            else:
                buffer_bytes += t.nbytes
        self._convert_nodes(self.program.graph, self.program.graph_module, prefix="")
        out_node = next(n for n in self.program.graph.nodes if n.op == "output")
        self.graph.outputs = [o for o in _flat_names(self._lookup(out_node.args[0])) if o]
        self.graph.validate()
        return Capture(self.graph, params, float(param_bytes), float(buffer_bytes), self.skipped,
                       self.weights)

    # -- nodes ----------------------------------------------------------------------
    def _convert_nodes(self, fx_graph, owner, prefix: str) -> None:
        for node in fx_graph.nodes:
            if node.op == "call_function":
                self._call(node, owner, prefix)
            elif node.op == "get_attr":
                self.env[prefix + node.name] = None

    def _call(self, node, owner, prefix: str) -> None:
        target = node.target
        key = prefix + node.name
        if target is operator.getitem:
            src, idx = node.args
            self.env[key] = self.env[prefix + src.name][idx]  # type: ignore[index]
            return
        packet = _packet_name(target)
        if packet in aten_names.INLINED_HOPS:
            self._inline(node, owner, prefix, aten_names.INLINED_HOPS[packet])
            return
        if packet in aten_names.NO_WORK:
            self.skipped[packet] = self.skipped.get(packet, 0) + 1
            self.env[key] = None
            return
        inputs, attrs = self._bind(node, prefix)
        val = node.meta.get("val")
        slots = _output_tensors(key, val)
        outputs = [t for t in slots if t is not None]
        kind = self._normalize(aten_names.ir_kind(packet), inputs, attrs, outputs)
        for t in outputs:
            self.graph.add_tensor(t)
        self.graph.add_node(Node(key, kind, tuple(inputs), tuple(t.name for t in outputs),
                                 attrs, _module_path(node)))
        names = [t.name if t is not None else None for t in slots]
        self.env[key] = names if isinstance(val, list | tuple) else (names[0] if names else None)

    def _normalize(self, kind: str, inputs: list[str], attrs: dict, outputs: list[Tensor]) -> str:
        src = self.graph.tensors[inputs[0]] if inputs else None
        out = outputs[0] if outputs else None
        if kind in aten_names.CASTS and src is not None and out is not None:
            if src.dtype == out.dtype:
                return "alias"
            attrs["dtype"] = out.dtype
            return "cast"
        if kind in aten_names.DROPOUTS and not (attrs.get("train") and attrs.get("p", 0) > 0):
            return "alias"
        if kind in aten_names.AS_OUTPUT_SHAPE and out is not None:
            del inputs[1:]
            attrs["size"] = list(out.shape)
            return aten_names.AS_OUTPUT_SHAPE[kind]
        return kind

    def _inline(self, node, owner, prefix: str, sub_index: int) -> None:
        sub = getattr(owner, node.args[sub_index].target)
        sub_prefix = f"{prefix}{node.name}."
        operands = node.args[sub_index + 1:]
        placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
        for ph, arg in zip(placeholders, operands, strict=False):
            self.env[sub_prefix + ph.name] = self._lookup(arg, prefix)
        self._convert_nodes(sub.graph, sub, sub_prefix)
        out = next(n for n in sub.graph.nodes if n.op == "output")
        self.env[prefix + node.name] = [self._lookup(a, sub_prefix) for a in out.args[0]]

    def _lookup(self, value, prefix: str = ""):
        import torch.fx

        if isinstance(value, torch.fx.Node):
            return self.env[prefix + value.name]
        if isinstance(value, list | tuple):
            return [self._lookup(v, prefix) for v in value]
        return value

    # -- arguments ------------------------------------------------------------------
    def _bind(self, node, prefix: str) -> tuple[list[str], dict]:
        """Tensor arguments become inputs; the rest become attrs named as in the schema."""
        import torch.fx

        inputs: list[str] = []
        tensor_args: list[str] = []
        attrs: dict[str, object] = {}
        schema = getattr(node.target, "_schema", None)
        names = [a.name for a in schema.arguments] if schema else [
            f"arg{k}" for k in range(len(node.args))]
        values = dict(zip(names, node.args, strict=False))
        values.update(node.kwargs)
        for argname, value in values.items():
            if argname in aten_names.IGNORED_ARGS:
                continue
            if isinstance(value, torch.fx.Node):
                ref = self.env.get(prefix + value.name)
                if isinstance(ref, str):
                    inputs.append(ref)
                    tensor_args.append(argname)
                else:
                    attrs[argname] = _plain(value.meta.get("val"))
            elif isinstance(value, list | tuple) and any(isinstance(v, torch.fx.Node)
                                                         for v in value):
                layout: list[object] = []
                for k, v in enumerate(value):
                    ref = self.env.get(prefix + v.name) if isinstance(v, torch.fx.Node) else None
                    if isinstance(ref, str):
                        inputs.append(ref)
                        tensor_args.append(f"{argname}[{k}]")
                        layout.append("tensor")
                    else:
                        layout.append(_plain(v.meta.get("val") if isinstance(v, torch.fx.Node)
                                             else v))
                attrs[argname] = layout
            elif value is not None:
                attrs[argname] = _plain(value)
        attrs["tensor_args"] = tensor_args
        return inputs, attrs


def _packet_name(target) -> str:
    name = getattr(target, "__name__", str(target))
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        name = packet.__name__
    return name.split(".")[0]


def _plain(value):
    """Attribute values as plain Python (dtypes as names, SymInts as ints)."""
    import torch

    if isinstance(value, torch.dtype):
        return canonical(str(value))
    if isinstance(value, torch.SymInt | torch.SymFloat | torch.SymBool):
        return value.node.hint if hasattr(value.node, "hint") else int(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | bool | str) or value is None:
        return value
    return str(value)


def _numpy_value(obj, name: str):
    """A constant's value as a NumPy array (a copy, detached from autograd)."""
    import torch

    if not isinstance(obj, torch.Tensor):
        raise CaptureError(f"keep_weights: constant {name!r} has no tensor value in the "
                           "exported program")
    if obj.is_meta:
        raise CaptureError(f"keep_weights: constant {name!r} is on the meta device; "
                           "materialize the model's weights to capture their values")
    if obj.dtype == torch.bfloat16:
        raise CaptureError(f"keep_weights: constant {name!r} is bfloat16, which NumPy cannot "
                           "hold; capture with dtype='float32'")
    return obj.detach().cpu().contiguous().numpy().copy()


def _tensor(name: str, val, const: bool = False) -> Tensor:
    return Tensor(name, tuple(int(d) for d in val.shape), canonical(str(val.dtype)), const=const)


def _output_tensors(key: str, val) -> list[Tensor | None]:
    """One slot per output position; non-tensor outputs (ints, None) are None."""
    import torch

    if isinstance(val, torch.Tensor):
        return [_tensor(key, val)]
    if isinstance(val, list | tuple):
        return [_tensor(f"{key}.{k}", v) if isinstance(v, torch.Tensor) else None
                for k, v in enumerate(val)]
    return []


def _module_path(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return strip_wrapper(path) if isinstance(path, str) else ""


def _flat_names(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _flat_names(v)]
    return []

