"""Time of collective communication on a :class:`HardwareSpec`: an alpha-beta model.

Each collective is a sequence of steps; a step costs the link's per-step latency
``a`` (``Link.latency_s``) plus the bytes it moves divided by the link's per-device,
per-direction bandwidth ``B`` (Hockney's model, as used by Thakur, Rabenseifner and
Gropp, "Optimization of Collective Communication Operations in MPICH", IJHPCA 19(1),
2005, and by NCCL's tuner, ``src/graph/tuning.cc``). With ``p`` devices and ``n`` bytes
of payload per device::

    collective      algorithm  latency term          bandwidth term
    all_reduce      ring       2 (p-1) a             2 (p-1)/p * n / B
    all_reduce      tree       2 ceil(log2 p) a      2 n / B
    all_gather      ring       (p-1) a               (p-1)/p * n / B
    reduce_scatter  ring       (p-1) a               (p-1)/p * n / B
    all_to_all      direct     (p-1) a               (p-1)/p * n / B
    send / recv     direct     a                     n / B

``n`` is, per device: for all_reduce the buffer being reduced; for all_gather the
gathered *output*; for reduce_scatter the *input*; for all_to_all everything a device
sends, its own chunk included; for send/recv the message. This is the "size" of
nccl-tests, so :func:`bus_bandwidth` gives its busbw.

Ring all_reduce is a reduce-scatter followed by an all-gather, 2(p-1) steps of n/p bytes
(Patarasuk and Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
workstations", JPDC 69(2), 2009). The tree is NCCL's double binary tree (Sanders, Speck
and Traeff, Parallel Computing 35(12), 2009): a pipelined reduce up and broadcast down,
so its depth is log2 p each way, and NCCL's tuner gives it half the bus bandwidth of a
ring (algorithm bandwidth = busBw / 2, i.e. 2 n / B). ``algorithm="auto"`` takes the
faster of the two per element (ties go to the ring); the other collectives have one
algorithm each. NCCL runs its intra-node tree as a chain and has faster small-message
paths (NVLS, one-shot kernels), so the tree is only a rough small-message model.

Topology. A group that fits the scale-up domain (``p <= scale_up.domain_size``) runs
over ``scale_up``; without a scale-up link it runs over ``pcie``, taken to span one host
of ``PCIE_HOST_DEVICES`` devices. A larger group is hierarchical (two levels): ``d``
devices per inner domain, ``m = ceil(p / d)`` domains, every device with its own link to
the outer level (``scale_out`` bandwidth is per device, one NIC per GPU):

* all_reduce: reduce-scatter inside each domain, all_reduce of n/d across the m domains
  (ring or tree), all-gather inside: ``2 (d-1) a_in + 2 (d-1)/d * n / B_in`` plus the
  inter-domain all_reduce of n/d.
* all_gather / reduce_scatter: the inter-domain step moves n/d, the intra one n:
  ``(m-1) a_out + (m-1)/m * (n/d) / B_out + (d-1) a_in + (d-1)/d * n / B_in``.
* all_to_all: ``(d-1) a_in + (d-1)/p * n / B_in + (p-d) a_out + (p-d)/p * n / B_out``
  (the two parts are added, an upper bound of running them concurrently).
* send/recv between domains: ``a_out + n / B_out``.

Groups are assumed to fill whole domains; a partial one is rounded up (``ceil``). A
group of 1 costs exactly 0. A group that no link of the spec can reach raises
:class:`CommunicationError`.

Not modelled: NCCL's fixed per-call latency (``baseLatencies``, 6.6 us for ring/LL in
NCCL 2.28) and the kernel launch, protocol efficiency (LL moves half the payload per
flag word; Simple reaches 80-95 % of peak), in-network reductions (NVLS, SHARP) and
contention with concurrent compute. Bandwidth terms use the link's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from perfcast.hardware import HardwareSpec, Link
from perfcast.ir.tensor import Dim, ceil_div

CollectiveKind = Literal[
    "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send", "recv", "p2p"
]
Algorithm = Literal["auto", "ring", "tree", "direct"]

# Per-step latency used for a link whose spec has no ``latency_s``: NCCL 2.28's default
# tuner constants (src/graph/tuning.cc, hwLatencies, ring algorithm with the LL protocol:
# NVLink 0.6 us, PCI 1.0 us, NET 2.7 us), by the role of the link in the spec.
# https://github.com/NVIDIA/nccl/blob/master/src/graph/tuning.cc
DEFAULT_LATENCY_S: dict[str, float] = {"scale_up": 0.6e-6, "pcie": 1.0e-6, "scale_out": 2.7e-6}

# Devices taken to share one PCIe host when the spec has no scale-up link (or a smaller
# one, like a 2-GPU NVLink bridge): a typical 8-GPU server. An assumption, not a figure.
PCIE_HOST_DEVICES = 8

_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all_reduce": ("ring", "tree"),
    "all_gather": ("ring",),
    "reduce_scatter": ("ring",),
    "all_to_all": ("direct",),
    "p2p": ("direct",),
}
_KIND_ALIASES = {"send": "p2p", "recv": "p2p", "send_recv": "p2p"}

# nccl-tests busbw = algbw * factor (nccl-tests doc/PERFORMANCE.md)
_BUS_FACTOR = {
    "all_reduce": lambda p: 2 * (p - 1) / p,
    "all_gather": lambda p: (p - 1) / p,
    "reduce_scatter": lambda p: (p - 1) / p,
    "all_to_all": lambda p: (p - 1) / p,
    "p2p": lambda p: np.ones_like(p, dtype=float),
}


class CommunicationError(ValueError):
    """A collective the device's interconnect (as its spec describes it) cannot run."""


