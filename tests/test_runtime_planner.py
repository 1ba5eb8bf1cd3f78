"""Memory planner: no two live buffers overlap, arena <= naive sum, views alias correctly."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from perfcast.ir import Graph, Tensor
from perfcast.pyfile import import_file
from perfcast.runtime.lower import BufSpec, Lowered, lower
from perfcast.runtime.planner import assign_offsets, plan
from perfcast.runtime.program import ALIGN, Step, contiguous_strides

MODELS = import_file(Path(__file__).parent / "data" / "runtime_models.py",
                     "perfcast_test_runtime_models").MODELS


def check_plan(lowered: Lowered) -> None:
    """Every pair of arena buffers whose lifetimes overlap has disjoint bytes (exhaustive),
    except an in-place pair that hands over at one step."""
    program, report = plan(lowered)
    life = report.lifetimes
    handover = set(report.inplace)
    roots = list(life)
    for a, b in itertools.combinations(roots, 2):
        ba, bb = program.bufs[a], program.bufs[b]
        (fa, la), (fb, lb) = life[a], life[b]
        if fa > lb or fb > la or ba.nbytes == 0 or bb.nbytes == 0:
            continue  # never live together
        overlap = ba.offset < bb.offset + bb.nbytes and bb.offset < ba.offset + ba.nbytes
        if overlap:
            chained = _same_chain(a, b, handover)
            assert chained, f"{a} {life[a]} and {b} {life[b]} share bytes while both live"
    for r in roots:
        assert program.bufs[r].offset % ALIGN == 0
        assert program.bufs[r].offset + program.bufs[r].nbytes <= program.arena_bytes
    assert report.peak_live_bytes <= program.arena_bytes <= report.naive_bytes


def _same_chain(a: str, b: str, pairs: set[tuple[str, str]]) -> bool:
    """a and b share storage through a chain of in-place hand-overs."""
    parent = {}
    for src, dst in pairs:
        parent[dst] = src

    def top(x: str) -> str:
        while x in parent:
            x = parent[x]
        return x

    return top(a) == top(b)


def _lowered(sizes_and_lives: dict[str, tuple[int, int, int]]) -> Lowered:
    """A synthetic program: buffer name -> (bytes, first step, last step)."""
    n_steps = max(last for _, _, last in sizes_and_lives.values()) + 1
    specs, writes, reads = {}, {i: [] for i in range(n_steps)}, {i: [] for i in range(n_steps)}
    for name, (nbytes, first, last) in sizes_and_lives.items():
        specs[name] = BufSpec(name, (nbytes,), "bool", "arena", -1, (1,))
        writes[first].append(name)
        reads[last].append(name)
    steps = [Step("copy", tuple(reads[i]), tuple(writes[i]), {}) for i in range(n_steps)]
    return Lowered(specs, steps, [], [], [])


def test_synthetic_lifetimes_share_storage_when_disjoint_in_time():
    lowered = _lowered({"a": (100, 0, 1), "b": (200, 1, 2), "c": (100, 2, 3)})
    program, report = plan(lowered)
    assert report.naive_bytes == 128 + 256 + 128  # each apart, 64-byte aligned
    # b first at 0 (aligned end 256); a overlaps b -> 256; c overlaps b only -> a's slot
    assert (program.bufs["b"].offset, program.bufs["a"].offset, program.bufs["c"].offset) == \
        (0, 256, 256)
    assert program.arena_bytes == 384
    check_plan(lowered)


def test_best_fit_takes_the_tightest_gap():
    # by size: a [0,1024), h1 [1024,1536), b [1536,1984), h2 [1984,2176), c [2176,2304);
    # h1 and h2 die before step 5, leaving gaps of 512 and 192 bytes for e (128 bytes)
    span = {"a": (0, 9), "h1": (0, 1), "b": (0, 9), "h2": (0, 1), "c": (0, 9), "e": (5, 6)}
    size = {"a": 1024, "h1": 512, "b": 448, "h2": 192, "c": 128, "e": 128}
    offsets = assign_offsets(span, size)
    assert [offsets[k] for k in ("a", "h1", "b", "h2", "c")] == [0, 1024, 1536, 1984, 2176]
    assert offsets["e"] == 1984  # the 192-byte gap, not the first (512-byte) one


def test_random_programs_never_overlap_live_buffers():
    rng = np.random.default_rng(1)
    for _ in range(30):
        lives = {}
        for k in range(25):
            first = int(rng.integers(0, 20))
            lives[f"t{k}"] = (int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 8)))
        check_plan(_lowered(lives))


def _chain_graph() -> Graph:
    g = Graph("chain")
    g.add_tensor(Tensor("x", (64, 64), "float32"))
    g.inputs = ["x"]
    (a,) = g.apply("exp", ["x"])
    (b,) = g.apply("neg", [a.name])
    (c,) = g.apply("relu", [b.name])
    (d,) = g.apply("add", [c.name, "x"])
    (e,) = g.apply("transpose", [d.name], {"dim0": 0, "dim1": 1})
    (f,) = g.apply("slice", [e.name], {"dim": 0, "start": 8, "end": 16})
    (h,) = g.apply("mul", [f.name, f.name])
    g.outputs = [h.name]
    return g.validate()


def test_elementwise_chain_runs_in_place():
    lowered = lower(_chain_graph(), {})
    program, report = plan(lowered)
    # exp, neg, relu, add all write the same 16 KiB; the last mul reads a strided slice
    assert report.n_inplace == 3
    assert program.arena_bytes == 64 * 64 * 4 + 8 * 64 * 4
    assert report.naive_bytes == 4 * 64 * 64 * 4 + 8 * 64 * 4
    check_plan(lowered)


def test_views_alias_their_root_at_the_element_offset():
    lowered = lower(_chain_graph(), {})
    program, _ = plan(lowered)
    mul = program.steps[-1]
    view = program.bufs[mul.inputs[0]]
    root = program.bufs[lowered.specs[mul.inputs[0]].root]
    assert view.storage == "arena"
    assert view.offset == root.offset + 8 * 4  # column 8 of the transposed [64, 64]
    assert view.strides == (1, 64)
    assert mul.attrs["a_strides"] == mul.attrs["b_strides"] == [1, 64]


@pytest.mark.parametrize("name", ["mlp", "block", "block_manual", "gpt2", "bert", "qwen3"])
@pytest.mark.parametrize("passes", [None, False], ids=["passes", "no-passes"])
def test_model_plans_are_sound(name, passes):
    from perfcast.frontends.torch_export import capture
    from perfcast.runtime.compile import run_graph_passes

    model, inputs = MODELS[name]()
    cap = capture(model, inputs, keep_weights=True)
    graph, consts, _ = run_graph_passes(cap.graph, cap.weights, passes)
    lowered = lower(graph, consts)
    check_plan(lowered)
    _, report = plan(lowered)
    assert report.arena_bytes < report.naive_bytes


def test_contiguous_strides():
    assert contiguous_strides((2, 3, 4)) == (12, 4, 1)
