"""``perfcast llm``: LLM serving estimates (``estimate``), the model catalog (``models``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.cli.errors import fail
from perfcast.cli.llm_sweep import sweep_command
from perfcast.cli.options import EngineOption, MoeDistributionOption

app = typer.Typer(help="LLM serving: latency, throughput, memory and cost per deployment.",
                  no_args_is_help=True)
app.command("sweep")(sweep_command)



@app.command("models")
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the catalog's models with their architecture facts."""
    from perfcast.llm import catalog_rows

    rows = catalog_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="LLM catalog (perfcast llm estimate --model NAME)")
    for col in ("name", "params", "active", "layers", "hidden", "attention", "experts",
                "window", "KV/token (bf16)"):
        table.add_column(col, justify="left" if col in ("name", "attention") else "right")
    for r in rows:
        table.add_row(r["name"], _billions(r["params"]), _billions(r["active_params"]),
                      str(r["layers"]), str(r["hidden_size"]), r["attention"],
                      r["experts"] or "-", str(r["sliding_window"] or "-"),
                      f"{r['kv_bytes_per_token_bf16'] / 1024:.1f} KiB")
    Console().print(table)


def _billions(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e9:.1f}B"


@app.command("estimate")
def estimate(
    model: Annotated[str, typer.Option("--model", "-m",
                                       help="Catalog name/alias or path to a config.json.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Catalog device.")]
    = "h100-sxm",
    tp: Annotated[int, typer.Option(help="Tensor-parallel GPUs per stage.")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline stages.")] = 1,
    ep: Annotated[int, typer.Option(help="Expert-parallel groups (divides tp).")] = 1,
    dp: Annotated[int, typer.Option(help="Independent replicas.")] = 1,
    dp_attention: Annotated[bool, typer.Option(
        "--dp-attention", help="Data-parallel attention over the tp GPUs.")] = False,
    isl: Annotated[int, typer.Option(help="Input tokens per request.")] = 1024,
    osl: Annotated[int, typer.Option(help="Output tokens per request.")] = 1024,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c",
                                             help="Requests in flight.")] = 1,
    precision: Annotated[str, typer.Option(
        help="bf16, fp16, fp8, fp4, nvfp4, mxfp4, w8a16, w4a16, fp4-w4a16, or "
             "weights=..,experts=..,activations=..,kv=..")] = "bf16",
    kv_cache: Annotated[str | None, typer.Option(
        "--kv-cache", help="KV-cache format (bf16, fp8); default: the precision's.")] = None,
    requests: Annotated[int | None, typer.Option(
        help="Prompts in the benchmark run, all clients starting at once (InferenceMAX: "
             "10 x concurrency); default: steady state.")] = None,
    engine: EngineOption = "fitted",
    moe_distribution: MoeDistributionOption = "random",
    layers: Annotated[bool, typer.Option(help="Show the per-layer breakdown.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """Estimate TTFT, TPOT, throughput, memory and cost of serving a model."""
    import perfcast.llm as llm

    try:
        est = llm.estimate(model, hardware, tp=tp, pp=pp, ep=ep, dp=dp,
                           dp_attention=dp_attention, isl=isl, osl=osl,
                           concurrency=concurrency, precision=precision, kv_cache=kv_cache,
                           requests=requests, engine=engine,
                           moe_distribution=moe_distribution)
    except ValueError as exc:
        fail(str(exc))
    data = est.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _render(Console(highlight=False), data, layers)


def _render(out: Console, d: dict, layers: bool) -> None:
    from perfcast.units import si

    par, w = d["parallelism"], d["workload"]
    out.print(f"[bold]{d['model']}[/bold] on {par['gpus']} x {d['hardware']} "
              f"({_layout(par)}), {d['precision']['name']}, ISL {w['isl']} / OSL {w['osl']}, "
              f"concurrency {w['concurrency']}  [dim]confidence {d['confidence']}[/dim]")
    out.print(f"[dim]kernel times: {_profile_text(d)}[/dim]")
    if not d["feasible"]:
        out.print(f"[red]infeasible:[/red] {escape(d['infeasible_reason'] or '')}")
        out.print(f"largest feasible concurrency: {d['max_concurrency']:.0f}")
        _render_memory(out, d)
        return
    metrics = Table(title="Serving metrics (InferenceMAX definitions)", show_header=False)
    for label, value in (
        ("TTFT", si(d["ttft_s"], "s")),
        ("TPOT / ITL", si(d["tpot_s"], "s")),
        ("end-to-end latency", si(d["e2el_s"], "s")),
        ("interactivity", f"{d['interactivity']:.1f} tok/s/user"),
        ("throughput per GPU", f"{d['throughput_per_gpu']:.1f} tok/s (input + output)"),
        ("output throughput per GPU", f"{d['output_throughput_per_gpu']:.1f} tok/s"),
        ("largest feasible concurrency", f"{d['max_concurrency']:.0f}"),
        ("cost per 1M tokens", _usd(d["cost_per_million_tokens_usd"])),
        ("cost per 1M output tokens", _usd(d["cost_per_million_output_tokens_usd"])),
    ):
        metrics.add_row(label, value)
    out.print(metrics)
    phases = Table(title="Time per phase")
    for col in ("phase", "time", "compute", "memory", "communication", "overhead"):
        phases.add_column(col, justify="left" if col == "phase" else "right")
    for name, p in d["phases"].items():
        phases.add_row(name, si(p["time_s"], "s"), si(p["compute_s"], "s"),
                       si(p["memory_s"], "s"), si(p["communication_s"], "s"),
                       si(p["overhead_s"], "s"))
    out.print(phases)
    _render_memory(out, d)
    if layers:
        table = Table(title="Per layer group (all layers of the group, one pass)")
        for col in ("phase", "layer group", "part", "time"):
            table.add_column(col, justify="right" if col == "time" else "left")
        for row in d["layers"]:
            table.add_row(row["phase"], row["layer"], row["part"], si(row["time_s"], "s"))
        out.print(table)


def _profile_text(d: dict) -> str:
    """Which kernel-time model gave the times, and the share of kernel time per confidence."""
    if not d["profile"]:
        return "fitted serving efficiencies (THEORETICAL)"
    shares = {}
    for phase in d["phases"].values():
        for level, share in phase["share_by_confidence"].items():
            shares.setdefault(level, []).append(share)
    text = ", ".join(f"{level} {sum(v) / len(v):.0%}" for level, v in sorted(shares.items()))
    return f"measured profile {d['profile']} ({text} of kernel time, mean of the phases)"


def _render_memory(out: Console, d: dict) -> None:
    from perfcast.units import si

    mem = d["memory_bytes"]
    memory = Table(title="Memory per GPU")
    for col in ("weights", "KV cache", "activations", "reserve", "total", "capacity"):
        memory.add_column(col, justify="right")
    memory.add_row(*(si(mem[k], "B") for k in ("weights", "kv_cache", "activations",
                                                "reserve", "total", "capacity")))
    out.print(memory)


def _layout(par: dict) -> str:
    parts = [f"TP{par['tp']}"]
    parts += [f"{k.upper()}{par[k]}" for k in ("pp", "ep", "dp") if par[k] != 1]
    return " ".join(parts) + (" DP-attention" if par["dp_attention"] else "")


def _usd(x: float | None) -> str:
    return "- (no price in the catalog)" if x is None else f"${x:.3f}"