@dataclass(frozen=True)
class CollectiveTime:
    """Time of one collective; ``time_s = latency_s + bandwidth_s``, elementwise.

    ``algorithm`` and ``link`` are strings for scalar inputs and string arrays when the
    inputs broadcast to an array (``"none"`` where the group has one device).
    ``default_latency`` lists the link roles (``scale_up``, ``pcie``, ``scale_out``)
    whose latency came from ``DEFAULT_LATENCY_S`` because the spec gives none.
    """

    kind: str
    time_s: Dim
    latency_s: Dim
    bandwidth_s: Dim
    algorithm: str | np.ndarray
    link: str | np.ndarray
    default_latency: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Tier:
    role: str
    link: Link
    domain: float  # devices reachable at this level (inf for scale_out)
    alpha: float
    bandwidth: float
    defaulted: bool

    def describe(self) -> str:
        assumed = ", an assumed PCIe host" if self.link.domain_size < self.domain else ""
        return f"{self.role} domain of {self.domain:g} devices ({self.link.name}{assumed})"


def _tier(role: str, link: Link, domain: float) -> _Tier:
    defaulted = link.latency_s is None
    alpha = DEFAULT_LATENCY_S[role] if link.latency_s is None else link.latency_s
    return _Tier(role, link, domain, alpha, link.bandwidth_bytes_per_s_per_direction, defaulted)


def _tiers(hw: HardwareSpec) -> list[_Tier]:
    """The spec's links as levels of growing reach; each reaches more devices than the last."""
    tiers: list[_Tier] = []
    if hw.scale_up is not None:
        tiers.append(_tier("scale_up", hw.scale_up, hw.scale_up.domain_size))
    if hw.pcie is not None:
        domain = max(hw.pcie.domain_size, PCIE_HOST_DEVICES)
        if not tiers or domain > tiers[-1].domain:
            tiers.append(_tier("pcie", hw.pcie, domain))
    if hw.scale_out is not None:
        tiers.append(_tier("scale_out", hw.scale_out, math.inf))
    return tiers


