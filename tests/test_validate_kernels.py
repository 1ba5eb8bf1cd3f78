"""Per-kernel ground truth: eager aten ops measured on this CPU vs estimated eager kernels."""

from __future__ import annotations

import json
import re

import pytest
import torch
import typer
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

from perfcast.cli.validate_kernels import kernels
from perfcast.estimate.analyze import estimate_prepared, prepare
from perfcast.passes import get_target
from perfcast.validate.kernels import KernelReport, measure_kernels, normalize

FACTORY = """
import torch
from torch import nn

def tiny(batch=1):
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    return model, (torch.randn(batch, 32),)
"""


class Block(nn.Module):
    """A pre-norm transformer block: causal self-attention and a GELU MLP."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


def _report(model: nn.Module, inputs: tuple) -> KernelReport:
    torch.manual_seed(0)
    prepared = prepare(model, inputs)
    estimate = estimate_prepared(prepared, "local", target="eager")
    return measure_kernels(model, inputs, estimate=estimate, iterations=3, warmup=1,
                           graph=prepared.graph_for(get_target("eager")))


@pytest.fixture(scope="module", params=["mlp", "block"])
def report(request) -> KernelReport:
    torch.manual_seed(0)
    if request.param == "mlp":
        model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 128))
        return _report(model, (torch.randn(8, 256),))
    return _report(Block(), (torch.randn(2, 16, 64),))


def test_most_kernels_match_their_measured_op(report: KernelReport):
    assert report.match_rate >= 0.9
    for m in report.matched:
        assert len(m.measured_ops) == 1
        assert normalize(m.op) == normalize(m.measured_ops[0]), m
        assert m.measured_s is not None and m.measured_s > 0


def test_measured_times_are_consistent(report: KernelReport):
    assert report.measured_total_s > 0
    assert report.threads == torch.get_num_threads()
    matched = sum(m.measured_s or 0.0 for m in report.matched)
    assert 0 < matched <= report.measured_total_s * 1.2
    assert all(v > 0 for v in report.unmatched_measured.values())


def test_block_aligns_attention_and_norms():
    report = _report(Block(), (torch.randn(2, 16, 64),))
    ops = {m.op: m.measured_ops for m in report.matched}
    assert ops["scaled_dot_product_attention"] == ("aten::scaled_dot_product_attention",)
    assert ops["layer_norm"] == ("aten::layer_norm",)
    assert report.batch == 2
    assert "aten::view" in report.unmatched_measured  # views ran, but have no kernel


def test_by_category_sums_the_matches(report: KernelReport):
    table = report.by_category()
    assert set(table) == {m.category for m in report.matched}
    for cat, row in table.items():
        rows = [m for m in report.matched if m.category == cat]
        predicted = sum(m.predicted_s for m in rows)
        measured = sum(m.measured_s or 0.0 for m in rows)
        assert row["predicted_s"] == predicted
        assert row["measured_s"] == measured
        assert row["kernels"] == len(rows)
        assert row["ape"] == abs(predicted - measured) / measured
    text = report.to_markdown(top=3)
    assert "| category |" in text and len(re.findall(r"^\| k\d+:", text, re.M)) == 3


def test_normalize_folds_eager_and_export_spellings():
    assert normalize("aten::addmm") == normalize("linear") == "linear"
    assert normalize("aten::native_layer_norm") == normalize("layer_norm")
    assert normalize("aten::_scaled_dot_product_flash_attention_for_cpu") == normalize(
        "scaled_dot_product_attention")
    assert normalize("aten::relu_") == "relu"


def test_rejects_a_fused_estimate():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    inputs = (torch.randn(2, 8),)
    estimate = estimate_prepared(prepare(model, inputs), "local", target="compile")
    with pytest.raises(ValueError, match="eager"):
        measure_kernels(model, inputs, estimate=estimate)


# -- CLI ---------------------------------------------------------------------------------

app = typer.Typer()
app.command("kernels")(kernels)


@app.callback()
def _validate() -> None:
    """Stands in for ``perfcast validate``."""


runner = CliRunner()


def test_cli_json_schema(tmp_path):
    factory = tmp_path / "tiny.py"
    factory.write_text(FACTORY)
    result = runner.invoke(app, ["kernels", f"{factory}:tiny", "--batch", "2", "--threads", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"schema_version", "model", "threads", "batch", "measured_total_s",
                         "kernels", "matched", "match_rate", "by_category", "matches",
                         "unmatched_measured"}
    assert data["threads"] == 1 and data["batch"] == 2 and data["kernels"] == 3
    assert set(data["matches"][0]) == {"kernel", "op", "category", "module", "predicted_s",
                                       "measured_s", "measured_ops"}
    assert set(data["by_category"]["gemm"]) == {"predicted_s", "measured_s", "ape", "kernels"}


def test_cli_table(tmp_path):
    factory = tmp_path / "tiny.py"
    factory.write_text(FACTORY)
    result = runner.invoke(app, ["kernels", f"{factory}:tiny", "--top", "2"])
    assert result.exit_code == 0, result.output
    assert "worst 2 kernels" in result.output and "per category" in result.output


@pytest.mark.parametrize(("target", "message"), [
    ("missing.py:factory", "does not exist"),
    ("examples:no-such-model", "no-such-model"),
    ("not-a-target", "is not of the form"),
])
def test_cli_bad_target_exits_2(target: str, message: str):
    result = runner.invoke(app, ["kernels", target])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
