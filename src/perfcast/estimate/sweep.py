"""Vectorized LLM serving sweeps and their Pareto fronts (InferenceMAX's chart).

A sweep crosses hardware x precision x parallel layout (tp, ep, pp, DP attention) x
concurrency x input/output lengths. Layouts are validated once per model with
:func:`~perfcast.frontends.llm.parallel.problems` (invalid ones are skipped and
counted); the rest become NumPy arrays and :func:`estimate_serving` runs once per
(hardware, precision, DP attention, pp) group, never once per configuration.

Inside a group the arrays are laid out on four axes, layout x concurrency x ISL x OSL
(shapes ``(L,1,1,1)``, ``(1,C,1,1)``, ``(1,1,I,1)``, ``(1,1,1,O)``), so the prefill
(which depends on the layout and ISL only) is computed on ``L x I`` points and only the
decode step and the serving equations on the full grid; every result is broadcast and
flattened in that order.

:meth:`SweepResult.pareto` keeps, per group, the feasible points that no other point
beats on both axes (higher interactivity *and* higher throughput per GPU), which is the
throughput-vs-interactivity front InferenceMAX publishes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perfcast.estimate.collectives import CommunicationError
from perfcast.estimate.llm_efficiency import LLMEfficiency
from perfcast.estimate.serving import (
    DEFAULT_MEMORY_UTILIZATION,
    LLMPrecisionError,
    ServingEstimate,
    Workload,
    estimate_serving,
)
from perfcast.frontends.llm import ModelConfig, load_model
from perfcast.frontends.llm.parallel import Parallelism, problems
from perfcast.frontends.llm.precision import Precision, parse_precision
from perfcast.hardware import HardwareSpec, load_spec

COLUMNS = (
    "hardware", "precision", "tp", "ep", "pp", "dp_attention", "gpus", "isl", "osl",
    "concurrency", "ttft_s", "tpot_s", "interactivity", "throughput_per_gpu",
    "output_throughput_per_gpu", "memory_total_bytes", "max_concurrency", "feasible",
    "cost_per_million_tokens_usd",
)
DEFAULT_GROUPS = ("hardware", "precision")
SWEEP_SCHEMA_VERSION = 1  # of SweepResult.to_dict (perfcast llm sweep --json)


@dataclass(frozen=True)
class Skipped:
    """Configurations a sweep did not evaluate, and why.

    ``kind`` is ``"layout"`` (the model cannot be split that way; ``hardware`` and
    ``precision`` are None), ``"precision"`` (the device has no compute rate for it) or
    ``"communication"`` (no link of the device reaches the group).
    """

    kind: str
    reason: str
    configurations: int
    hardware: str | None = None
    precision: str | None = None
    layout: str | None = None


@dataclass
class SweepResult:
    """All evaluated configurations (``frame``, columns :data:`COLUMNS`) and the skips.

    Infeasible rows (memory does not fit) are kept with ``feasible`` False.
    """

    model: str
    frame: pd.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def evaluated(self) -> int:
        return len(self.frame)

    @property
    def skipped_count(self) -> int:
        return sum(s.configurations for s in self.skipped)

    @property
    def infeasible(self) -> int:
        return int((~self.frame["feasible"]).sum())

    @property
    def workloads(self) -> list[tuple[int, int]]:
        """The distinct (isl, osl) pairs of the sweep."""
        pairs = self.frame[["isl", "osl"]].drop_duplicates().sort_values(["isl", "osl"])
        return [(int(i), int(o)) for i, o in pairs.itertuples(index=False)]

    def __len__(self) -> int:
        return len(self.frame)

    def to_dict(self, show_all: bool = False) -> dict:
        """The ``perfcast llm sweep --json`` object: counts, skips and the Pareto rows
        (every row with ``show_all``); the CLI adds the ``files`` it wrote."""
        import json
        from dataclasses import asdict

        frame = self.frame if show_all else self.pareto()
        return {
            "schema_version": SWEEP_SCHEMA_VERSION,
            "model": self.model,
            "evaluated": self.evaluated,
            "skipped": self.skipped_count,
            "infeasible": self.infeasible,
            "elapsed_s": self.elapsed_s,
            "skipped_detail": [asdict(s) for s in self.skipped],
            "rows_kind": "all" if show_all else "pareto",
            "rows": json.loads(frame.to_json(orient="records")),
        }

    def pareto(self, x: str = "interactivity", y: str = "throughput_per_gpu",
               by: Sequence[str] | None = DEFAULT_GROUPS) -> pd.DataFrame:
        """Feasible points per group not dominated on (``x``, ``y``), both maximized.

        Sorted by group then ``x`` ascending. Exact duplicates of (group, x, y) are kept
        once. When the sweep has several (isl, osl) pairs and ``by`` does not name them,
        ``isl`` and ``osl`` are added to ``by``: a front across workloads means nothing.
        """
        keys = list(by or ())
        if len(self.workloads) > 1:
            keys += [k for k in ("isl", "osl") if k not in keys]
        return pareto_front(self.frame[self.frame["feasible"]], x, y, keys)


def layout_label(row) -> str:
    """A short name of a row's layout: ``tp8``, ``tp8-ep8``, ``tp4-pp2-dpa``."""
    text = f"tp{row.tp}"
    if row.ep != 1:
        text += f"-ep{row.ep}"
    if row.pp != 1:
        text += f"-pp{row.pp}"
    if row.dp_attention:
        text += "-dpa"
    return text