def _canonical_kind(kind: str) -> str:
    key = _KIND_ALIASES.get(kind, kind)
    if key not in _ALGORITHMS:
        known = ", ".join([*_ALGORITHMS, *_KIND_ALIASES])
        raise ValueError(f"unknown collective {kind!r} (known: {known})")
    return key


def _group_array(group_size: object) -> np.ndarray:
    p = np.asarray(group_size)
    if p.dtype.kind not in "iuf" or not np.all(np.isfinite(p)) or np.any(p != np.round(p)):
        raise ValueError(f"group_size must be integers, got {group_size!r}")
    if np.any(p < 1):
        raise ValueError(f"group_size must be >= 1, got {group_size!r}")
    return p.astype(np.int64)


def _flat(kind: str, alg: str, p: np.ndarray, n: np.ndarray, a: float, bw: float):
    """(latency, bandwidth) terms of one collective over a single link."""
    pf = p.astype(float)
    if kind == "all_reduce" and alg == "ring":
        return 2 * (pf - 1) * a, 2 * (pf - 1) / pf * n / bw
    if kind == "all_reduce":  # tree
        depth = np.ceil(np.log2(np.maximum(pf, 1.0)))
        return 2 * depth * a, 2 * n / bw
    if kind in ("all_gather", "reduce_scatter", "all_to_all"):
        return (pf - 1) * a, (pf - 1) / pf * n / bw
    return np.full_like(pf, a), n / bw  # p2p


def _hierarchical(kind: str, alg: str, p: np.ndarray, n: np.ndarray, inner: _Tier,
                  outer: _Tier):
    """(latency, bandwidth) terms of one collective over two levels."""
    d = int(inner.domain)
    d_arr = np.minimum(p, d)
    m = ceil_div(p, d_arr)
    pf, df = p.astype(float), d_arr.astype(float)
    if kind == "all_reduce":
        lat_in, bw_in = 2 * (df - 1) * inner.alpha, 2 * (df - 1) / df * n / inner.bandwidth
        lat_out, bw_out = _flat(kind, alg, m, n / df, outer.alpha, outer.bandwidth)
        return lat_in + lat_out, bw_in + bw_out
    if kind in ("all_gather", "reduce_scatter"):
        lat_in, bw_in = _flat(kind, alg, d_arr, n, inner.alpha, inner.bandwidth)
        lat_out, bw_out = _flat(kind, alg, m, n / df, outer.alpha, outer.bandwidth)
        return lat_in + lat_out, bw_in + bw_out
    if kind == "all_to_all":
        lat = (df - 1) * inner.alpha + (pf - df) * outer.alpha
        bw = (df - 1) / pf * n / inner.bandwidth + (pf - df) / pf * n / outer.bandwidth
        return lat, bw
    return np.full_like(pf, outer.alpha), n / outer.bandwidth  # p2p across domains


def _scalar(x: np.ndarray, scalar: bool):
    if not scalar:
        return x
    return x.item() if x.dtype.kind in "US" else float(x)


