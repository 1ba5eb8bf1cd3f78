"""Memory planner: lifetimes over the step order, one arena, offsets by greedy-by-size.

Every arena buffer written by a step is live from its first write to its last read
(program outputs to the end). An elementwise step may write over an input that dies at
that very step ("in place"): the two buffers then share storage. Groups of buffers that
share storage are placed largest first, each at the lowest-waste gap (best fit) among
the buffers already placed whose lifetimes overlap its own; offsets are 64-byte aligned.
Views take their root's offset shifted by their element offset.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from perfcast.runtime.lower import BufSpec, Lowered
from perfcast.runtime.program import ALIGN, DTYPES, Buf, Program, Step, contiguous_strides

# Step kinds that read and write element i at the same index, so an input that dies at
# the step may share the output's storage.
INPLACE_KINDS = frozenset({"unary", "scalar", "binary", "swiglu"})


@dataclass(frozen=True)
class PlanReport:
    """What the plan costs: the arena against keeping every intermediate apart."""

    arena_bytes: int           # the arena the plan needs
    naive_bytes: int           # every arena buffer apart (64-byte aligned), no reuse at all
    n_buffers: int             # arena buffers written by steps
    n_views: int               # buffers that alias another's storage without a copy
    n_inplace: int             # step outputs written over a dying input
    n_copies: int              # copy steps (strided gathers, cat pieces)
    peak_live_bytes: int       # largest sum of buffers live at one step (a lower bound)
    const_bytes: int           # weights and other constants, outside the arena
    inplace: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (input, output)
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def saving(self) -> float:
        """naive / arena (1.0 when nothing is saved)."""
        return self.naive_bytes / self.arena_bytes if self.arena_bytes else 1.0

    def describe(self) -> str:
        return (f"arena {_mb(self.arena_bytes)} vs {_mb(self.naive_bytes)} for all buffers "
                f"apart ({self.saving:.1f}x; peak live {_mb(self.peak_live_bytes)}); "
                f"{self.n_buffers} buffers, {self.n_views} views without copy, "
                f"{self.n_inplace} in place, {self.n_copies} copy steps; "
                f"constants {_mb(self.const_bytes)}")

    def to_dict(self) -> dict[str, float]:
        return {"arena_bytes": self.arena_bytes, "naive_bytes": self.naive_bytes,
                "n_buffers": self.n_buffers, "n_views": self.n_views,
                "n_inplace": self.n_inplace, "n_copies": self.n_copies,
                "peak_live_bytes": self.peak_live_bytes, "const_bytes": self.const_bytes}


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def lifetimes(lowered: Lowered) -> dict[str, tuple[int, int]]:
    """(first write, last read) step index of every arena root; outputs live to the end."""
    specs = lowered.specs
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, step in enumerate(lowered.steps):
        for o in step.outputs:
            root = specs[o].root
            first.setdefault(root, i)
            last[root] = max(last.get(root, i), i)
        for name in step.inputs:
            root = specs[name].root
            if specs[root].storage == "arena":
                last[root] = max(last.get(root, i), i)
    end = len(lowered.steps)
    for name in lowered.outputs:
        last[specs[name].root] = end
    return {r: (first[r], last[r]) for r in first}


def plan(lowered: Lowered) -> tuple[Program, PlanReport]:
    """Assign arena offsets to ``lowered``'s buffers; the program and its report."""
    specs = lowered.specs
    life = lifetimes(lowered)
    group = {r: r for r in life}  # root -> the root whose storage it uses
    pairs = _inplace_pairs(lowered, life, group)
    span: dict[str, tuple[int, int]] = {}
    size: dict[str, int] = defaultdict(int)
    for r, (a, b) in life.items():
        g = group[r]
        lo, hi = span.get(g, (a, b))
        span[g] = (min(lo, a), max(hi, b))
        size[g] = max(size[g], specs[r].nbytes)
    offsets = assign_offsets(span, size)
    bufs = {name: _buf(spec, specs, offsets, group) for name, spec in specs.items()}
    arena = align(max((offsets[g] + size[g] for g in span), default=0))
    program = Program(bufs, list(lowered.steps), list(lowered.inputs), list(lowered.outputs),
                      list(lowered.consts), arena)
    report = PlanReport(
        arena_bytes=arena,
        naive_bytes=sum(align(specs[r].nbytes) for r in life),
        n_buffers=len(life),
        n_views=sum(1 for s in specs.values() if s.base is not None),
        n_inplace=len(pairs),
        n_copies=sum(1 for s in lowered.steps if s.kind == "copy"),
        peak_live_bytes=_peak(span, size, len(lowered.steps)),
        const_bytes=sum(int(c.nbytes) for c in lowered.consts),
        inplace=tuple(pairs), lifetimes=life)
    return program, report


