"""Coverage of the model zoo: does each published architecture capture, count and run?

For each zoo model at its small configuration (random weights, CPU): capture with
torch.export; parameters against ``sum(p.numel())`` over unique parameters; gemm + conv
+ attention FLOPs against :mod:`perfcast.validate.flop_reference`; ops unknown to the
registry; an estimate on three catalog devices; and, where the runtime lowers every op,
the runtime's outputs (NumPy reference backend) against eager PyTorch. TFLite entries are
imported from their files and estimated (no eager reference exists for them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

DEVICES = ("h100-sxm", "a100-sxm-80gb", "l4")
FLOP_TOLERANCE = 0.01
RUNTIME_RTOL = 1e-3
RUNTIME_ATOL = 1e-4


@dataclass
class CoverageRow:
    """What perfcast does with one zoo model."""

    name: str
    library: str
    family: str
    captured: bool = False
    reason: str = ""  # why capture, counting or estimation failed
    params: int = 0
    params_reference: int = 0
    flops: int = 0  # gemm + conv + attention, perfcast
    flops_reference: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    times_s: dict[str, float] = field(default_factory=dict)
    runtime: str = ""  # "equal", "differs ...", "unsupported: ...", "not run: ..."
    seconds: float = 0.0

    @property
    def flops_ok(self) -> bool:
        if not self.flops_reference:
            return False
        return abs(self.flops / self.flops_reference - 1) <= FLOP_TOLERANCE

    @property
    def estimated(self) -> bool:
        return self.captured and len(self.times_s) == len(DEVICES)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flops_ok": self.flops_ok, "estimated": self.estimated}


def check_model(entry, *, runtime: bool = True) -> CoverageRow:
    """One :class:`CoverageRow` for a zoo entry at its small configuration."""
    from perfcast.frontends.errors import CaptureError

    row = CoverageRow(entry.name, entry.library, entry.family)
    start = time.perf_counter()
    try:
        if entry.library == "tflite":
            _check_tflite(entry, row)
        else:
            _check_torch(entry, row, runtime)
    except CaptureError as exc:
        row.reason = str(exc).splitlines()[0]
    row.seconds = round(time.perf_counter() - start, 1)
    return row


def check_zoo(entries: Iterable, *, runtime: bool = True,
              progress: Callable[[str], None] | None = None) -> list[CoverageRow]:
    """Rows for ``entries`` in order; ``progress`` hears each model's name first."""
    rows = []
    for entry in entries:
        if progress:
            progress(entry.name)
        rows.append(check_model(entry, runtime=runtime))
    return rows


def _check_torch(entry, row: CoverageRow, runtime: bool) -> None:
    import torch

    from perfcast.frontends.torch_export import capture
    from perfcast.validate import flop_reference
    from perfcast.zoo import build

    torch.manual_seed(0)
    model, inputs = build(entry, "small")
    row.params_reference = sum(p.numel() for p in {id(p): p for p in model.parameters()}
                               .values())
    ref = flop_reference.measure(model, inputs)
    cap = capture(model, inputs, keep_weights=runtime, name=entry.name)
    row.captured = True
    row.params = cap.params
    row.flops = _matrix_flops(cap.graph)
    try:
        row.flops_reference = ref.matrix_flops(cap.graph)
    except ValueError as exc:
        row.reason = f"FLOP reference: {exc}"
    row.unknown = dict(cap.graph.unsupported())
    _estimate(cap, row)
    if runtime:
        row.runtime = _runtime_check(model, inputs, cap)


def _check_tflite(entry, row: CoverageRow) -> None:
    from perfcast.frontends.tflite_import import import_tflite
    from perfcast.zoo import TFLITE_DIR

    cap = import_tflite(TFLITE_DIR / entry.file, name=entry.name)
    row.captured = True
    row.params = row.params_reference = cap.params
    row.flops = _matrix_flops(cap.graph)
    row.unknown = dict(cap.graph.unsupported())
    _estimate(cap, row)
    row.runtime = "not run: no eager reference for a .tflite file"


def _matrix_flops(graph) -> int:
    from perfcast.ir import MATRIX_CATEGORIES

    return sum(int(graph.cost(n).flops) for n in graph.nodes
               if graph.category(n) in MATRIX_CATEGORIES and not graph.is_view(n))


def _estimate(cap, row: CoverageRow) -> None:
    from perfcast.estimate.analyze import estimate_prepared, prepare_graph

    prepared = prepare_graph(cap)
    for device in DEVICES:
        row.times_s[device] = float(estimate_prepared(prepared, device).totals.time_s)


def _runtime_check(model, inputs, cap) -> str:
    """'equal', 'differs by X', or 'unsupported: reason' for the NumPy runtime backend."""
    import numpy as np
    import torch

    from perfcast.frontends.outputs import flatten_tensors
    from perfcast.frontends.torch_export import split_inputs
    from perfcast.runtime.compile import compile_graph
    from perfcast.runtime.interpret import InterpretError
    from perfcast.runtime.lower import RuntimeLoweringError

    try:
        fn = compile_graph(cap.graph, cap.weights, backend="numpy")
    except (RuntimeLoweringError, InterpretError) as exc:  # refused, with the reason
        return "unsupported: " + str(exc).splitlines()[0][:80]
    args, kwargs = split_inputs(inputs)
    with torch.no_grad():
        want = flatten_tensors(model(*args, **kwargs))
    got = fn(*(v.numpy() for v in args), **{k: v.numpy() for k, v in kwargs.items()})
    got = list(got) if isinstance(got, tuple) else [got]
    if len(got) != len(want):
        return f"differs: {len(got)} outputs, eager has {len(want)}"
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        w = w.float().numpy() if w.is_floating_point() else w.numpy()
        if g.shape != w.shape:
            return f"differs: shape {list(g.shape)} vs eager {list(w.shape)}"
        if not np.allclose(g, w, rtol=RUNTIME_RTOL, atol=RUNTIME_ATOL):
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))))
    return "equal" if worst == 0.0 else f"differs: max abs error {worst:.2e}"
