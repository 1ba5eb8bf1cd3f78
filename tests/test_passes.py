"""Dead-code elimination and partitioning per fusion target."""

from __future__ import annotations

import pytest

from perfcast.ir import Graph, Tensor
from perfcast.passes import (
    TARGETS,
    UnknownTargetError,
    eliminate_dead_code,
    get_target,
    partition,
    run_passes,
)


def _mlp_block() -> Graph:
    """x -> linear(+bias) -> gelu -> add(residual) ; plus a dead branch."""
    g = Graph()
    g.add_tensor(Tensor("x", (8, 256), "fp32"))
    g.add_tensor(Tensor("w", (256, 256), "fp32", const=True))
    g.add_tensor(Tensor("b", (256,), "fp32", const=True))
    g.inputs = ["x"]
    (y,) = g.apply("linear", ["x", "w", "b"])
    (a,) = g.apply("gelu", [y.name])
    (r,) = g.apply("add", [a.name, "x"])
    g.apply("exp", ["x"], name="dead")
    g.outputs = [r.name]
    return g.validate()


def test_dce_removes_unused_nodes_and_tensors():
    g = eliminate_dead_code(_mlp_block())
    assert [n.kind for n in g.nodes] == ["linear", "gelu", "add"]
    assert "dead" not in g.tensors


def test_eager_runs_one_kernel_per_op():
    g = eliminate_dead_code(_mlp_block())
    assert [k.op for k in partition(g, "eager")] == ["linear", "gelu", "add"]


def test_compile_fuses_pointwise_chain_but_not_into_gemm():
    g = eliminate_dead_code(_mlp_block())
    kernels = partition(g, "compile")
    assert [k.op for k in kernels] == ["linear", "gelu+add"]
    act = 8 * 256 * 4
    # gelu+add reads y and x once, writes r once; the gelu output never leaves the kernel
    assert kernels[1].bytes == 3 * act


def test_perfcast_runs_the_fused_graph_one_kernel_per_runtime_step():
    """The perfcast target's kernels are the runtime's steps (tests/test_perfcast_target.py):
    the bias and GELU become the GEMM's epilogue; the residual add stays a step of its own,
    since a GEMM with a bias and an activation cannot also take a residual."""
    from perfcast.runtime.kernels import step_kernels

    g = _mlp_block()
    enable = dict.fromkeys(get_target("perfcast").passes, True)
    fused, _, _ = run_passes(g, {}, evaluate=None, enable=enable)
    gemm, add = step_kernels(fused)
    assert (gemm.step, gemm.op, add.step) == ("gemm", "gemm", "binary")
    act, weights = 8 * 256 * 4, (256 * 256 + 256) * 4
    assert gemm.bytes == act + weights + act
    assert gemm.flops + add.flops == sum(int(g.cost(n).flops) for n in g.nodes[:3])
    with pytest.raises(ValueError, match="runtime steps"):
        partition(g, "perfcast")


def test_views_launch_no_kernel_and_fused_bytes_follow_views():
    g = Graph()
    g.add_tensor(Tensor("x", (4, 64), "fp32"))
    g.inputs = ["x"]
    (a,) = g.apply("relu", ["x"])
    (v,) = g.apply("reshape", [a.name], {"size": [256]})
    (b,) = g.apply("neg", [v.name])
    g.outputs = [b.name]
    assert [k.op for k in partition(g.validate(), "eager")] == ["relu", "neg"]
    (fused,) = partition(g, "compile")
    assert fused.bytes == 2 * 256 * 4


def test_fusion_never_creates_a_cycle():
    """c = a * relu(a + b) where b comes from a later GEMM must not join a's kernel."""
    g = Graph()
    g.add_tensor(Tensor("x", (16, 16), "fp32"))
    g.add_tensor(Tensor("w", (16, 16), "fp32", const=True))
    g.inputs = ["x"]
    (a,) = g.apply("relu", ["x"])
    (m,) = g.apply("mm", [a.name, "w"])
    (c,) = g.apply("add", [a.name, m.name])
    g.outputs = [c.name]
    kernels = partition(g.validate(), "compile")
    assert [k.op for k in kernels] == ["relu", "mm", "add"]


def test_targets_are_data_and_unknown_names_fail_clearly():
    assert set(TARGETS) == {"eager", "compile", "perfcast"}
    assert not get_target("eager").eliminates_dead_code
    with pytest.raises(UnknownTargetError, match="allowed: eager, compile, perfcast"):
        get_target("tensorrt")
