"""TFLite -> IR: shapes and types as TFLite's interpreter reads them, FLOPs and parameters
against hand counts, quantized and fp16 models, unknown ops kept, bad files rejected.

The .tflite files in src/perfcast/zoo/tflite were made by TensorFlow's converter (see the
README there); the expected shapes below were read from them with ai-edge-litert.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

tflite = pytest.importorskip("tflite")
import flatbuffers  # noqa: E402

from perfcast.estimate.analyze import estimate_prepared, prepare_graph  # noqa: E402
from perfcast.frontends.tflite_import import (  # noqa: E402
    TFLiteImportError,
    import_tflite,
    import_tflite_bytes,
)
from perfcast.zoo import TFLITE_DIR  # noqa: E402

DATA = TFLITE_DIR
FILES = ["cnn_float32", "cnn_int8", "block_fp16", "block_dynamic_int8", "ops_float32",
         "mlp_int8"]
# per file, from ai-edge-litert 2.3.0's Interpreter over the file's own tensors: number of
# tensors, their total elements, dtype counts, inputs and outputs (shape, dtype)
INTERPRETER = {
    "cnn_float32": (23, 8504, {"float32": 21, "int32": 2},
                    [((1, 16, 16, 3), "float32")], [((1, 10), "float32")]),
    "cnn_int8": (22, 8248, {"int32": 6, "int8": 16},
                 [((1, 16, 16, 3), "int8")], [((1, 10), "int8")]),
    "block_fp16": (66, 24379, {"float16": 18, "float32": 46, "int32": 2},
                   [((1, 8, 32), "float32")], [((1, 4), "float32")]),
    "block_dynamic_int8": (48, 14869, {"float32": 39, "int32": 2, "int8": 7},
                           [((1, 8, 32), "float32")], [((1, 4), "float32")]),
    "ops_float32": (20, 351, {"float32": 17, "int32": 3},
                    [((1, 4, 8), "float32")], [((1, 8), "float32")]),
    "mlp_int8": (9, 888, {"float32": 2, "int32": 2, "int8": 5},
                 [((1, 16), "float32")], [((1, 8), "float32")]),
}
CONV_NAMES = ("cnn_1/stem_1/convolution", "cnn_1/dw_1/depthwise", "cnn_1/pw_1/convolution",
              "cnn_1/fc_1/MatMul")


def _load(name: str):
    return import_tflite(DATA / f"{name}.tflite")


def _file_tensors(cap) -> list:
    """The graph's tensors that come from the file (not the importer's views and temps)."""
    return [t for t in cap.graph.tensors.values() if not t.name.endswith(
        (".nchw", ".oihw", ".pre_act", ".rows", ".adj_x", ".adj_y", ".diff"))]


@pytest.mark.parametrize("name", FILES)
def test_tensors_match_the_interpreter(name: str) -> None:
    count, elements, dtypes, inputs, outputs = INTERPRETER[name]
    cap = _load(name)
    tensors = _file_tensors(cap)
    assert len(tensors) == count
    assert sum(int(np.prod(t.shape)) for t in tensors) == elements
    assert Counter(t.dtype for t in tensors) == dtypes
    g = cap.graph
    assert [(g.tensors[i].shape, g.tensors[i].dtype) for i in g.inputs] == inputs
    assert [(g.tensors[o].shape, g.tensors[o].dtype) for o in g.outputs] == outputs
    assert (DATA / f"{name}.tflite").stat().st_size < 300_000


def test_cnn_flops_and_params_by_hand() -> None:
    cap = _load("cnn_float32")
    t = cap.graph.tensors
    assert [t[n].shape for n in CONV_NAMES] == [(8, 3, 3, 3), (1, 3, 3, 8), (16, 1, 1, 16),
                                                (10, 16)]  # OHWI, 1HWC, OHWI, [out, in]
    est = estimate_prepared(prepare_graph(cap), "h100-sxm")
    flops = {k.kernel.op: [] for k in est.kernels}
    for k in est.kernels:
        flops[k.kernel.op].append(float(k.kernel.flops))
    stem = 2 * 1 * 16 * 16 * 8 * 3 * 3 * 3 + 16 * 16 * 8  # conv 3->8 k3 SAME, bias add
    depthwise = 2 * 1 * 8 * 8 * 8 * 1 * 3 * 3 + 8 * 8 * 8  # stride 2, groups = 8 channels
    pointwise = 2 * 1 * 8 * 8 * 16 * 16 * 1 * 1 + 8 * 8 * 16
    assert flops["convolution"] == [stem, depthwise, pointwise]
    assert flops["linear"] == [2 * 16 * 10 + 10]
    conv = next(n for n in cap.graph.nodes if n.kind == "convolution" and n.attrs["groups"] == 8)
    assert conv.attrs["stride"] == [2, 2] and conv.attrs["padding"] == [1, 1]
    weights = (8 * 27 + 8) + (9 * 8 + 8) + (16 * 16 + 16) + (10 * 16 + 10)
    assert cap.params == weights == 746  # the PAD paddings and MEAN axes are not weights
    assert cap.param_bytes == 4 * weights


def test_fused_activations_become_nodes() -> None:
    kinds = [n.kind for n in _load("cnn_float32").graph.nodes if n.kind != "permute"]
    assert kinds == ["convolution", "relu6", "convolution", "hardswish", "constant_pad_nd",
                     "max_pool2d", "cat", "convolution", "relu", "avg_pool2d",
                     "tflite.LOCAL_RESPONSE_NORMALIZATION", "mean", "linear", "softmax"]


def test_unknown_op_is_listed_not_zero() -> None:
    est = estimate_prepared(prepare_graph(_load("cnn_float32")), "h100-sxm")
    assert est.unsupported_ops == {"tflite.LOCAL_RESPONSE_NORMALIZATION": 1}
    assert str(est.confidence) == "PARTIAL"
    (lrn,) = [k for k in est.kernels if k.kernel.op.startswith("tflite.")]
    assert float(lrn.kernel.bytes) == 2 * 4 * 4 * 16 * 4  # read and write [1, 4, 4, 16] fp32
    assert lrn.time_s > 0


def test_int8_model_keeps_integer_types_and_quantization() -> None:
    cap = _load("cnn_int8")
    t = cap.graph.tensors
    x = t[cap.graph.inputs[0]]
    assert x.dtype == "int8"
    assert x.meta["quant"] == {"scale": [pytest.approx(0.003921555820852518)],
                               "zero_point": [-128], "axis": 0}
    assert [t[n].dtype for n in CONV_NAMES] == ["int8"] * 4
    assert len(t["cnn_1/stem_1/convolution"].meta["quant"]["scale"]) == 8  # per channel
    assert t["cnn_1/fc_1/BiasAdd"].dtype == "int32"
    assert cap.params == 746 and cap.param_bytes == 8 * 27 + 72 + 256 + 160 + 4 * (8 + 8 + 16
                                                                                  + 10)
    conv = [n for n in cap.graph.nodes if n.kind == "convolution"]
    assert all(t[n.outputs[0]].dtype == "int8" for n in conv)


def test_fp16_weights_are_folded_and_counted_once() -> None:
    cap = _load("block_fp16")
    assert cap.skipped == {"DEQUANTIZE": 18}
    assert "cast" not in {n.kind for n in cap.graph.nodes}
    qkvo, up, down, head, norm, scalars = 4 * (32 * 32 + 32), 64 * 32 + 64, 32 * 64 + 32, \
        256 * 4 + 4, 2 * 32, 2
    assert cap.params == qkvo + up + down + head + norm + scalars == 9510
    assert cap.param_bytes == 2 * 9510  # stored as float16
    fc = [n for n in cap.graph.nodes if n.kind == "linear"]
    assert all(cap.graph.tensors[n.inputs[1]].const for n in fc)
    assert {cap.graph.tensors[n.inputs[1]].dtype for n in fc} == {"float32"}


def test_block_gemm_flops_by_hand() -> None:
    for name in ("block_fp16", "block_dynamic_int8"):
        est = estimate_prepared(prepare_graph(_load(name)), "h100-sxm")
        assert est.unsupported_ops == {}
        by_op = Counter()
        for k in est.kernels:
            by_op[k.kernel.op] += float(k.kernel.flops)
        tokens = 8
        linear = (4 * (2 * tokens * 32 * 32 + tokens * 32) + (2 * tokens * 32 * 64 + tokens * 64)
                  + (2 * tokens * 64 * 32 + tokens * 32) + (2 * 256 * 4 + 4))
        assert by_op["linear"] == linear
        assert by_op["matmul"] == 2 * (2 * 8 * 8 * 32)  # q @ k^T (adj_y) and probs @ v
        assert by_op["square"] == tokens * 32  # SQUARED_DIFFERENCE = sub + square


def test_dynamic_range_weights_are_int8() -> None:
    cap = _load("block_dynamic_int8")
    fc = [n for n in cap.graph.nodes if n.kind == "linear"]
    assert len(fc) == 7
    assert {cap.graph.tensors[n.inputs[1]].dtype for n in fc} == {"int8"}
    assert {cap.graph.tensors[n.inputs[0]].dtype for n in fc} == {"float32"}
    assert cap.params == 9510


def test_quantize_dequantize_and_layout_ops() -> None:
    mlp = _load("mlp_int8").graph
    assert [(n.kind, dict(n.attrs).get("dtype")) for n in mlp.nodes] == [
        ("cast", "int8"), ("linear", None), ("relu", None), ("linear", None),
        ("cast", "float32")]
    ops = _load("ops_float32").graph
    assert [n.kind for n in ops.nodes] == ["relu", "relu6", "sigmoid", "permute", "add", "sub",
                                           "permute", "div", "mean", "reshape", "abs", "add",
                                           "sqrt", "tanh", "mul"]
    permute = next(n for n in ops.nodes if n.kind == "permute")
    assert permute.attrs == {"dims": [0, 2, 1]}


def _model(version: int = 3, with_subgraph: bool = True) -> bytes:
    """x [1,4,1,8] -> SQUEEZE(dims=[2]) -> GELU -> [1,4,8], written with the flatbuffers
    builder: SQUEEZE's opcode in the old deprecated_builtin_code field, GELU (150) in
    builtin_code with the 127 placeholder, as TFLite's converter writes them."""
    b = flatbuffers.Builder(1024)

    def ints(start, values):
        start(b, len(values))
        for v in reversed(values):
            b.PrependInt32(v)
        return b.EndVector()

    def table(kind, **fields):
        getattr(tflite, f"{kind}Start")(b)
        for key, value in fields.items():
            getattr(tflite, f"{kind}Add{key}")(b, value)
        return getattr(tflite, f"{kind}End")(b)

    def vector(start, offsets):
        start(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    dims = ints(tflite.SqueezeOptionsStartSqueezeDimsVector, [2])
    squeeze_opts = table("SqueezeOptions", SqueezeDims=dims)
    names = [b.CreateString(n) for n in ("x", "y", "z")]
    shapes = [ints(tflite.TensorStartShapeVector, s) for s in ([1, 4, 1, 8], [1, 4, 8],
                                                              [1, 4, 8])]
    tensors = [table("Tensor", Shape=s, Type=tflite.TensorType.FLOAT32, Buffer=0, Name=n)
               for s, n in zip(shapes, names, strict=True)]
    ops = []
    for k, (src, dst) in enumerate([(0, 1), (1, 2)]):
        ins, outs = (ints(tflite.OperatorStartInputsVector, [src]),
                     ints(tflite.OperatorStartOutputsVector, [dst]))
        extra = {"BuiltinOptionsType": tflite.BuiltinOptions.SqueezeOptions,
                 "BuiltinOptions": squeeze_opts} if k == 0 else {}
        ops.append(table("Operator", OpcodeIndex=k, Inputs=ins, Outputs=outs, **extra))
    subgraph = table("SubGraph", Tensors=vector(tflite.SubGraphStartTensorsVector, tensors),
                     Inputs=ints(tflite.SubGraphStartInputsVector, [0]),
                     Outputs=ints(tflite.SubGraphStartOutputsVector, [2]),
                     Operators=vector(tflite.SubGraphStartOperatorsVector, ops))
    codes = [table("OperatorCode", DeprecatedBuiltinCode=tflite.BuiltinOperator.SQUEEZE),
             table("OperatorCode", DeprecatedBuiltinCode=127,
                   BuiltinCode=tflite.BuiltinOperator.GELU)]
    buffers = vector(tflite.ModelStartBuffersVector, [table("Buffer")])
    subgraphs = vector(tflite.ModelStartSubgraphsVector, [subgraph] if with_subgraph else [])
    model = table("Model", Version=version,
                  OperatorCodes=vector(tflite.ModelStartOperatorCodesVector, codes),
                  Subgraphs=subgraphs, Buffers=buffers)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def test_builder_model_opcodes_and_squeeze() -> None:
    cap = import_tflite_bytes(_model(), name="tiny")
    assert [(n.kind, dict(n.attrs)) for n in cap.graph.nodes] == [
        ("squeeze", {"dim": [2]}), ("gelu", {})]
    assert cap.graph.tensors["y"].shape == (1, 4, 8)
    est = estimate_prepared(prepare_graph(cap), "h100-sxm")
    assert float(est.totals.flops) == 8 * 32  # gelu: 8 FLOPs per element, squeeze is a view


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: tmp / "missing.tflite", r"^TFLite file '.*missing\.tflite' does not exist$"),
    (lambda tmp: _write(tmp, np.random.default_rng(0).bytes(4096)),
     r"^bad\.tflite is not a TFLite model \(no 'TFL3' flatbuffer identifier at byte 4\)$"),
    (lambda tmp: _write(tmp, (DATA / "cnn_float32.tflite").read_bytes().replace(
        b"TFL3", b"ONNX", 1)), r"^bad\.tflite is not a TFLite model \(no 'TFL3'"),
    (lambda tmp: _write(tmp, b""), r"^bad\.tflite is not a TFLite model"),
    (lambda tmp: _write(tmp, (DATA / "cnn_float32.tflite").read_bytes()[:2000]),
     r"^bad\.tflite is a truncated or corrupt TFLite file \(reading the flatbuffer failed: "),
    (lambda tmp: _write(tmp, _model(with_subgraph=False)),
     r"^bad\.tflite has no subgraphs: there is no graph to analyze$"),
    (lambda tmp: _write(tmp, _model(version=2)),
     r"^bad\.tflite uses TFLite schema version 2; perfcast reads version 3$"),
], ids=["missing", "random-bytes", "wrong-identifier", "empty", "truncated", "no-subgraph",
        "schema-version"])