def pareto_front(frame: pd.DataFrame, x: str, y: str, by: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of ``frame`` not dominated on (``x``, ``y``) within each ``by`` group.

    Vectorized: sort each group by ``x`` then ``y`` descending; a row is on the front when
    its ``y`` exceeds the running maximum of ``y`` over the rows before it.
    """
    keys = list(by)
    data = frame[np.isfinite(frame[x].to_numpy(float)) & np.isfinite(frame[y].to_numpy(float))]
    if data.empty:
        return data.copy()
    data = data.drop_duplicates(subset=[*keys, x, y])
    order = data.sort_values([*keys, x, y], ascending=[True] * len(keys) + [False, False],
                             kind="mergesort")
    yv = order[y].to_numpy(float)
    if keys:
        running = order.groupby(keys, sort=False, dropna=False)[y].cummax().to_numpy(float)
        gid = order.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
        first = np.r_[True, gid[1:] != gid[:-1]]
    else:
        running = np.maximum.accumulate(yv)
        first = np.zeros(len(yv), dtype=bool)
        first[0] = True
    before = np.where(first, -np.inf, np.r_[-np.inf, running[:-1]])
    front = order[yv > before]
    return front.sort_values([*keys, x], kind="mergesort").reset_index(drop=True)


def _int_list(name: str, values: Sequence[int] | None) -> list[int]:
    if values is None:
        raise ValueError(f"{name} must be a non-empty list of positive integers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must hold positive integers, got {v!r}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{name} must be a non-empty list of positive integers")
    return list(dict.fromkeys(out))


def _layouts(model: ModelConfig, tp: list[int], ep: list[int] | None, pp: list[int],
             dp_attention: list[bool]) -> tuple[dict[tuple[bool, int], list[tuple[int, int]]],
                                                list[tuple[str, str]]]:
    """Valid (tp, ep) pairs per (dp_attention, pp), and the invalid layouts with reasons.

    ``ep=None``: 1 for a dense model, every divisor of each ``tp`` for a MoE model.
    """
    valid: dict[tuple[bool, int], list[tuple[int, int]]] = {}
    invalid: list[tuple[str, str]] = []
    for dpa, p, t in itertools.product(dp_attention, pp, tp):
        if ep is not None:
            eps = ep
        elif model.moe is None:
            eps = [1]
        else:
            eps = [d for d in range(1, t + 1) if t % d == 0]
        for e in eps:
            par = Parallelism(tp=t, pp=p, ep=e, dp=1, dp_attention=dpa)
            found = problems(model, par)
            if found:
                invalid.append((par.describe(), "; ".join(found)))
            else:
                valid.setdefault((dpa, p), []).append((t, e))
    return valid, invalid


def _flat(value, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(value), shape).ravel()


def _rows(est: ServingEstimate, hw: str, prec: str, dpa: bool, pp: int, tp: np.ndarray,
          ep: np.ndarray, conc: np.ndarray, isl: np.ndarray, osl: np.ndarray) -> dict:
    shape = np.broadcast_shapes(tp.shape, conc.shape, isl.shape, osl.shape)
    n = int(np.prod(shape))
    cost = est.cost_per_million_tokens_usd
    tp_flat = _flat(tp, shape)
    return {
        "hardware": np.full(n, hw, dtype=object),
        "precision": np.full(n, prec, dtype=object),
        "tp": tp_flat,
        "ep": _flat(ep, shape),
        "pp": np.full(n, pp, dtype=np.int64),
        "dp_attention": np.full(n, dpa),
        "gpus": tp_flat * pp,
        "isl": _flat(isl, shape),
        "osl": _flat(osl, shape),
        "concurrency": _flat(conc, shape),
        "ttft_s": _flat(est.ttft_s, shape).astype(float),
        "tpot_s": _flat(est.tpot_s, shape).astype(float),
        "interactivity": _flat(est.interactivity, shape).astype(float),
        "throughput_per_gpu": _flat(est.throughput_per_gpu, shape).astype(float),
        "output_throughput_per_gpu": _flat(est.output_throughput_per_gpu, shape).astype(float),
        "memory_total_bytes": _flat(est.memory_total_bytes, shape).astype(float),
        "max_concurrency": _flat(est.max_concurrency, shape).astype(float),
        "feasible": _flat(est.feasible, shape).astype(bool),
        "cost_per_million_tokens_usd": np.full(n, np.nan) if cost is None
        else _flat(cost, shape).astype(float),
    }


def sweep(model: str | ModelConfig, hardware: Sequence[HardwareSpec | str], *,
          concurrency: Sequence[int], tp: Sequence[int], ep: Sequence[int] | None = None,
          pp: Sequence[int] = (1,), dp_attention: Sequence[bool] = (False,),
          precision: Sequence[str | Precision], isl: Sequence[int], osl: Sequence[int],
          efficiency: LLMEfficiency | None = None, engine: str | None = None,
          memory_utilization: float = DEFAULT_MEMORY_UTILIZATION) -> SweepResult:
    """Serving metrics over hardware x precision x layout x concurrency x ISL x OSL.

    ``ep=None`` tries every ``ep`` dividing ``tp`` for a MoE model (1 for a dense one).
    Layouts the model cannot be split into, and (hardware, precision) pairs the device
    cannot compute in, are recorded in :attr:`SweepResult.skipped` with their reason.
    Raises ``ValueError`` subclasses for unknown names and empty or non-positive lists.
    """
    start = time.perf_counter()
    cfg = model if isinstance(model, ModelConfig) else load_model(model)
    if not hardware:
        raise ValueError("hardware must be a non-empty list")
    if not precision:
        raise ValueError("precision must be a non-empty list")
    if not dp_attention:
        raise ValueError("dp_attention must be a non-empty list of booleans")
    specs = [h if isinstance(h, HardwareSpec) else load_spec(h) for h in hardware]
    specs = list({s.name: s for s in specs}.values())
    precs = list({p.name: p for p in (parse_precision(p) for p in precision)}.values())
    conc_l = _int_list("concurrency", concurrency)
    tp_l, pp_l = _int_list("tp", tp), _int_list("pp", pp)
    ep_l = None if ep is None else _int_list("ep", ep)
    isl_l, osl_l = _int_list("isl", isl), _int_list("osl", osl)
    dpa_l = list(dict.fromkeys(bool(d) for d in dp_attention))
    eff = efficiency

    valid, invalid = _layouts(cfg, tp_l, ep_l, pp_l, dpa_l)
    per_layout = len(conc_l) * len(isl_l) * len(osl_l)
    skipped = [Skipped("layout", reason, per_layout * len(specs) * len(precs), layout=name)
               for name, reason in invalid]

    conc_a = np.asarray(conc_l, dtype=np.int64).reshape(1, -1, 1, 1)
    isl_a = np.asarray(isl_l, dtype=np.int64).reshape(1, 1, -1, 1)
    osl_a = np.asarray(osl_l, dtype=np.int64).reshape(1, 1, 1, -1)
    chunks: list[dict] = []
    for hw, prec in itertools.product(specs, precs):
        for (dpa, p), pairs in valid.items():
            tp_a = np.asarray([t for t, _ in pairs], dtype=np.int64).reshape(-1, 1, 1, 1)
            ep_a = np.asarray([e for _, e in pairs], dtype=np.int64).reshape(-1, 1, 1, 1)
            try:
                chunks += _evaluate(cfg, hw, prec, dpa, p, tp_a, ep_a, conc_a, isl_a, osl_a,
                                    eff, memory_utilization, skipped, per_layout, engine)
            except LLMPrecisionError as exc:
                total = per_layout * sum(len(v) for v in valid.values())
                skipped.append(Skipped("precision", str(exc), total, hw.name, prec.name))
                break
    frame = pd.DataFrame({c: np.concatenate([ch[c] for ch in chunks]) for c in COLUMNS}) \
        if chunks else pd.DataFrame({c: [] for c in COLUMNS})
    return SweepResult(cfg.name, frame, skipped, time.perf_counter() - start)


def _evaluate(cfg: ModelConfig, hw: HardwareSpec, prec: Precision, dpa: bool, pp: int,
              tp: np.ndarray, ep: np.ndarray, conc: np.ndarray, isl: np.ndarray,
              osl: np.ndarray, eff: LLMEfficiency | None, memory_utilization: float,
              skipped: list[Skipped], per_layout: int,
              engine: str | None = None) -> list[dict]:
    """One estimate_serving call over a group; layouts no link reaches are split off."""
    workload = Workload(isl, osl, conc)
    try:
        est = estimate_serving(cfg, hw, Parallelism(tp, pp, ep, 1, dpa), prec, workload, eff,
                               memory_utilization, engine)
        return [_rows(est, hw.name, prec.name, dpa, pp, tp, ep, conc, isl, osl)]
    except CommunicationError as exc:
        if tp.size == 1:
            name = Parallelism(int(tp.flat[0]), pp, int(ep.flat[0]), 1, dpa).describe()
            skipped.append(Skipped("communication", str(exc), per_layout, hw.name, prec.name,
                                   name))
            return []
    out: list[dict] = []
    for i in range(tp.size):  # rare: find the layouts that the interconnect cannot reach
        out += _evaluate(cfg, hw, prec, dpa, pp, tp[i:i + 1], ep[i:i + 1], conc, isl, osl,
                         eff, memory_utilization, skipped, per_layout, engine)
    return out