def collective_time(
    kind: CollectiveKind | str,
    nbytes: Dim | float,
    group_size: Dim,
    hardware: HardwareSpec,
    algorithm: Algorithm | str = "auto",
) -> CollectiveTime:
    """Time of collective ``kind`` moving ``nbytes`` per device among ``group_size`` devices.

    ``nbytes`` and ``group_size`` may be NumPy arrays; they broadcast, and every field of
    the result has the broadcast shape. See the module docstring for the formulas, the
    meaning of ``nbytes`` per collective and the topology rules. Raises
    :class:`CommunicationError` when the spec has no link that reaches the group.
    """
    key = _canonical_kind(kind)
    allowed = _ALGORITHMS[key]
    if algorithm != "auto" and algorithm not in allowed:
        raise ValueError(
            f"{kind} has no {algorithm!r} algorithm in this model (choose auto or "
            f"{', '.join(allowed)})"
        )
    p = _group_array(group_size)
    n = np.asarray(nbytes, dtype=float)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ValueError(f"nbytes must be finite and >= 0, got {nbytes!r}")
    scalar = p.ndim == 0 and n.ndim == 0
    p, n = np.broadcast_arrays(p, n)

    tiers = _tiers(hardware)
    active = p > 1
    pmax = int(p.max()) if p.size else 1
    if pmax > 1 and not tiers:
        raise CommunicationError(
            f"{hardware.name}: its spec has no interconnect (scale_up, pcie and scale_out "
            f"are all missing), so it cannot run {kind} over {pmax} devices"
        )
    if tiers and pmax > tiers[-1].domain:
        last = tiers[-1]
        raise CommunicationError(
            f"{hardware.name}: a group of {pmax} devices exceeds its {last.describe()} "
            f"and its spec has no scale_out link to reach further"
        )

    # level j serves groups with tiers[j-1].domain < p <= tiers[j].domain
    shape = p.shape
    algs = [algorithm] if algorithm != "auto" else list(allowed)
    best_t = best_lat = best_bw = None
    best_alg = np.full(shape, "none", dtype=object)
    link = np.full(shape, "none", dtype=object)
    used: set[int] = set()
    for alg in algs:
        lat = np.zeros(shape)
        bw = np.zeros(shape)
        lower = 1.0
        for j, tier in enumerate(tiers):
            mask = active & (p > lower) & (p <= tier.domain)
            lower = tier.domain
            if not mask.any():
                continue
            used.add(j)
            if j == 0:
                la, ba = _flat(key, alg, p, n, tier.alpha, tier.bandwidth)
                names = tier.link.name
            else:
                used.add(j - 1)
                la, ba = _hierarchical(key, alg, p, n, tiers[j - 1], tier)
                names = (
                    tier.link.name if key == "p2p"
                    else f"{tiers[j - 1].link.name} + {tier.link.name}"
                )
            lat = np.where(mask, la, lat)
            bw = np.where(mask, ba, bw)
            link = np.where(mask, names, link)
        t = lat + bw
        if best_t is None:
            best_t, best_lat, best_bw = t, lat, bw
            best_alg = np.where(active, alg, "none")
        else:
            better = active & (t < best_t)
            best_t = np.where(better, t, best_t)
            best_lat = np.where(better, lat, best_lat)
            best_bw = np.where(better, bw, best_bw)
            best_alg = np.where(better, alg, best_alg)
    assert best_t is not None and best_lat is not None and best_bw is not None

    defaulted = tuple(sorted({tiers[j].role for j in used if tiers[j].defaulted}))
    return CollectiveTime(
        kind=kind,
        time_s=_scalar(best_t, scalar),
        latency_s=_scalar(best_lat, scalar),
        bandwidth_s=_scalar(best_bw, scalar),
        algorithm=_scalar(best_alg.astype(str), scalar),
        link=_scalar(link.astype(str), scalar),
        default_latency=defaulted,
    )


def bus_bandwidth(kind: CollectiveKind | str, nbytes: Dim | float, group_size: Dim,
                  time_s: Dim | float) -> Dim:
    """nccl-tests' bus bandwidth (bytes/s) of a collective that took ``time_s``.

    algbw = nbytes / time_s; busbw = algbw * 2(p-1)/p for all_reduce, * (p-1)/p for
    all_gather, reduce_scatter and all_to_all, * 1 for send/recv. busbw is comparable
    to the link bandwidth: a ring collective whose bandwidth term runs at the link's
    peak ``B`` has busbw = B whatever the group size.
    """
    key = _canonical_kind(kind)
    p = _group_array(group_size).astype(float)
    out = np.asarray(nbytes, dtype=float) / np.asarray(time_s, dtype=float) * _BUS_FACTOR[key](p)
    return float(out) if np.ndim(out) == 0 else out
