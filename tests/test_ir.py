"""IR: tensors, op formulas against hand-computed values, vectorized shapes, validation."""

from __future__ import annotations

import numpy as np
import pytest

from perfcast.ir import Category, Graph, GraphError, Node, RegistryError, Tensor, define, lookup
from perfcast.ir.dtypes import DTypeError, canonical


def _graph(**tensors) -> Graph:
    g = Graph()
    for name, (shape, dtype, const) in tensors.items():
        g.add_tensor(Tensor(name, shape, dtype, const=const))
        if not const:
            g.inputs.append(name)
    return g


def test_linear_flops_and_bytes_by_hand():
    g = _graph(x=((4, 8, 64), "bf16", False), w=((32, 64), "bf16", True),
               b=((32,), "bf16", True))
    (y,) = g.apply("linear", ["x", "w", "b"])
    assert y.shape == (4, 8, 32)
    cost = g.cost(g.nodes[0])
    m, n, k = 32, 32, 64
    assert cost.flops == 2 * m * n * k + m * n  # multiply-adds + bias add
    assert cost.bytes == 2 * (m * k + n * k + n + m * n)  # x, w, b read; y written


def test_conv_shape_and_flops_by_hand():
    g = _graph(x=((1, 8, 32, 32), "fp32", False), w=((16, 4, 3, 3), "fp32", True))
    (y,) = g.apply("conv2d", ["x", "w"], {"stride": [2, 2], "padding": [2, 2],
                                          "dilation": [2, 2], "groups": 2})
    # out = (32 + 2*2 - 2*(3-1) - 1) // 2 + 1 = 16
    assert y.shape == (1, 16, 16, 16)
    assert g.cost(g.nodes[0]).flops == 2 * 16 * 16 * 16 * 4 * 3 * 3


def test_sdpa_flops_by_hand():
    g = _graph(q=((2, 8, 128, 64), "fp16", False), k=((2, 8, 256, 64), "fp16", False),
               v=((2, 8, 256, 64), "fp16", False))
    (o,) = g.apply("scaled_dot_product_attention", ["q", "k", "v"])
    assert o.shape == (2, 8, 128, 64)
    scores = 2 * 8 * 128 * 256
    cost = g.cost(g.nodes[0])
    assert cost.flops == 2 * scores * (64 + 64) + scores * (1 + 5)  # QK^T, PV; scale, softmax
    assert cost.bytes == 2 * (2 * 8 * 128 * 64 * 2 + 2 * 2 * 8 * 256 * 64)  # q,o + k,v


def test_array_dimensions_broadcast_through_formulas():
    batch = np.array([1, 2, 4, 8])
    g = _graph(x=((batch, 128, 512), "bf16", False), w=((1024, 512), "bf16", True))
    (y,) = g.apply("linear", ["x", "w"])
    (z,) = g.apply("gelu", [y.name])
    (r,) = g.apply("reshape", [z.name], {"size": [-1, 1024]})
    np.testing.assert_array_equal(r.shape[0], batch * 128)
    flops = g.cost(g.nodes[0]).flops
    np.testing.assert_array_equal(flops, 2 * batch * 128 * 1024 * 512)
    np.testing.assert_array_equal(g.cost(g.nodes[1]).flops, 8 * batch * 128 * 1024)
    assert g.cost(g.nodes[2]).bytes == 0  # a view moves nothing


def test_elementwise_broadcast_reads_operands_at_their_own_size():
    g = _graph(a=((64, 128), "fp32", False), b=((128,), "fp32", True))
    (c,) = g.apply("add", ["a", "b"])
    assert c.shape == (64, 128)
    assert g.cost(g.nodes[0]).bytes == 4 * (64 * 128 + 128 + 64 * 128)


def test_embedding_bytes_count_rows_read_not_the_table():
    g = _graph(w=((50000, 256), "fp32", True), ids=((4, 16), "int64", False))
    (e,) = g.apply("embedding", ["w", "ids"])
    assert e.shape == (4, 16, 256)
    assert g.cost(g.nodes[0]).bytes == 4 * 16 * 8 + 2 * 4 * 16 * 256 * 4