def test_bad_input_is_one_clear_line(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(TFLiteImportError, match=message) as info:
        import_tflite(make(tmp_path))
    assert "\n" not in str(info.value)


def test_missing_tflite_package_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(TFLiteImportError, match=r"^reading TFLite files needs the 'tflite' "
                                                r"package \(pip install tflite==2\.18\.0\)$"):
        import_tflite(DATA / "mlp_int8.tflite")


def _write(tmp: Path, data: bytes) -> Path:
    path = tmp / "bad.tflite"
    path.write_bytes(data)
    return path


def test_estimate_end_to_end() -> None:
    cap = _load("cnn_int8")
    assert cap.graph.name == "cnn_int8"
    for target in ("eager", "perfcast"):
        est = estimate_prepared(prepare_graph(cap), "h100-sxm", target=target)
        assert est.totals.time_s > 0
        assert float(est.totals.flops) > 0
    layers = {row["layer"] for row in est.layers()}
    assert {"cnn_1.stem_1", "cnn_1.dw_1", "cnn_1.fc_1"} <= layers


@pytest.mark.parametrize("name", FILES)
def test_every_file_tensor_matches_litert(name: str) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert is not installed (optional check)")
    path = DATA / f"{name}.tflite"
    interp = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=(
        litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    cap = import_tflite(path)
    ours = _file_tensors(cap)
    theirs = sorted(interp.get_tensor_details(), key=lambda d: d["index"])[:len(ours)]
    for t, d in zip(ours, theirs, strict=True):
        assert t.name.split("#")[0] == d["name"]
        assert (t.shape, t.dtype) == (tuple(int(x) for x in d["shape"]),
                                      np.dtype(d["dtype"]).name)
        scales = d["quantization_parameters"]["scales"]
        assert t.meta.get("quant", {}).get("scale", []) == pytest.approx(list(scales))
