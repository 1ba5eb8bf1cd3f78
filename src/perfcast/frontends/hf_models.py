"""Hugging Face models from a config alone: the model class and example inputs it takes.

``perfcast analyze path/to/config.json`` and the model zoo both use this. The model is
built with random weights (on the meta device by default, so a 70B config costs no
memory); the class comes from the config's ``architectures`` when it names one, else
from the ``transformers`` auto class for its ``model_type``. Example inputs follow the
model's ``main_input_name`` and forward signature: token ids (and a decoder prompt for
encoder-decoders), pixel values, log-mel features or raw audio.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from perfcast.frontends.errors import CaptureError

DECODER_LEN = 4  # decoder prompt length for encoder-decoder models


def load_config(source: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None):
    """A ``transformers`` config from a config.json path or a dict with ``model_type``."""
    from perfcast.compat.torchvision_cpu import ensure_importable

    ensure_importable()
    import transformers

    if isinstance(source, dict):
        data = dict(source)
        where = "config"
    else:
        where = str(source)
        try:
            data = json.loads(Path(source).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CaptureError(f"cannot read Hugging Face config {where}: "
                               f"{type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise CaptureError(f"{where}: not a Hugging Face config (needs a 'model_type' string)")
    model_type = data.pop("model_type")
    data.update(overrides or {})
    try:
        return transformers.AutoConfig.for_model(model_type, **data)
    except ValueError:
        import difflib

        known = list(transformers.CONFIG_MAPPING.keys())
        close = difflib.get_close_matches(model_type, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CaptureError(f"{where}: model_type {model_type!r} is not an architecture "
                           f"transformers {transformers.__version__} knows{hint}") from None


def model_class(config, auto: str | None = None):
    """The class to build: ``config.architectures[0]``, else ``auto`` (an Auto* name)."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    auto_cls = getattr(transformers, auto or "AutoModel")
    try:
        found = auto_cls._model_mapping[type(config)]
    except KeyError:
        raise CaptureError(f"{auto or 'AutoModel'} has no model for config "
                           f"{type(config).__name__}") from None
    return found[0] if isinstance(found, tuple) else found


def build_hf_model(config, *, auto: str | None = None, batch: int = 1, seq_len: int = 128,
                   device: str = "meta", attn_implementation: str | None = None
                   ) -> tuple[Any, dict[str, Any]]:
    """``(model, example_inputs)`` with random weights on ``device``; inputs as kwargs."""
    import torch

    cls = model_class(config, auto)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    try:
        with torch.device(device):
            model = cls(config)
    except Exception as exc:  # the model's own constructor: any error becomes one line
        first = (str(exc).splitlines() or [repr(exc)])[0][:200]
        raise CaptureError(f"building {cls.__name__} from its config failed: "
                           f"{type(exc).__name__}: {first}") from None
    return model.eval(), example_inputs(model, batch=batch, seq_len=seq_len, device=device)


def example_inputs(model, *, batch: int, seq_len: int, device: str) -> dict[str, Any]:
    """Keyword inputs for ``model``'s forward from its config and main input."""
    import torch

    cfg = model.config
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    inputs: dict[str, Any] = {}
    text_cfg = getattr(cfg, "text_config", None) or cfg
    vision_cfg = getattr(cfg, "vision_config", None) or cfg

    def ids(length: int) -> torch.Tensor:
        return torch.zeros((batch, length), dtype=torch.long, device=device)

    if main == "input_ids" or ("input_ids" in params and main not in (
            "pixel_values", "input_features", "input_values")):
        length = min(seq_len, _max_positions(text_cfg) or seq_len)
        inputs["input_ids"] = ids(length)
        if "attention_mask" in params:
            inputs["attention_mask"] = torch.ones((batch, length), dtype=torch.long,
                                                  device=device)
    if main == "pixel_values" or ("pixel_values" in params and "input_ids" in inputs):
        size = _pair(getattr(vision_cfg, "image_size", 224))
        chans = getattr(vision_cfg, "num_channels", 3)
        inputs["pixel_values"] = torch.zeros((batch, chans, *size), device=device)
    if main == "input_features":
        frames = 2 * getattr(cfg, "max_source_positions", 1500)
        inputs["input_features"] = torch.zeros((batch, cfg.num_mel_bins, frames), device=device)
    if main == "input_values":
        inputs["input_values"] = torch.zeros((batch, 16 * seq_len * 20), device=device)
    if getattr(cfg, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        inputs["decoder_input_ids"] = ids(DECODER_LEN)
    if not inputs:
        raise CaptureError(f"{type(model).__name__}: no example inputs for its main input "
                           f"{main!r}")
    return inputs


def _max_positions(cfg) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_positions"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _pair(value) -> tuple[int, int]:
    if isinstance(value, list | tuple):
        return int(value[0]), int(value[1])
    return int(value), int(value)