def test_each_op_kind_is_defined_once():
    with pytest.raises(RegistryError, match="already defined"):
        define("linear", Category.GEMM, lambda ins, attrs: [])


def test_every_registered_kind_has_a_category():
    from perfcast.ir.registry import known_kinds

    assert len(known_kinds()) > 150
    for kind in known_kinds():
        assert isinstance(lookup(kind).category, Category)


def test_op_families_answer_once_what_a_kind_does():
    from perfcast.ir import IDENTITY, Family, in_family, kinds_of

    assert lookup("clone").family is Family.COPY and not lookup("clone").view
    assert lookup("detach").family is Family.ALIAS and lookup("detach").view
    assert kinds_of(IDENTITY) == ["alias", "clone", "contiguous", "detach", "lift_fresh_copy"]
    assert kinds_of(Family.RESHAPE) == ["_unsafe_view", "flatten", "reshape", "unflatten", "view"]
    assert in_family("new_zeros", Family.CREATION) and in_family("linear", Family.MATRIX)
    assert in_family("max_pool2d", Family.POOLING) and not in_family("no_such_op", IDENTITY)
    with pytest.raises(RegistryError, match="need a family"):
        define("no_family_movement", Category.DATA_MOVEMENT, lambda ins, attrs: [])


def test_tensor_arguments_by_schema_name_else_position():
    named = Node("n", "linear", ("x", "w"), ("y",), {"tensor_args": ["input", "weight"]})
    fused = Node("f", "gemm", ("a", "b", "c"), ("y",))
    assert named.tensor_arg("weight", 1) == "w" and named.tensor_arg("bias", 2) is None
    assert named.arg_names == ["input", "weight"] and fused.arg_names is None
    assert fused.tensor_arg("bias", 2) == "c" and fused.tensor_arg("extra", 3) is None


def test_unknown_dtype_is_a_clear_error():
    assert canonical("bf16") == "bfloat16"
    with pytest.raises(DTypeError, match=r"unknown dtype 'fp12'.*allowed"):
        Tensor("x", (1,), "fp12")


def test_validation_names_the_node_and_tensor():
    g = _graph(x=((4,), "fp32", False))
    g.add_tensor(Tensor("y", (4,), "fp32"))
    g.add_node(Node("relu_0", "relu", ("missing",), ("y",)))
    with pytest.raises(GraphError, match=r"node 'relu_0' \(relu\): unknown input tensor 'missing'"):
        g.validate()


def test_validation_catches_order_and_double_production():
    g = _graph(x=((4,), "fp32", False))
    g.add_tensor(Tensor("a", (4,), "fp32"))
    g.add_tensor(Tensor("b", (4,), "fp32"))
    g.add_node(Node("n1", "relu", ("b",), ("a",)))
    g.add_node(Node("n2", "relu", ("x",), ("b",)))
    with pytest.raises(GraphError, match="produced by a later node"):
        g.validate()
    assert [n.name for n in g.topological_order()] == ["n2", "n1"]
    g2 = _graph(x=((4,), "fp32", False))
    g2.add_tensor(Tensor("a", (4,), "fp32"))
    g2.add_node(Node("n1", "relu", ("x",), ("a",)))
    g2.add_node(Node("n2", "neg", ("x",), ("a",)))
    with pytest.raises(GraphError, match="produced twice"):
        g2.validate()


def test_dump_is_readable_and_marks_unsupported_ops():
    g = _graph(x=((2, 3), "fp32", False))
    (y,) = g.apply("relu", ["x"], module="block.act")
    g.add_tensor(Tensor("z", (2, 3), "fp32"))
    g.add_node(Node("mystery", "my_custom_op", (y.name,), ("z",)))
    g.outputs = ["z"]
    text = g.validate().dump()
    assert "float32[2, 3] = relu(%x)  @block.act" in text
    assert "my_custom_op(%relu_0)  # UNSUPPORTED" in text
    assert g.unsupported() == {"my_custom_op": 1}
    assert g.cost(g.nodes[1]).bytes == 2 * 2 * 3 * 4  # bytes from shapes, no FLOPs
