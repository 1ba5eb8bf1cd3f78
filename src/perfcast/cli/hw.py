"""``perfcast hw``: list the hardware catalog, show one spec, detect this machine."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfcast.hardware import (
    HardwareError,
    HardwareSpec,
    describe_local,
    detect_gpu,
    detect_local,
    list_specs,
    load_spec,
)
from perfcast.hardware.spec import OFF_CHIP, Sourced
from perfcast.units import binary_bytes, si

app = typer.Typer(help="Hardware catalog: list, show, detect; measured GPU profiles.",
                  no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
def _fail(exc: HardwareError) -> NoReturn:
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[red]{escape(str(exc))}[/red]")
    raise typer.Exit(2)


def _console() -> Console:
    return Console(highlight=False)


def _table(title: str, headers: Iterable[str], rows: Iterable[Iterable[str]]) -> Table:
    """A compact table; short columns (<= 16 chars) keep their full width."""
    rows = [tuple(row) for row in rows]
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False
    )
    for i, header in enumerate(headers):
        width = max((len(row[i]) for row in rows), default=0)
        table.add_column(header, min_width=width if width <= 16 else None)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def _rate(dtype: str) -> str:
    return "OP/s" if dtype == "int8" else "FLOP/s"


def _tflops(spec: HardwareSpec, dtype: str) -> str:
    return f"{spec.peak_flops(dtype) / 1e12:.1f}" if spec.supports(dtype) else "-"


@app.command("list")
def list_cmd() -> None:
    """All catalog devices with headline figures (dense peaks)."""
    rows = [
        (
            s.name,
            s.vendor,
            s.kind,
            _tflops(s, "bf16"),
            _tflops(s, "fp32"),
            f"{s.memory_capacity / 1e9:,.0f}",
            f"{s.memory_bandwidth / 1e12:.2f}",
            f"{s.power.tdp_w:.0f}",
            f"{s.price_per_hour_usd.value:.2f}" if s.price_per_hour_usd else "-",
        )
        for s in list_specs()
    ]
    headers = ("name", "vendor", "kind", "bf16", "fp32", "GB", "TB/s", "TDP", "$/h")
    title = f"{len(rows)} devices: dense TFLOPS, memory GB and TB/s, TDP W, USD per hour"
    _console().print(_table(title, headers, rows))


def _figure_rows(spec: HardwareSpec) -> list[tuple[str, str, str, str]]:
    links = {"scale_up": spec.scale_up, "pcie": spec.pcie, "scale_out": spec.scale_out}
    rows = [
        (
            field,
            f"{link.name}: {si(link.bandwidth_bytes_per_s_per_direction, 'B/s')} per direction, "
            f"domain of {link.domain_size}",
            link.source,
            link.note or "",
        )
        for field, link in links.items()
        if link is not None
    ]
    others: list[tuple[str, str, Sourced | None]] = [
        ("power", f"TDP {spec.power.tdp_w:g} W, idle {spec.power.idle_w:g} W", spec.power),
        (
            "energy",
            f"{si(spec.energy.flop_j, 'J')}/FLOP, {si(spec.energy.dram_byte_j, 'J')}/byte",
            spec.energy,
        ),
        ("launch overhead", si(spec.launch_overhead_s.value, "s"), spec.launch_overhead_s),
        (
            "price",
            f"${spec.price_per_hour_usd.value:g}/h" if spec.price_per_hour_usd else "-",
            spec.price_per_hour_usd,
        ),
    ]
    rows += [(k, v, f.source if f else "", (f.note or "") if f else "") for k, v, f in others]
    return rows


def print_spec(spec: HardwareSpec, console: Console) -> None:
    """Every figure of ``spec`` with its source key, then the sources."""
    aliases = ", ".join(spec.aliases) or "-"
    console.print(
        f"[bold]{escape(spec.display_name)}[/bold] ({spec.name}): {spec.vendor} {spec.kind}, "
        f"cores (SMs/CUs): {spec.cores or '?'}; aliases: {escape(aliases)}"
    )
    compute = [
        (k, si(f.dense, _rate(k)), si(f.sparse, _rate(k)), f.source, f.note or "")
        for k, f in spec.compute.items()
    ]
    console.print(_table("compute", ("dtype", "dense", "2:4 sparse", "source", "note"), compute))
    memory = [
        (
            m.level,
            si(m.capacity_bytes, "B") if m.level in OFF_CHIP else binary_bytes(m.capacity_bytes),
            si(m.bandwidth_bytes_per_s, "B/s"),
            m.source,
            m.note or "",
        )
        for m in spec.memory
    ]
    headers = ("level", "capacity", "bandwidth", "source", "note")
    console.print(_table("memory", headers, memory))
    headers = ("what", "value", "source", "note")
    console.print(_table("links, power, cost", headers, _figure_rows(spec)))
    sources = [(k, s.title, s.url or "") for k, s in spec.sources.items()]
    console.print(_table("sources", ("key", "title", "url"), sources))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Catalog name, alias, YAML path, or 'local'.")],
    json_out: JsonFlag = False,
) -> None:
    """All figures of one device with their sources."""
    try:
        spec = load_spec(name)
    except HardwareError as exc:
        _fail(exc)
    if json_out:
        typer.echo(spec.model_dump_json(indent=2))
    else:
        print_spec(spec, _console())


@app.command()
def detect(json_out: JsonFlag = False) -> None:
    """Describe this machine: CPU facts, derived peaks, measured DRAM bandwidth, GPU."""
    try:
        spec, facts, gpu = detect_local(), describe_local(), detect_gpu()
    except HardwareError as exc:
        _fail(exc)
    gpu_info = gpu.to_dict() if gpu is not None else None
    if json_out:
        payload = {"facts": facts, "spec": spec.model_dump(mode="json"), "gpu": gpu_info}
        typer.echo(json.dumps(payload, indent=2))
        return
    console = _console()
    caches = ", ".join(
        f"L{c['level']} {c['instances']} x {binary_bytes(c['size_bytes'])}" for c in facts["caches"]
    )
    rows = [
        ("cpu", f"{facts['model_name']} ({facts['vendor']}, {facts['arch']})"),
        ("cores", f"{facts['physical_cores']} physical, {facts['logical_cores']} logical, "
                  f"{facts['usable_cpus']} usable; {facts['cores_used']} used for peaks"),
        ("frequency", f"{si(facts['freq_hz'], 'Hz')} ({facts['freq_source']})"),
        ("isa", " ".join(facts["isa"]) or "-"),
        ("caches", caches or "-"),
        ("ram", si(facts["total_ram_bytes"], "B")),
        ("dram bandwidth", f"{si(facts['dram_bandwidth_bytes_per_s'], 'B/s')} (measured copy)"),
        ("gpu", "none visible to torch" if gpu_info is None
         else f"{gpu_info['name']}: {si(gpu_info['memory_bytes'], 'B')}, "
              f"{gpu_info['multiprocessors']} SMs, catalog match: {gpu_info['catalog_match']}"),
    ]  # fmt: skip
    console.print(_table("this machine", ("fact", "value"), rows))
    peaks = [(k, si(f.dense, _rate(k)), f.note or "") for k, f in spec.compute.items()]
    console.print(_table("derived peaks", ("dtype", "dense", "derivation"), peaks))


@app.command("profiles")
def profiles_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measured GPU kernel profiles (per GPU and serving engine) that --engine can use."""
    from perfcast.estimate.gpu_profile import (
        find_profile,
        profiles_in,
        shipped_profiles,
        user_profile_dir,
    )

    user = set(profiles_in(user_profile_dir()))
    rows = []
    for gpu, engine in sorted(set(shipped_profiles()) | user):
        profile = find_profile(gpu, engine)
        if profile is None:
            continue
        versions = sorted({v for t, v in profile.versions.items() if "nccl" not in v})
        rows.append({"gpu": gpu, "engine": engine, "fits": len(profile.fits),
                     "measured_with": ", ".join(versions),
                     "where": "user" if (gpu, engine) in user else "packaged"})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _console().print(_table("Measured GPU kernel profiles (use with --engine)",
                            ["gpu", "engine", "fits", "measured with", "where"],
                            [[r["gpu"], r["engine"], str(r["fits"]), r["measured_with"],
                              r["where"]] for r in rows]))
