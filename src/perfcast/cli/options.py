"""Options several subcommands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from perfcast.app.security import TOKEN_ENV

BatchOption = Annotated[int | None, typer.Option(
    min=1, help="Batch size of the example inputs; default: a factory's own, else 1.")]
SeqLenOption = Annotated[int | None, typer.Option(
    "--seq-len", min=1, help="Sequence length of token inputs; default: a factory's own, "
                             "else 128.")]
TokenOption = Annotated[str | None, typer.Option(
    help=f"Access token every HTTP request must carry (Authorization: Bearer TOKEN); "
         f"default: ${TOKEN_ENV}.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]


EngineOption = Annotated[str, typer.Option(
    "--engine", help="Kernel times: 'fitted' (default: efficiencies fitted to published "
                     "end-to-end results) or a serving engine whose measured GPU kernel "
                     "profile times GEMMs, attention, MoE and collectives: trtllm, sglang, "
                     "vllm (GPUs with a profile: perfcast hw profiles).")]
MoeDistributionOption = Annotated[str, typer.Option(
    "--moe-distribution", help="With --engine: token distribution over experts: random "
                               "(default: independent uniform picks), or as measured: "
                               "balanced (even spread), power_law_1.01, power_law_1.2 "
                               "(skew).")]
