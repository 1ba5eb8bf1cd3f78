"""What a backend executes: buffers, steps and the program that ties them to one arena.

The shapes of these classes are the contract in ``docs/runtime.md``: lowering fills the
steps, the memory planner the buffer offsets, and every backend reads them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES: dict[str, np.dtype] = {"float32": np.dtype(np.float32), "int64": np.dtype(np.int64),
                               "bool": np.dtype(np.bool_)}
STORAGES = ("arena", "const", "input")
ALIGN = 64  # bytes: every arena buffer starts on a multiple of this


@dataclass(frozen=True)
class Buf:
    """A tensor the program touches: where its element 0 lives and how it is laid out."""

    name: str
    shape: tuple[int, ...]
    dtype: str        # "float32" | "int64" | "bool"
    storage: str      # "arena" | "const" | "input"
    offset: int       # arena: byte offset of element 0; const/input: 0
    index: int        # const/input: position in Program.consts / Program.inputs; arena: -1
    strides: tuple[int, ...]  # in elements; contiguous unless a view made it otherwise

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype].itemsize

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def contiguous(self) -> bool:
        return is_contiguous(self.shape, self.strides)


@dataclass(frozen=True)
class Step:
    """One kernel call: ``kind`` with its attrs reads ``inputs`` and writes ``outputs``."""

    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Program:
    """Buffers, steps in execution order, the graph's inputs/outputs, constants, arena size."""

    bufs: dict[str, Buf]
    steps: list[Step]
    inputs: list[str]
    outputs: list[str]
    consts: list[np.ndarray]
    arena_bytes: int

    def describe(self, limit: int | None = None) -> str:
        """One line per step: kind, outputs and inputs with their shapes."""

        def show(name: str) -> str:
            b = self.bufs[name]
            where = b.storage if b.storage != "arena" else f"@{b.offset}"
            return f"{name}:{b.dtype}{list(b.shape)}{where}"

        lines = [f"program: {len(self.steps)} steps, {len(self.consts)} constants, "
                 f"arena {self.arena_bytes} bytes"]
        for step in self.steps[:limit]:
            lines.append(f"  {', '.join(show(o) for o in step.outputs)} = {step.kind}("
                         f"{', '.join(show(i) for i in step.inputs)})")
        if limit is not None and len(self.steps) > limit:
            lines.append(f"  ... {len(self.steps) - limit} more steps")
        return "\n".join(lines)


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides in elements."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(int(d), 1)
    return tuple(reversed(strides))


def is_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Row-major dense layout; the strides of size-1 dimensions do not matter."""
    if any(d == 0 for d in shape):
        return True
    expected = 1
    for d, s in zip(reversed(shape), reversed(strides), strict=True):
        if d != 1 and s != expected:
            return False
        expected *= d
    return True
