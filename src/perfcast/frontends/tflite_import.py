"""Frontend: a TFLite model (``.tflite`` flatbuffer) -> perfcast IR.

The flatbuffer is read with the ``tflite`` package (generated accessors, no TensorFlow);
subgraph 0 is converted. Every tensor keeps its shape and type: quantized tensors keep
their integer type, with scale, zero point and axis in ``Tensor.meta["quant"]``. Tensors
with buffer data are constants. Each operator becomes IR nodes of the registered kinds
(:mod:`perfcast.frontends.tflite_ops` has the mapping and the NHWC handling); ops with no
matching kind keep the name ``tflite.OPNAME`` and are reported as unsupported by the
estimator. DEQUANTIZE or DENSIFY of a constant (fp16, int8 or sparse weights) is folded,
as TFLite runs it once at load time. Parameters are the elements of the constant
tensors that operators read as data (not shapes, axes or paddings).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from perfcast.frontends.errors import CaptureError
from perfcast.frontends.tflite_ops import FOLDABLE, Builder, OpRec, TensorRec
from perfcast.frontends.torch_export import Capture
from perfcast.ir import Graph, GraphError, Tensor

SCHEMA_VERSION = 3  # the only version TFLite's interpreter accepts
IDENTIFIER = b"TFL3"
# TensorType -> IR dtype names (STRING, RESOURCE, VARIANT, unsigned >8-bit: not modeled)
DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
          7: "int16", 8: "complex64", 9: "int8", 10: "float64", 17: "int4", 18: "bfloat16"}
TYPE_NAMES = {5: "STRING", 11: "COMPLEX128", 12: "UINT64", 13: "RESOURCE", 14: "VARIANT",
              15: "UINT32", 16: "UINT16"}
CUSTOM = 32


class TFLiteImportError(CaptureError):
    """The file is not a usable TFLite model; the message says what and where."""


def import_tflite(path: str | Path, *, name: str | None = None) -> Capture:
    """Read the ``.tflite`` file at ``path`` and convert its main subgraph to an IR graph.

    ``name`` defaults to the file's stem. Raises :class:`TFLiteImportError` with a
    one-line reason for a missing file, bytes that are not a TFLite flatbuffer (wrong
    identifier, truncated, corrupt), an unsupported schema version or no subgraph.
    """
    p = Path(path)
    if not p.is_file():
        raise TFLiteImportError(f"TFLite file {str(p)!r} does not exist")
    return import_tflite_bytes(p.read_bytes(), name=name or p.stem, source=p.name)


def import_tflite_bytes(data: bytes, *, name: str = "model", source: str = "the data",
                        ) -> Capture:
    """:func:`import_tflite` for a model held in memory; ``source`` names it in errors."""
    tensors, ops, inputs, outputs = _read(bytes(data), source)
    return _convert(tensors, ops, inputs, outputs, name, source)


# -- reading the flatbuffer -----------------------------------------------------------
def _read(data: bytes, where: str) -> tuple[list[TensorRec], list[OpRec], list[int], list[int]]:
    try:
        import tflite
    except ModuleNotFoundError:
        raise TFLiteImportError("reading TFLite files needs the 'tflite' package "
                                "(pip install tflite==2.18.0)") from None
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise TFLiteImportError(f"{where} is not a TFLite model (no 'TFL3' flatbuffer "
                                "identifier at byte 4)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        version, n_sub = model.Version(), model.SubgraphsLength()
    except Exception as exc:  # the generated accessors raise struct/index errors
        raise _corrupt(where, exc) from None
    if version != SCHEMA_VERSION:
        raise TFLiteImportError(f"{where} uses TFLite schema version {version}; perfcast "
                                f"reads version {SCHEMA_VERSION}")
    if n_sub == 0:
        raise TFLiteImportError(f"{where} has no subgraphs: there is no graph to analyze")
    try:
        return _read_subgraph(tflite, model, data, where)
    except TFLiteImportError:
        raise
    except Exception as exc:  # out-of-range offsets in a truncated or damaged file
        raise _corrupt(where, exc) from None


def _corrupt(where: str, exc: Exception) -> TFLiteImportError:
    detail = " ".join(str(exc).split())[:120]
    return TFLiteImportError(f"{where} is a truncated or corrupt TFLite file (reading the "
                             f"flatbuffer failed: {detail})")


def _count(n: int, data: bytes) -> int:
    """A vector length, checked against the file size (each entry takes 4 bytes or more)."""
    if n * 4 > len(data):
        raise ValueError(f"a vector of {n} entries does not fit in {len(data)} bytes")
    return n


def _read_subgraph(tflite: Any, model: Any, data: bytes,
                   where: str) -> tuple[list[TensorRec], list[OpRec], list[int], list[int]]:
    sub = model.Subgraphs(0)
    buffers = [model.Buffers(i) for i in range(_count(model.BuffersLength(), data))]
    codes = []
    for i in range(_count(model.OperatorCodesLength(), data)):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        codes.append(f"CUSTOM:{(oc.CustomCode() or b'').decode('utf-8', 'replace')}"
                     if code == CUSTOM else tflite.BUILTIN_OPCODE2NAME.get(code, f"OP{code}"))
    tensors = [_tensor(sub.Tensors(i), buffers, data, where)
               for i in range(_count(sub.TensorsLength(), data))]
    classes = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
    ops = []
    for k in range(_count(sub.OperatorsLength(), data)):
        op = sub.Operators(k)
        if op.OpcodeIndex() >= len(codes):
            raise TFLiteImportError(f"{where}: operator {k} has opcode index "
                                    f"{op.OpcodeIndex()} but the model lists {len(codes)}")
        ops.append(OpRec(codes[op.OpcodeIndex()], _indices(op, "Inputs"),
                         _indices(op, "Outputs"), _options(tflite, op, classes)))
    inputs, outputs = _indices(sub, "Inputs"), _indices(sub, "Outputs")
    for where_, refs in [("graph", inputs + outputs)] + [
            (f"operator {k} ({op.name})", op.inputs + op.outputs) for k, op in enumerate(ops)]:
        bad = [i for i in refs if not -1 <= i < len(tensors)]
        if bad:
            raise TFLiteImportError(f"{where}: {where_} refers to tensor {bad[0]}, but "
                                    f"subgraph 0 has {len(tensors)} tensors")
    return tensors, ops, list(inputs), list(outputs)


def _indices(obj: Any, field: str) -> tuple[int, ...]:
    if not getattr(obj, f"{field}Length")():
        return ()
    return tuple(int(i) for i in getattr(obj, f"{field}AsNumpy")())


def _tensor(t: Any, buffers: list[Any], data: bytes, where: str) -> TensorRec:
    name = (t.Name() or b"").decode("utf-8", "replace")
    kind = t.Type()
    if kind not in DTYPES:
        raise TFLiteImportError(f"{where}: tensor {name!r} has TFLite type "
                                f"{TYPE_NAMES.get(kind, kind)}, which perfcast does not model")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    if any(d < 0 for d in shape):
        raise TFLiteImportError(f"{where}: tensor {name!r} has a dynamic shape {list(shape)}")
    if not 0 <= t.Buffer() < len(buffers):
        raise ValueError(f"tensor {name!r} refers to buffer {t.Buffer()} of {len(buffers)}")
    buf, values = buffers[t.Buffer()], None
    if buf.DataLength():
        values = buf.DataAsNumpy()
    elif buf.Offset() > 1:  # stored after the flatbuffer (models over 2 GB)
        values = np.frombuffer(data, np.uint8, count=buf.Size(), offset=buf.Offset())
    return TensorRec(name, shape, DTYPES[kind], values is not None, values, bool(t.IsVariable()),
                     _quantization(t.Quantization()))


def _quantization(q: Any) -> dict[str, Any]:
    if q is None or not q.ScaleLength():
        return {}
    zero = q.ZeroPointAsNumpy().tolist() if q.ZeroPointLength() else [0] * q.ScaleLength()
    return {"scale": q.ScaleAsNumpy().tolist(), "zero_point": zero,
            "axis": int(q.QuantizedDimension())}


def _options(tflite: Any, op: Any, classes: dict[int, str]) -> dict[str, Any]:
    """The operator's builtin options as ``{snake_case_field: plain value}``."""
    table, cls_name = op.BuiltinOptions(), classes.get(op.BuiltinOptionsType(), "NONE")
    if table is None or cls_name == "NONE":
        return {}
    opts = getattr(tflite, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    for attr in dir(opts):
        if not attr[0].isupper() or attr.startswith(("GetRootAs", "Init")) or attr.endswith(
                ("IsNone", "Length", "AsNumpy", "BufferHasIdentifier")):
            continue
        key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", attr).lower()
        if hasattr(opts, f"{attr}AsNumpy"):
            value = getattr(opts, f"{attr}AsNumpy")()
            out[key] = value.tolist() if isinstance(value, np.ndarray) else []
        elif getattr(opts, attr).__code__.co_argcount == 1:
            value = getattr(opts, attr)()
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, bool | int | float | str):
                out[key] = value
    return out


