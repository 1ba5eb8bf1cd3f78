"""The pass pipeline: fold, simplify, fuse, dce, repeated until the graph stops changing.

Each pass is named and can be switched off (``enable={"fuse": False}``); every pass
returns a new graph that is validated before the next runs. The :class:`PassReport`
says, per pass, how many nodes it removed and what it did, by pattern.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from perfcast.ir import Graph
from perfcast.passes.dce import dead_code
from perfcast.passes.fold import Evaluate, constant_fold
from perfcast.passes.fuse import fuse
from perfcast.passes.simplify import simplify

PASS_NAMES = ("fold", "simplify", "fuse", "dce")
MAX_ROUNDS = 4

Pass = Callable[..., tuple[Graph, dict[str, np.ndarray]]]


class PassError(ValueError):
    """A bad pass name in ``enable``."""


@dataclass
class PassStat:
    """What one named pass did over all rounds."""

    name: str
    enabled: bool
    removed: int = 0  # nodes removed (net: nodes before minus nodes after)
    patterns: Counter = field(default_factory=Counter)  # rewrites by pattern name


@dataclass
class PassReport:
    passes: list[PassStat]
    nodes_before: int
    nodes_after: int
    rounds: int

    def __getitem__(self, name: str) -> PassStat:
        for p in self.passes:
            if p.name == name:
                return p
        raise KeyError(f"no pass {name!r}; passes: {', '.join(PASS_NAMES)}")

    def patterns(self) -> Counter:
        """Rewrite counts by pattern, all passes together."""
        total: Counter = Counter()
        for p in self.passes:
            total.update(p.patterns)
        return total

    def summary(self) -> str:
        lines = [f"passes: {self.nodes_before} -> {self.nodes_after} nodes "
                 f"in {self.rounds} round(s)"]
        for p in self.passes:
            if not p.enabled:
                lines.append(f"  {p.name:<9} off")
                continue
            what = ", ".join(f"{k} {v}" for k, v in sorted(p.patterns.items()))
            lines.append(f"  {p.name:<9} -{p.removed} nodes" + (f"  ({what})" if what else ""))
        return "\n".join(lines)


def run_passes(graph: Graph, consts: Mapping[str, np.ndarray], *, evaluate: Evaluate | None,
               enable: Mapping[str, bool] | None = None,
               ) -> tuple[Graph, dict[str, np.ndarray], PassReport]:
    """Run the enabled passes in order until a round changes nothing.

    ``evaluate(node, graph, input_values) -> output_values`` computes folded constants
    (``perfcast.runtime.interpret.eval_node``); None folds the same nodes without values.
    """
    switches = _switches(enable)
    passes: dict[str, Pass] = {"fold": partial(constant_fold, evaluate=evaluate),
                               "simplify": simplify, "fuse": fuse, "dce": dead_code}
    stats = [PassStat(name, switches[name]) for name in PASS_NAMES]
    values = dict(consts)
    before = len(graph.nodes)
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        start = _signature(graph)
        for stat in stats:
            if not stat.enabled:
                continue
            n = len(graph.nodes)
            counts: Counter = Counter()
            graph, values = passes[stat.name](graph, values, stats=counts)
            graph.validate()
            stat.removed += n - len(graph.nodes)
            stat.patterns.update({k: v for k, v in counts.items() if v})
        if _signature(graph) == start:
            break
    return graph, values, PassReport(stats, before, len(graph.nodes), rounds)


def _switches(enable: Mapping[str, bool] | None) -> dict[str, bool]:
    enable = dict(enable or {})
    unknown = sorted(set(enable) - set(PASS_NAMES))
    if unknown:
        raise PassError(f"unknown pass {', '.join(map(repr, unknown))}; "
                        f"allowed: {', '.join(PASS_NAMES)}")
    return {name: bool(enable.get(name, True)) for name in PASS_NAMES}


def _signature(graph: Graph) -> tuple:
    return tuple((n.kind, n.inputs, n.outputs) for n in graph.nodes), len(graph.tensors)
