"""ONNX -> IR: shapes from ONNX inference, FLOPs by the registry against hand counts, folding
of shape arithmetic, unsupported ops kept and reported, and PyTorch-path agreement."""

from __future__ import annotations

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from perfcast.estimate.analyze import estimate_prepared, prepare_graph  # noqa: E402
from perfcast.frontends.onnx_import import OnnxImportError, import_onnx  # noqa: E402


def _model(nodes, inputs, outputs, weights) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def conv_net(extra_op: str | None = None) -> bytes:
    """Conv 3->8 k3 pad1 (+bias), BatchNorm, Relu, GlobalAveragePool, Flatten, Gemm 8->4."""
    f32 = np.float32
    weights = {"w": np.zeros((8, 3, 3, 3), f32), "b": np.zeros(8, f32),
               "g": np.ones(8, f32), "beta": np.zeros(8, f32), "m": np.zeros(8, f32),
               "v": np.ones(8, f32), "fc": np.zeros((4, 8), f32), "fcb": np.zeros(4, f32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1],
                              name="/stem/conv/Conv"),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"],
                              name="/stem/bn/BatchNormalization"),
             helper.make_node("Relu", ["n"], ["r"], name="/stem/act/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/pool/Pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1, name="/head/Gemm")]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["y"], ["z"], name="/post/Op"))
    out = "z" if extra_op else "y"
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                        ["batch", 3, 16, 16])],
                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 4])],
                  weights)


def test_conv_net_flops_by_hand() -> None:
    cap = import_onnx(conv_net(), name="conv", batch=2)
    est = estimate_prepared(prepare_graph(cap), "h100-sxm")
    b, hw, cout, k = 2, 16 * 16, 8, 3 * 3 * 3
    conv = 2 * b * cout * k * hw + b * cout * hw  # multiply-adds plus the bias add
    bn = (2 + 2) * b * cout * hw  # subtract and scale, weight and bias
    relu = b * cout * hw
    pool = b * cout * hw + b * cout  # mean: an add per input, a divide per output
    gemm = 2 * b * 8 * 4 + b * 4
    assert float(est.totals.flops) == conv + bn + relu + pool + gemm
    # ONNX has no parameter/buffer distinction: every floating initializer counts
    assert cap.params == 8 * 27 + 8 + 4 * 8 + 4 * 8 + 4
    assert [k.kernel.op for k in est.kernels] == ["convolution", "batch_norm", "relu", "mean",
                                                  "linear"]
    assert {row["layer"] for row in est.layers()} == {"stem.conv", "stem.bn", "stem.act",
                                                      "pool", "head"}


def test_unknown_op_is_kept_and_lowers_confidence() -> None:
    est = estimate_prepared(prepare_graph(import_onnx(conv_net("Hardmax"))), "h100-sxm")
    assert est.unsupported_ops == {"onnx.Hardmax": 1}
    assert str(est.confidence) == "PARTIAL"


def test_symbolic_dims_and_bad_bytes() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 16])
    data = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [x], [y],
                  {"w": np.zeros((8, 16), np.float32)})
    with pytest.raises(OnnxImportError, match="axis 1 is symbolic \\(seq\\)"):
        import_onnx(data)
    cap = import_onnx(data, batch=3, dims={"seq": 5}, dtype="bf16")
    (node,) = cap.graph.nodes
    assert cap.graph.tensors[node.outputs[0]].shape == (3, 5, 16)
    assert cap.graph.tensors[node.outputs[0]].dtype == "bfloat16"
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        import_onnx(b"\x08\x07garbage")


@pytest.mark.slow
def test_exported_example_agrees_with_pytorch_path() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from perfcast.app import service
    from perfcast.examples import build_example

    model, inputs = build_example("convmix", batch=2, device="cpu")
    buffer = io.BytesIO()
    torch.onnx.export(model, inputs, buffer, dynamo=True, verbose=False)
    via_onnx = service.analyze_onnx(buffer.getvalue(), ["h100-sxm"], name="convmix")[0]
    via_torch = service.analyze("convmix", ["h100-sxm"], batch=2)[0]
    assert via_onnx["unsupported_ops"] == {}
    assert via_onnx["totals"]["flops"] == pytest.approx(via_torch["totals"]["flops"], rel=0.02)