# -- building the IR graph --------------------------------------------------------------
def _convert(tensors: list[TensorRec], ops: list[OpRec], inputs: list[int],
             outputs: list[int], name: str, where: str) -> Capture:
    const = {i for i, t in enumerate(tensors) if t.const or t.variable}
    folded = set()
    for k, op in enumerate(ops):
        if op.name in FOLDABLE and all(i in const for i in op.inputs if i >= 0):
            const.update(op.outputs)
            folded.add(k)
    names = _unique_names(tensors)
    graph = Graph(name=name)
    for i, t in enumerate(tensors):
        graph.add_tensor(Tensor(names[i], t.shape, t.dtype, const=i in const,
                                meta={"quant": t.quant} if t.quant else {}))
    graph.inputs = [names[i] for i in inputs if i not in const]
    builder = Builder(graph, tensors, names)
    skipped: Counter[str] = Counter()
    read: set[str] = set()
    for k, op in enumerate(ops):
        if k in folded:
            skipped[op.name] += 1
            read.update(names[i] for i in op.inputs if i >= 0)
            continue
        try:
            builder.lower(k, op, _module_path(names[op.outputs[0]]) if op.outputs else "")
        except (IndexError, ValueError, ZeroDivisionError) as exc:  # shapes that do not fit
            raise TFLiteImportError(f"{where}: operator {k} ({op.name}) has operands of "
                                    f"inconsistent shapes ({exc})") from None
    graph.outputs = [names[o] for o in outputs if o >= 0]
    try:
        graph.validate()
    except GraphError as exc:
        raise TFLiteImportError(f"{where}: inconsistent graph: {exc}") from None
    read.update(i for n in graph.nodes for i in n.inputs)
    weights = [graph.tensors[names[i]] for i, t in enumerate(tensors)
               if t.const and names[i] in read]
    params = sum(int(t.numel) for t in weights)
    param_bytes = sum(float(t.nbytes) for t in weights)
    buffer_bytes = sum(float(graph.tensors[names[i]].nbytes)
                       for i, t in enumerate(tensors) if t.variable)
    return Capture(graph, params, param_bytes, buffer_bytes, dict(skipped))


def _unique_names(tensors: list[TensorRec]) -> list[str]:
    """TFLite names may repeat or be empty: later duplicates get ``#index``."""
    seen: set[str] = set()
    names = []
    for i, t in enumerate(tensors):
        n = t.name or f"tensor{i}"
        n = n if n not in seen else f"{n}#{i}"
        seen.add(n)
        names.append(n)
    return names


def _module_path(tensor_name: str) -> str:
    """``model/block_1/conv/Relu;model/...`` (TF naming) -> ``model.block_1.conv``."""
    return ".".join(tensor_name.split(";")[0].split("/")[:-1])
