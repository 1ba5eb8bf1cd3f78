"""The model zoo: published architectures captured, counted, estimated and run.

Every zoo model is checked once per session (about 100 s on 2 cores); the tests then
assert the issue's bars per model and that docs/models.md is the table this code makes.
The published-size build of each model is a slow check.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from perfcast.validate.coverage import DEVICES, check_zoo
from perfcast.validate.coverage_report import coverage_markdown
from perfcast.zoo import ZooError, build, get_entry, zoo_entries

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"
ENTRIES = list(zoo_entries())
NAMES = [e.name for e in ENTRIES]
# ops a zoo model brings that the registry does not define, each with the reason
KNOWN_UNKNOWN = {
    "tflite-cnn-float32": {"tflite.LOCAL_RESPONSE_NORMALIZATION": 1},  # left unmapped on purpose
}


@pytest.fixture(scope="module")
def rows():
    return {r.name: r for r in check_zoo(ENTRIES)}


def test_zoo_spans_the_libraries_users_bring():
    count = Counter(e.library for e in ENTRIES)
    assert len(ENTRIES) >= 60
    assert count["transformers"] >= 35 and count["torchvision"] >= 15
    assert count["timm"] >= 5 and count["diffusers"] >= 1 and count["tflite"] >= 3
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_model_is_captured_counted_and_estimated(rows, name):
    row = rows[name]
    assert row.captured, row.reason
    assert row.params == row.params_reference > 0
    assert set(row.times_s) == set(DEVICES) and all(t > 0 for t in row.times_s.values())
    assert row.unknown == KNOWN_UNKNOWN.get(name, {})
    if row.library != "tflite":
        assert row.flops_ok, f"{row.flops} vs reference {row.flops_reference}: {row.reason}"
    assert not row.runtime.startswith("differs"), row.runtime


def test_runtime_matches_eager_on_the_transformer_models_it_supports(rows):
    equal = {n for n, r in rows.items() if r.runtime == "equal"}
    assert {"gpt2", "gpt-neox", "llama", "phi", "qwen3", "bert"} <= equal


def test_coverage_table_is_up_to_date(rows):
    page = coverage_markdown([rows[n] for n in NAMES])
    assert DOC.read_text() == page, ("docs/models.md is out of date: run "
                                     "`perfcast validate zoo --write docs/models.md`")


def test_unknown_zoo_name_suggests():
    with pytest.raises(ZooError, match="did you mean resnet50"):
        get_entry("resnet-50")


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in ENTRIES if e.library != "tflite"])
def test_published_size_on_meta(name):
    """The published configuration builds on the meta device and captures, params exact."""
    from perfcast.frontends.torch_export import capture

    model, inputs = build(get_entry(name), "published", seq_len=128)
    cap = capture(model, inputs)
    assert cap.params == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert dict(cap.graph.unsupported()) == {}
