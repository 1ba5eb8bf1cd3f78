"""The model zoo: published architectures as data, built from their public definitions.

``models.yaml`` lists each model's library, its builder or config type, a small
configuration for the default test run and the published one. Models are built with
random weights: a small model on the CPU (so its outputs can be checked), a published
one on the meta device (shapes only). See :mod:`perfcast.validate.zoo_coverage` for the
coverage table built over the zoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

Size = Literal["small", "published"]
LIBRARIES = ("transformers", "torchvision", "timm", "diffusers", "tflite")
TASKS = {
    "causal-lm": "AutoModelForCausalLM",
    "encoder": "AutoModel",
    "seq2seq": "AutoModelForSeq2SeqLM",
    "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
    "image-classification": "AutoModelForImageClassification",
    "multimodal": "AutoModel",
}
TFLITE_DIR = Path(__file__).resolve().parent / "tflite"  # .tflite files (see its README)
UNET_TEXT_TOKENS = {"small": 8, "published": 77}  # CLIP text length SD conditions on


class ZooError(ValueError):
    """A zoo entry is malformed or names something that does not exist."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo (see ``models.yaml`` for the fields)."""

    name: str
    library: str
    family: str
    builder: str = ""  # torchvision/timm model name, diffusers class, or model_type
    task: str = ""
    small: dict[str, Any] = field(default_factory=dict)
    published_config: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    device: str = "meta"  # where a published-size model can be built
    file: str = ""


@cache
def zoo_entries() -> tuple[ZooEntry, ...]:
    """Every entry of ``models.yaml``, validated."""
    data = yaml.safe_load(resources.files(__package__).joinpath("models.yaml").read_text())
    return tuple(_entry(name, raw) for name, raw in data["models"].items())


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; raises :class:`ZooError` listing close names."""
    for entry in zoo_entries():
        if entry.name == name:
            return entry
    import difflib

    names = [e.name for e in zoo_entries()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ZooError(f"no zoo model {name!r}{hint}; `perfcast validate zoo --list` lists them")


def _entry(name: str, raw: dict[str, Any]) -> ZooEntry:
    library = raw.get("library")
    if library not in LIBRARIES:
        raise ZooError(f"zoo model {name!r}: library must be one of {', '.join(LIBRARIES)}, "
                       f"got {library!r}")
    task = raw.get("task", "")
    if library == "transformers" and task not in TASKS:
        raise ZooError(f"zoo model {name!r}: task must be one of {', '.join(TASKS)}")
    published = raw.get("published") or {}
    builder = raw.get("model_type") or raw.get("builder") or ""
    if not builder and library != "tflite":
        raise ZooError(f"zoo model {name!r}: needs 'model_type' or 'builder'")
    return ZooEntry(name, library, str(raw.get("family", "")), builder, task,
                    dict(raw.get("small") or {}), dict(published.get("config") or {}),
                    str(published.get("reference", "")), str(raw.get("device", "meta")),
                    str(raw.get("file", "")))


def build(entry: ZooEntry, size: Size = "small", *, batch: int = 1, seq_len: int = 16,
          device: str | None = None) -> tuple[Any, Any]:
    """``(model, example_inputs)`` for ``entry``; small on the CPU, published on meta."""
    from perfcast.compat.torchvision_cpu import ensure_importable

    ensure_importable()
    if entry.library == "tflite":
        raise ZooError(f"zoo model {entry.name!r} is a .tflite file; import it with "
                       "perfcast.frontends.tflite_import")
    where = device or ("cpu" if size == "small" else entry.device)
    if entry.library == "transformers":
        from perfcast.frontends.hf_models import build_hf_model, load_config

        overrides = entry.small if size == "small" else entry.published_config
        config = load_config({"model_type": entry.builder}, overrides)
        return build_hf_model(config, auto=TASKS[entry.task], batch=batch, seq_len=seq_len,
                              device=where)
    if entry.library == "diffusers":
        return _build_unet(entry, size, batch, where)
    return _build_vision(entry, size, batch, where)


def _build_vision(entry: ZooEntry, size: Size, batch: int, device: str) -> tuple[Any, tuple]:
    import torch

    side = int(entry.small.get("image_size", 224)) if size == "small" else 224
    with torch.device(device):
        if entry.library == "torchvision":
            import torchvision

            model = torchvision.models.get_model(entry.builder)
        else:
            import timm

            model = timm.create_model(entry.builder, pretrained=False)
        x = torch.zeros(batch, 3, side, side) if device == "meta" else torch.randn(
            batch, 3, side, side)
    return model.eval(), (x,)


def _build_unet(entry: ZooEntry, size: Size, batch: int, device: str) -> tuple[Any, dict]:
    import diffusers
    import torch

    cls = getattr(diffusers, entry.builder)
    config = dict(entry.small) if size == "small" else dict(entry.published_config)
    with torch.device(device):
        model = cls(**config)
        cfg = model.config
        side = int(cfg.sample_size)
        make = torch.zeros if device == "meta" else torch.randn
        inputs = {
            "sample": make(batch, cfg.in_channels, side, side),
            "timestep": torch.tensor(10),
            "encoder_hidden_states": make(batch, UNET_TEXT_TOKENS[size],
                                          cfg.cross_attention_dim),
        }
    return model.eval(), inputs
