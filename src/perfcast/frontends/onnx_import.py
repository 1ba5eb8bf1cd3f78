"""Frontend: an ONNX model (bytes) -> perfcast IR.

The protobuf is parsed by ``onnx`` (never unpickled, external data never read: only
shapes matter). Symbolic input dimensions are fixed first (``dims`` by name, then
``batch`` for a leading dimension), ONNX shape inference gives every value its shape and
type, and each node becomes an IR node of the matching registered kind. Nodes that only
compute on constants (shape arithmetic) are folded away; ops the registry does not know
keep their ONNX name (``onnx.OpType``) and are reported as unsupported by the estimator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from perfcast.frontends.errors import CaptureError
from perfcast.frontends.torch_export import Capture
from perfcast.ir import Graph, Node, Tensor, canonical
from perfcast.ir.dtypes import FLOATING

# ONNX TensorProto element types -> IR dtype names
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
          10: "float16", 11: "float64", 14: "complex64", 16: "bfloat16", 17: "float8_e4m3fn",
          19: "float8_e5m2", 22: "int4", 23: "float4_e2m1"}
ELEMENTWISE = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Neg": "neg", "Abs": "abs",
    "Reciprocal": "reciprocal", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Sin": "sin",
    "Cos": "cos", "Tanh": "tanh", "Erf": "erf", "Pow": "pow", "Sign": "sign",
    "Floor": "floor", "Ceil": "ceil", "Round": "round", "Relu": "relu", "Max": "maximum",
    "Min": "minimum", "Where": "where", "Equal": "eq", "Less": "lt", "LessOrEqual": "le",
    "Greater": "gt", "GreaterOrEqual": "ge", "Not": "logical_not", "And": "logical_and",
    "Or": "logical_or", "Mod": "remainder", "IsNaN": "isnan", "IsInf": "isinf",
    "Clip": "clamp", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Elu": "elu",
    "Softplus": "softplus", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish",
    "Gelu": "gelu", "Mish": "mish", "Trilu": "triu",
}
REDUCTIONS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "amax",
              "ReduceMin": "amin", "ReduceProd": "prod", "ReduceL2": "linalg_vector_norm",
              "ReduceLogSumExp": "logsumexp", "ArgMax": "argmax", "ArgMin": "argmin",
              "Softmax": "softmax", "LogSoftmax": "log_softmax", "CumSum": "cumsum",
              "TopK": "topk", "GlobalAveragePool": "mean", "GlobalMaxPool": "amax"}
VIEWS = {"Reshape": "reshape", "Flatten": "flatten", "Squeeze": "squeeze",
         "Unsqueeze": "unsqueeze", "Transpose": "permute", "Slice": "slice",
         "Expand": "expand", "Identity": "alias", "Dropout": "alias", "Split": "split"}
MOVEMENT = {"Concat": "cat", "Tile": "repeat", "Pad": "constant_pad_nd",
            "ScatterElements": "scatter", "ScatterND": "index_put", "GatherElements": "gather",
            "GatherND": "index"}
NORMS = {"LayerNormalization": ("layer_norm", ["input", "weight", "bias"]),
         "RMSNormalization": ("rms_norm", ["input", "weight"]),
         "BatchNormalization": ("batch_norm", ["input", "weight", "bias", "running_mean",
                                               "running_var"]),
         "InstanceNormalization": ("group_norm", ["input", "weight", "bias"]),
         "GroupNormalization": ("group_norm", ["input", "weight", "bias"])}
# ops whose result is known from shapes alone: always folded
SHAPE_OPS = frozenset({"Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike"})


class OnnxImportError(CaptureError):
    """The bytes are not a usable ONNX model; the message says what and where."""


def import_onnx(data: bytes, *, name: str = "model", batch: int = 1,
                dims: Mapping[str, int] | None = None, dtype: str | None = None) -> Capture:
    """Parse ``data`` as an ONNX model and convert it to an IR graph.

    ``dims`` sets symbolic input dimensions by name; a leading symbolic dimension not
    named there becomes ``batch``. ``dtype`` replaces every floating-point type.
    Raises :class:`OnnxImportError` for bytes that are not ONNX, unresolved symbolic
    dimensions or shapes that inference cannot determine.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data, format="protobuf")
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxImportError(f"not an ONNX model (protobuf parse failed: {exc})") from None
    if not model.graph.node:
        raise OnnxImportError("the ONNX model has no nodes (is it an ONNX file?)")
    _check_opset(model)
    if model.graph.input and all(i.name in {t.name for t in model.graph.initializer}
                                 for i in model.graph.input):
        raise OnnxImportError("the ONNX model has no runtime inputs")
    _fix_input_dims(model, batch, dict(dims or {}))
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises several internal error types for bad graphs
        raise OnnxImportError(f"ONNX shape inference failed: {_short(exc)}") from None
    return _Converter(model, name, dtype).run()


