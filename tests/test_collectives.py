"""Collective communication model: hand-computed alpha-beta times, topology, IR shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from perfcast.estimate.collectives import (
    DEFAULT_LATENCY_S,
    CommunicationError,
    bus_bandwidth,
    collective_time,
)
from perfcast.hardware import HardwareSpec, load_spec
from perfcast.ir import Graph, Tensor

GIB = 2**30
MIB = 2**20
NVLINK4 = 450e9  # h100-sxm scale_up bytes/s per direction
NDR = 50e9  # h100-sxm scale_out: 400 Gb/s
A_NVL = 0.6e-6  # h100-sxm scale_up latency_s (NCCL NVLink ring/LL)
A_NET = 2.7e-6  # h100-sxm scale_out latency_s (NCCL network ring/LL)


@pytest.fixture(scope="module")
def h100():
    return load_spec("h100-sxm")


def test_ring_all_reduce_of_1gib_on_8_h100s_by_hand(h100):
    r = collective_time("all_reduce", GIB, 8, h100, algorithm="ring")
    # 2(p-1) = 14 steps, each alpha + (n/p)/B
    assert r.latency_s == pytest.approx(14 * A_NVL)
    assert r.bandwidth_s == pytest.approx(2 * 7 / 8 * GIB / NVLINK4)
    assert r.time_s == pytest.approx(2 * 7 / 8 * GIB / NVLINK4 + 14 * A_NVL)  # 4.184 ms
    assert r.time_s == pytest.approx(4.184063e-3, rel=1e-6)
    assert (r.algorithm, r.link, r.default_latency) == ("ring", "NVLink 4 (NVSwitch)", ())
    assert isinstance(r.time_s, float)
    # auto picks the ring for a large buffer: tree = 2*3*alpha + 2n/B is slower
    auto = collective_time("all_reduce", GIB, 8, h100)
    assert auto.algorithm == "ring" and auto.time_s == r.time_s


def test_tree_beats_ring_for_tiny_messages_and_loses_for_large(h100):
    tiny_ring = collective_time("all_reduce", 8, 8, h100, algorithm="ring")
    tiny_tree = collective_time("all_reduce", 8, 8, h100, algorithm="tree")
    assert tiny_tree.latency_s == pytest.approx(2 * 3 * A_NVL)  # 2 ceil(log2 8) steps
    assert tiny_tree.bandwidth_s == pytest.approx(2 * 8 / NVLINK4)
    assert tiny_tree.time_s < tiny_ring.time_s  # 3.6 us vs 8.4 us
    auto = collective_time("all_reduce", 8, 8, h100)
    assert auto.algorithm == "tree" and auto.time_s == tiny_tree.time_s

    big_ring = collective_time("all_reduce", GIB, 8, h100, algorithm="ring")
    big_tree = collective_time("all_reduce", GIB, 8, h100, algorithm="tree")
    assert big_ring.time_s < big_tree.time_s  # 2*7/8 n/B vs 2 n/B
    # crossover where 8 alpha = (2 - 2*7/8) n / B: n = 8 * 0.6 us * 450 GB/s / 0.25 = 8.64 MB
    cross = 8 * A_NVL * NVLINK4 / 0.25
    sizes = np.array([cross * 0.9, cross * 1.1])
    assert list(collective_time("all_reduce", sizes, 8, h100).algorithm) == ["tree", "ring"]


def test_other_collectives_by_hand(h100):
    n = 8 * MIB
    for kind in ("all_gather", "reduce_scatter", "all_to_all"):
        r = collective_time(kind, n, 8, h100)
        assert r.latency_s == pytest.approx(7 * A_NVL), kind  # p-1 steps
        assert r.bandwidth_s == pytest.approx(7 / 8 * n / NVLINK4), kind
    p2p = collective_time("send", n, 8, h100)
    assert p2p.time_s == pytest.approx(A_NVL + n / NVLINK4)
    assert p2p.algorithm == "direct"
    across = collective_time("recv", n, 16, h100)  # peers in different NVLink domains
    assert across.time_s == pytest.approx(A_NET + n / NDR)
    assert across.link == "400 Gb/s NDR InfiniBand (ConnectX-7)"


def test_group_of_one_costs_exactly_zero(h100):
    for kind in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send"):
        r = collective_time(kind, GIB, 1, h100)
        assert (r.time_s, r.latency_s, r.bandwidth_s) == (0.0, 0.0, 0.0)
        assert r.link == "none" and r.algorithm == "none"
    # even on a device with no interconnect at all
    assert collective_time("all_reduce", GIB, 1, load_spec("apple-m3-max")).time_s == 0.0


def test_array_group_sizes_equal_scalar_calls(h100):
    groups = np.array([1, 2, 4, 8])
    swept = collective_time("all_reduce", 4 * MIB, groups, h100)
    for i, g in enumerate(groups):
        one = collective_time("all_reduce", 4 * MIB, int(g), h100)
        assert swept.time_s[i] == pytest.approx(one.time_s, abs=0)
        assert swept.latency_s[i] == one.latency_s
        assert swept.algorithm[i] == one.algorithm
        assert swept.link[i] == one.link
    # nbytes and group_size broadcast against each other
    grid = collective_time("all_gather", np.array([MIB, GIB]), groups[:, None], h100)
    assert grid.time_s.shape == (4, 2)
    assert grid.time_s[3, 1] == pytest.approx(7 * A_NVL + 7 / 8 * GIB / NVLINK4)
    assert np.all(grid.time_s[0] == 0.0)


def test_sixteen_gpus_are_hierarchical_over_infiniband(h100):
    n = GIB
    r = collective_time("all_reduce", n, 16, h100, algorithm="ring")
    # d = 8 per NVLink domain, m = 2 domains: reduce-scatter + all-gather inside
    # (2*7 steps, 2*7/8 n over NVLink) and a ring all-reduce of n/8 across (2*1 steps)
    intra = 14 * A_NVL + 2 * 7 / 8 * n / NVLINK4
    inter = 2 * A_NET + 2 * 1 / 2 * (n / 8) / NDR
    assert r.time_s == pytest.approx(intra + inter)  # 4.184 ms + 2.690 ms = 6.874 ms
    assert r.latency_s == pytest.approx(14 * A_NVL + 2 * A_NET)
    assert r.link == "NVLink 4 (NVSwitch) + 400 Gb/s NDR InfiniBand (ConnectX-7)"
    flat8 = collective_time("all_reduce", n, 8, h100)
    assert r.time_s > flat8.time_s
    # all-gather of a 1 GiB output across 2 x 8: inter gathers n/8, intra gathers n
    ag = collective_time("all_gather", n, 16, h100)
    assert ag.time_s == pytest.approx(
        1 * A_NET + 1 / 2 * (n / 8) / NDR + 7 * A_NVL + 7 / 8 * n / NVLINK4
    )
    # all-to-all: 7/16 of the payload over NVLink, 8/16 over InfiniBand
    a2a = collective_time("all_to_all", n, 16, h100)
    assert a2a.time_s == pytest.approx(
        7 * A_NVL + 7 / 16 * n / NVLINK4 + 8 * A_NET + 8 / 16 * n / NDR
    )


def test_nvl72_domain_and_beyond():
    gb200 = load_spec("gb200")
    flat = collective_time("all_reduce", GIB, 72, gb200, algorithm="ring")
    assert flat.time_s == pytest.approx(2 * 71 * 0.6e-6 + 2 * 71 / 72 * GIB / 900e9)
    two_racks = collective_time("all_reduce", GIB, 144, gb200, algorithm="ring")
    assert "InfiniBand" in two_racks.link


def test_nvlink_bridge_pairs_then_pcie():
    nvl = load_spec("h100-nvl")  # NVLink bridge between 2 GPUs, PCIe 5.0 beyond
    r = collective_time("all_gather", 4 * MIB, 4, nvl)
    # inter (PCIe): 1 step, 1/2 of n/2; intra (bridge): 1 step, 1/2 of n
    expected = 1.0e-6 + 0.5 * (2 * MIB) / 64e9 + 0.6e-6 + 0.5 * 4 * MIB / 300e9
    assert r.time_s == pytest.approx(expected)
    assert r.link == "NVLink bridge (2 GPUs) + PCIe 5.0 x16"
    l40s = load_spec("l40s")  # no scale-up link: PCIe inside the host
    assert collective_time("all_reduce", GIB, 4, l40s, "ring").time_s == pytest.approx(
        6 * 1.0e-6 + 2 * 3 / 4 * GIB / 32e9
    )


def test_missing_links_are_clear_errors():
    with pytest.raises(CommunicationError, match=r"mi300x: a group of 16 .*scale_up domain of 8"
                       r".*no scale_out link"):
        collective_time("all_reduce", GIB, 16, load_spec("mi300x"))
    with pytest.raises(CommunicationError, match=r"l40s: .*assumed PCIe host.*no scale_out"):
        collective_time("all_reduce", GIB, np.array([2, 16]), load_spec("l40s"))
    with pytest.raises(CommunicationError, match="apple-m3-max: its spec has no interconnect"):
        collective_time("all_gather", MIB, 2, load_spec("apple-m3-max"))
    assert issubclass(CommunicationError, ValueError)


def test_bad_arguments(h100):
    with pytest.raises(ValueError, match="unknown collective 'broadcast'"):
        collective_time("broadcast", MIB, 8, h100)
    with pytest.raises(ValueError, match="all_gather has no 'tree' algorithm"):
        collective_time("all_gather", MIB, 8, h100, algorithm="tree")
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        collective_time("all_reduce", MIB, 0, h100)
    with pytest.raises(ValueError, match="group_size must be integers"):
        collective_time("all_reduce", MIB, 2.5, h100)
    with pytest.raises(ValueError, match="nbytes"):
        collective_time("all_reduce", -1, 2, h100)


def test_default_latency_is_used_and_reported(h100):
    up = h100.scale_up.model_copy(update={"latency_s": None, "latency_source": None})
    bare = h100.model_copy(update={"scale_up": up})
    r = collective_time("all_reduce", GIB, 8, bare, algorithm="ring")
    assert r.latency_s == pytest.approx(14 * DEFAULT_LATENCY_S["scale_up"])
    assert r.default_latency == ("scale_up",)
    assert collective_time("all_reduce", GIB, 1, bare).default_latency == ()


def test_bus_bandwidth_of_a_ring_at_link_peak_is_the_link_bandwidth(h100):
    for g in (2, 4, 8):
        r = collective_time("all_reduce", GIB, g, h100, algorithm="ring")
        assert bus_bandwidth("all_reduce", GIB, g, r.bandwidth_s) == pytest.approx(NVLINK4)
        ag = collective_time("all_gather", GIB, g, h100)
        assert bus_bandwidth("all_gather", GIB, g, ag.bandwidth_s) == pytest.approx(NVLINK4)
    swept = bus_bandwidth("all_reduce", GIB, np.array([2, 8]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(swept, [GIB * 1.0, GIB * 1.75])


LATENCY_DEVICES = ["h100-sxm", "h100-nvl", "h100-pcie", "h200", "b200", "gb200", "b300",
                   "gb300", "a100-sxm-80gb", "l40s", "rtx-pro-6000", "mi300x", "mi325x",
                   "mi355x"]


@pytest.mark.parametrize("name", LATENCY_DEVICES)
def test_catalog_links_carry_a_sourced_latency(name):
    spec = load_spec(name)
    links = [spec.scale_up, spec.pcie, spec.scale_out]
    assert any(links)
    for link in filter(None, links):
        assert link.latency_s is not None and 0.1e-6 <= link.latency_s <= 10e-6, link.name
        assert (link.latency_source or link.source) in spec.sources


def _graph(shape, dtype="bf16") -> Graph:
    g = Graph()
    g.add_tensor(Tensor("x", shape, dtype))
    g.inputs.append("x")
    return g


def test_ir_collective_shapes_accept_array_group_sizes():
    groups = np.array([1, 2, 4, 8])
    g = _graph((16, 4096))
    (gathered,) = g.apply("all_gather", ["x"], {"group_size": groups})
    (scattered,) = g.apply("reduce_scatter", ["x"], {"group_size": groups})
    (reduced,) = g.apply("all_reduce", ["x"], {"group_size": groups})
    np.testing.assert_array_equal(gathered.shape[0], [16, 32, 64, 128])
    np.testing.assert_array_equal(scattered.shape[0], [16, 8, 4, 2])
    assert reduced.shape == (16, 4096)
    numel = 16 * 4096
    # reduction adds: numel * (g-1)/g, and 0 for a group of 1
    np.testing.assert_array_equal(
        g.cost(g.nodes[2]).flops, [0, numel // 2, numel * 3 // 4, numel * 7 // 8]
    )
    np.testing.assert_array_equal(g.cost(g.nodes[1]).flops, [0, numel // 2, numel * 3 // 4,
                                                              numel * 7 // 8])


def test_ir_collective_shapes_stay_ints_for_int_group_sizes():
    g = _graph((16, 4096))
    (gathered,) = g.apply("all_gather", ["x"], {"group_size": 4})
    (scattered,) = g.apply("reduce_scatter", ["x"], {"group_size": np.int64(4)})
    assert gathered.shape == (64, 4096) and type(gathered.shape[0]) is int
    assert scattered.shape == (4, 4096) and type(scattered.shape[0]) is int
    assert g.cost(g.nodes[1]).flops == 16 * 4096 * 3 // 4
    assert math.isclose(g.cost(g.nodes[0]).flops, 0)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        g.apply("all_gather", ["x"], {"group_size": 0})


def test_link_latency_source_is_checked(h100):
    data = h100.model_dump()
    data["scale_up"]["latency_source"] = "nope"
    with pytest.raises(ValidationError, match=r"scale_up.latency.source: unknown source key"):
        HardwareSpec.model_validate(data)
    data["scale_up"].update(latency_s=None, latency_source="nccl")
    with pytest.raises(ValidationError, match="latency_source is set but latency_s is not"):
        HardwareSpec.model_validate(data)