def _inplace_pairs(lowered: Lowered, life: dict[str, tuple[int, int]],
                   group: dict[str, str]) -> list[tuple[str, str]]:
    """Merge a step's output into an input root that dies at that step (where safe)."""
    specs = lowered.specs
    pairs = []
    for i, step in enumerate(lowered.steps):
        if step.kind not in INPLACE_KINDS or len(step.outputs) != 1:
            continue
        out = step.outputs[0]
        if specs[out].base is not None or life[out][0] != i:
            continue
        for pos, name in enumerate(step.inputs):
            root = specs[name].root
            if (specs[root].storage != "arena" or life[root][1] != i
                    or specs[root].nbytes != specs[out].nbytes
                    or not _whole(specs[name], specs[root])
                    or not _same_index(step, pos)
                    or any(specs[other].root == root and other != name
                           for other in step.inputs)):
                continue
            group[out] = group[root]
            pairs.append((root, out))
            break
    return pairs


def _whole(spec: BufSpec, root: BufSpec) -> bool:
    """``spec`` covers its root exactly, element for element in order."""
    return spec.elem_offset == 0 and spec.nbytes == root.nbytes and spec.strides == \
        contiguous_strides(spec.shape)


def _same_index(step: Step, pos: int) -> bool:
    """Input ``pos`` is read at the very index each output element is written to."""
    if step.kind != "binary":
        return True
    strides = step.attrs["a_strides" if pos == 0 else "b_strides"]
    return list(strides) == list(contiguous_strides(tuple(step.attrs["shape"])))


def assign_offsets(span: dict[str, tuple[int, int]], size: dict[str, int]) -> dict[str, int]:
    """Greedy by size with best fit: largest first, into the tightest gap that holds it."""
    order = sorted(span, key=lambda g: (-size[g], span[g][0], g))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    offsets: dict[str, int] = {}
    for g in order:
        lo, hi = span[g]
        need = size[g]
        busy = sorted((o, s) for o, s, a, b in placed if a <= hi and lo <= b and s > 0)
        best, best_waste, cursor = None, None, 0
        for off, sz in busy:
            gap = off - cursor
            if gap >= need and (best_waste is None or gap - need < best_waste):
                best, best_waste = cursor, gap - need
            cursor = max(cursor, align(off + sz))
        offsets[g] = cursor if best is None else best
        placed.append((offsets[g], need, lo, hi))
    return offsets


def _peak(span: dict[str, tuple[int, int]], size: dict[str, int], n_steps: int) -> int:
    delta = [0] * (n_steps + 2)
    for g, (a, b) in span.items():
        delta[a] += size[g]
        delta[b + 1] -= size[g]
    peak = live = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak


def _buf(spec: BufSpec, specs: dict[str, BufSpec], offsets: dict[str, int],
         group: dict[str, str]) -> Buf:
    if spec.storage != "arena":
        if spec.elem_offset:
            raise ValueError(f"buffer {spec.name!r}: views of inputs and constants must start "
                             "at their element 0")
        return Buf(spec.name, spec.shape, spec.dtype, spec.storage, 0, spec.index, spec.strides)
    root = specs[spec.root]
    base = offsets.get(group.get(root.name, root.name), 0)  # never written: nothing reads it
    offset = base + spec.elem_offset * DTYPES[root.dtype].itemsize
    return Buf(spec.name, spec.shape, spec.dtype, "arena", offset, -1, spec.strides)