MIN_OPSET = 7  # the first opset of today's broadcasting semantics


def _check_opset(model: Any) -> None:
    """The default-domain opset must lie between MIN_OPSET and what onnx knows."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and not MIN_OPSET <= entry.version <= newest:
            raise OnnxImportError(
                f"the ONNX model uses opset {entry.version}; supported: {MIN_OPSET} to "
                f"{newest} (onnx {onnx.__version__}); convert it with "
                "onnx.version_converter.convert_version")


def _fix_input_dims(model: Any, batch: int, dims: dict[str, int]) -> None:
    weights = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in weights:
            continue
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            param = d.dim_param
            if param in dims:
                size = dims[param]
                if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DIM:
                    raise OnnxImportError(f"dims[{param[:100]!r}] is {str(size)[:40]}; allowed: "
                                          f"an integer from 1 to {MAX_DIM}")
                d.dim_value = size
            elif axis == 0:
                d.dim_value = batch
            else:
                raise OnnxImportError(
                    f"input {value.name!r} axis {axis} is symbolic ({param or 'unnamed'!s}); "
                    f"give its size in dims, e.g. {{{param or 'name'!r}: 128}}")


MAX_DIM = 2**31  # per axis; and at most MAX_NUMEL elements per tensor
MAX_NUMEL = 2**48


def _checked(value: str, dims: Any) -> tuple[int, ...]:
    """``dims`` as a shape, refusing negative axes and sizes beyond MAX_DIM / MAX_NUMEL."""
    shape = tuple(int(d) for d in dims)
    bad = [d for d in shape if not 0 <= d <= MAX_DIM]
    if bad:
        raise OnnxImportError(f"value {value[:100]!r} has dimension {bad[0]}; allowed: 0 to "
                              f"{MAX_DIM}")
    if math.prod(shape) > MAX_NUMEL:
        raise OnnxImportError(f"value {value[:100]!r} has {math.prod(shape):.3g} elements; "
                              f"allowed: at most {MAX_NUMEL:.3g}")
    return shape


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


class _Converter:
    def __init__(self, model: Any, name: str, dtype: str | None) -> None:
        self.model = model
        self.graph = Graph(name=name)
        self.dtype = canonical(dtype) if dtype else None
        self.types = {v.name: v.type.tensor_type for v in (
            *model.graph.input, *model.graph.value_info, *model.graph.output)}
        self.folded: set[str] = set()
        self.skipped: dict[str, int] = {}

    def run(self) -> Capture:
        params = param_bytes = 0.0
        for init in self.model.graph.initializer:
            t = self._add(init.name, _checked(init.name, init.dims), init.data_type, const=True)
            if t.dtype in FLOATING:
                params += float(t.numel)
                param_bytes += float(t.nbytes)
            else:
                self.folded.add(init.name)
        for value in self.model.graph.input:
            if value.name not in self.graph.tensors:
                self._add(value.name, self._shape(value.name), self._elem(value.name))
                self.graph.inputs.append(value.name)
        for k, node in enumerate(self.model.graph.node):
            self._node(k, node)
        self.graph.outputs = [o.name for o in self.model.graph.output
                              if o.name in self.graph.tensors]
        self.graph.validate()
        return Capture(self.graph, int(params), param_bytes, 0.0, self.skipped)

    # -- tensors ----------------------------------------------------------------------
    def _elem(self, value: str) -> int:
        tt = self.types.get(value)
        if tt is None or not tt.elem_type:
            raise OnnxImportError(f"shape inference gave no type for value {value!r}")
        return tt.elem_type

    def _shape(self, value: str) -> tuple[int, ...]:
        tt = self.types.get(value)
        if tt is None or not tt.HasField("shape"):
            raise OnnxImportError(f"shape inference could not determine the shape of "
                                  f"{value!r}; fix symbolic input dimensions with dims")
        shape = []
        for d in tt.shape.dim:
            if not d.HasField("dim_value"):
                raise OnnxImportError(f"value {value!r} has a data-dependent dimension "
                                      f"({d.dim_param or 'unknown'}); perfcast needs static "
                                      "shapes")
            shape.append(int(d.dim_value))
        return _checked(value, shape)

    def _add(self, value: str, shape: tuple[int, ...], elem: int, const: bool = False) -> Tensor:
        if elem not in DTYPES:
            raise OnnxImportError(f"value {value!r} has an ONNX element type ({elem}) that "
                                  f"perfcast does not model")
        dtype = DTYPES[elem]
        if self.dtype and dtype in FLOATING:
            dtype = self.dtype
        return self.graph.add_tensor(Tensor(value, shape, dtype, const=const))

    # -- nodes ------------------------------------------------------------------------
    def _node(self, k: int, node: Any) -> None:
        inputs = [i for i in node.input if i]
        outputs = [o for o in node.output if o]
        if node.op_type in SHAPE_OPS or (inputs and all(i in self.folded for i in inputs)):
            for o in outputs:
                self._add(o, self._shape(o), self._elem(o), const=True)
                self.folded.add(o)
            self.skipped[node.op_type] = self.skipped.get(node.op_type, 0) + 1
            return
        kind, inputs, attrs = self._kind(node, inputs)
        for o in outputs:
            self._add(o, self._shape(o), self._elem(o))
        name = node.name or f"{node.op_type}_{k}"
        self.graph.add_node(Node(f"n{k}:{name}", kind, tuple(inputs), tuple(outputs), attrs,
                                 _module_path(node.name)))

    def _kind(self, node: Any, inputs: list[str]) -> tuple[str, list[str], dict]:
        op = node.op_type
        attrs = _attributes(node)
        data = [i for i in inputs if i not in self.folded]
        if op in ELEMENTWISE:
            return ELEMENTWISE[op], inputs, attrs
        if op in REDUCTIONS or op in VIEWS:
            return (REDUCTIONS | VIEWS)[op], data[:1], attrs
        if op in MOVEMENT:
            return MOVEMENT[op], data, attrs
        if op == "Cast":
            return "cast", inputs, {"dtype": DTYPES.get(int(attrs.get("to", 0)), "float32")}
        if op == "MatMul":
            return "matmul", inputs, attrs
        if op == "Gemm" and not attrs.get("transA"):
            return "linear", inputs, {**attrs, "tensor_args": ["input", "weight", "bias"][
                :len(inputs)]}
        if op in ("Conv", "ConvTranspose"):
            return "convolution", inputs, {"transposed": op == "ConvTranspose",
                                           "tensor_args": ["input", "weight", "bias"][
                                               :len(inputs)], **attrs}
        if op in NORMS:
            kind, names = NORMS[op]
            return kind, inputs, {**attrs, "tensor_args": names[:len(inputs)]}
        if op in ("MaxPool", "AveragePool"):
            n = len(attrs.get("kernel_shape", [])) or 2
            prefix = "max_pool" if op == "MaxPool" else "avg_pool"
            return f"{prefix}{n}d", data[:1], {"kernel_size": attrs.get("kernel_shape", [1]),
                                               "stride": attrs.get("strides")}
        if op == "Gather":
            table = self.graph.tensors[inputs[0]]
            if table.const and table.dtype in FLOATING and not attrs.get("axis"):
                return "embedding", inputs, attrs
            return "index_select", inputs, attrs
        return f"onnx.{op}", inputs, attrs


def _attributes(node: Any) -> dict[str, Any]:
    """Scalar and list attributes as plain Python (tensors and graphs are left out)."""
    from onnx import helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            out[a.name] = value.decode("utf-8", "replace")
        elif isinstance(value, int | float | str):
            out[a.name] = value
        elif isinstance(value, list) and all(isinstance(v, int | float) for v in value):
            out[a.name] = list(value)
    return out


def _module_path(node_name: str) -> str:
    """``/model/layers.0/attn/MatMul`` (torch.onnx naming) -> ``model.layers.0.attn``."""
    parts = [p for p in node_name.split("/") if p]
    return ".".join(parts[:-1])
