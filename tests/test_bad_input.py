"""Bad input gets a clear, specific error: never a deep traceback, never silent zeros."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfcast.estimate.analyze import estimate_prepared, prepare
from perfcast.estimate.efficiency import Confidence
from perfcast.frontends import CaptureError, TargetError, load_target
from perfcast.hardware import UnknownHardwareError, load_spec

FACTORIES = Path(__file__).parent / "data" / "factories.py"


def test_unknown_hardware_suggests_closest_names():
    with pytest.raises(UnknownHardwareError, match="did you mean h100-sxm"):
        load_spec("h100-sxn")


def test_factory_that_raises_is_summarized():
    with pytest.raises(TargetError) as info:
        load_target(f"{FACTORIES}:broken_factory")
    msg = str(info.value)
    assert "broken_factory() failed" in msg and "ckpt.bin" in msg
    assert "Traceback" not in msg and len(msg.splitlines()) <= 8


def test_factory_must_return_a_pair():
    with pytest.raises(TargetError, match=r"must return \(model, example_inputs\), got Linear"):
        load_target(f"{FACTORIES}:not_a_pair")


@pytest.mark.parametrize(("target", "message"), [
    ("nowhere.py:f", "does not exist"),
    (f"{FACTORIES}:missing", "has no callable 'missing'"),
    ("resnet", "not of the form"),
    ("examples:gtp2", "did you mean gpt2"),
])
def test_malformed_targets(target, message):
    with pytest.raises(TargetError, match=message):
        load_target(target)


def test_model_that_fails_to_export_is_summarized():
    loaded = load_target(f"{FACTORIES}:fails_export")
    with pytest.raises(CaptureError) as info:
        prepare(loaded.model, loaded.example_inputs)
    msg = str(info.value)
    assert msg.startswith("torch.export failed for _DataDependent")
    assert len(msg) < 1200 and "Traceback" not in msg


def test_unsupported_ops_are_listed_and_lower_confidence():
    loaded = load_target(f"{FACTORIES}:with_custom_op")
    est = estimate_prepared(prepare(loaded.model, loaded.example_inputs), "h100-sxm")
    assert est.unsupported_ops == {"mystery": 2}
    assert est.confidence is Confidence.PARTIAL
    assert any("unknown to the registry" in n for n in est.notes)
    mystery = [k for k in est.kernels if not k.kernel.supported]
    assert len(mystery) == 2
    # never counted as zero time: each moves its input and output, 2*32 fp32 each way
    assert all(k.kernel.bytes == 2 * 2 * 32 * 4 and k.time_s > 0 for k in mystery)


@pytest.mark.parametrize("name", ["a" * 300, "x" * 5000])
def test_overlong_names_are_unknown_not_os_errors(name):
    """A name longer than any file name once reached the file system (OSError)."""
    from perfcast.frontends.llm.catalog import load_model
    from perfcast.frontends.llm.errors import ModelConfigError

    with pytest.raises(UnknownHardwareError, match="unknown hardware"):
        load_spec(name)
    with pytest.raises(ModelConfigError, match="unknown model"):
        load_model(name)
