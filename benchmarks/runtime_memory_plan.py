"""The runtime's memory plan for the models of issue 6: arena vs every buffer apart.

Full-size GPT-2 small, BERT-base and the Qwen3-0.6B architecture (random weights), the
MLP and the transformer block of tests/data/runtime_models.py; batch 1, --seq tokens.
Only capture, passes, lowering and planning run (no execution), so it needs no compiler.

    .venv/bin/python benchmarks/runtime_memory_plan.py [--seq 128] [--small]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from perfcast.pyfile import import_file

ROOT = Path(__file__).resolve().parent.parent


def plan_model(model, inputs):
    from perfcast.frontends.torch_export import capture
    from perfcast.runtime.compile import run_graph_passes
    from perfcast.runtime.lower import lower
    from perfcast.runtime.planner import plan

    cap = capture(model, inputs, keep_weights=True)
    graph, consts, _ = run_graph_passes(cap.graph, cap.weights, None)
    program, report = plan(lower(graph, consts))
    return len(program.steps), report


def _mb(n: int) -> str:
    return f"{n / 1e6:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--small", action="store_true", help="the small test configurations")
    args = parser.parse_args(argv)
    models = import_file(ROOT / "tests" / "data" / "runtime_models.py",
                         "perfcast_bench_runtime_models")
    full = not args.small
    builders = {
        "mlp": lambda: models.mlp(batch=1),
        "block d=256": lambda: models.block(batch=1, seq=args.seq, dim=256),
        "gpt2" + (" small" if full else ""): lambda: models.gpt2(full=full, seq=args.seq),
        "bert" + ("-base" if full else ""): lambda: models.bert(full=full, seq=args.seq),
        "qwen3" + ("-0.6b" if full else ""): lambda: models.qwen3(full=full, seq=args.seq),
    }
    table = Table(title=f"memory plan, batch 1, seq {args.seq}", box=box.SIMPLE_HEAD)
    for col in ("model", "steps", "buffers", "apart MB", "arena MB", "apart/arena",
                "peak live MB", "views", "in place", "copies", "weights MB"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, build in builders.items():
        model, inputs = build()
        steps, r = plan_model(model, inputs)
        del model
        gc.collect()
        table.add_row(name, str(steps), str(r.n_buffers), _mb(r.naive_bytes),
                      _mb(r.arena_bytes), f"{r.saving:.1f}x", _mb(r.peak_live_bytes),
                      str(r.n_views), str(r.n_inplace), str(r.n_copies), _mb(r.const_bytes))
    Console(highlight=False, width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
