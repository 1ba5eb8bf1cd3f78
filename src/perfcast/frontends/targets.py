"""Resolve a TARGET string to ``(model, example_inputs)``.

TARGET is ``examples:NAME`` (a built-in example), ``zoo:NAME`` (a model-zoo entry at
its published size), ``path/to/config.json`` (a Hugging Face config: the model is built
from it with random weights) or ``path/to/file.py:factory`` where ``factory()`` returns
``(model, example_inputs)``. A factory receives ``batch`` and ``seq_len`` only when they
are given and it accepts them, so its own defaults hold otherwise.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfcast.frontends.errors import CaptureError, summarize_exception
from perfcast.pyfile import import_file


class TargetError(CaptureError):
    """The target string is malformed, or its factory failed."""


@dataclass(frozen=True)
class LoadedTarget:
    name: str
    model: Any
    example_inputs: Any


DEFAULT_BATCH = 1
DEFAULT_SEQ_LEN = 128


def load_target(target: str, *, batch: int | None = None, seq_len: int | None = None,
                device: str = "meta") -> LoadedTarget:
    """Build the model named by ``target``; see the module docstring for the forms.

    ``batch``/``seq_len`` of None mean the target's own defaults (a factory's), else
    1 and 128.
    """
    if target.startswith("zoo:"):
        return _zoo_target(target.split(":", 1)[1], batch, seq_len, device)
    if target.endswith(".json"):
        return _config_target(Path(target), batch, seq_len, device)
    if target.startswith("examples:"):
        from perfcast.examples import UnknownExampleError, build_example

        name = target.split(":", 1)[1]
        try:
            model, inputs = build_example(name, batch=batch or DEFAULT_BATCH,
                                          seq_len=seq_len or DEFAULT_SEQ_LEN, device=device)
        except UnknownExampleError as exc:
            raise TargetError(str(exc)) from None
        return LoadedTarget(name, model, inputs)
    path_text, sep, factory_name = target.rpartition(":")
    if not sep or not path_text.endswith(".py") or not factory_name.isidentifier():
        raise TargetError(f"target {target!r} is not of the form examples:NAME, zoo:NAME, "
                          "path/to/config.json, path/to/model.tflite or "
                          "path/to/file.py:factory")
    return _call_factory(Path(path_text), factory_name, batch, seq_len)


def _zoo_target(name: str, batch: int | None, seq_len: int | None,
                device: str) -> LoadedTarget:
    from perfcast.zoo import ZooError, build, get_entry

    try:
        entry = get_entry(name)
        model, inputs = build(entry, "published", batch=batch or DEFAULT_BATCH,
                              seq_len=seq_len or DEFAULT_SEQ_LEN,
                              device=None if device == "meta" else device)
    except ZooError as exc:
        raise TargetError(str(exc)) from None
    return LoadedTarget(name, model, inputs)


def _config_target(path: Path, batch: int | None, seq_len: int | None,
                   device: str) -> LoadedTarget:
    from perfcast.frontends.hf_models import build_hf_model, load_config

    if not path.is_file():
        raise TargetError(f"config file {str(path)!r} does not exist")
    config = load_config(path)
    model, inputs = build_hf_model(config, batch=batch or DEFAULT_BATCH,
                                   seq_len=seq_len or DEFAULT_SEQ_LEN, device=device)
    return LoadedTarget(type(model).__name__, model, inputs)


def _call_factory(path: Path, factory_name: str, batch: int | None,
                  seq_len: int | None) -> LoadedTarget:
    if not path.is_file():
        raise TargetError(f"target file {str(path)!r} does not exist")
    from perfcast.compat.torchvision_cpu import ensure_importable

    ensure_importable()  # the user's file may import transformers or torchvision
    try:
        module = import_file(path, f"perfcast_target_{path.stem}")
    except Exception as exc:  # user code: any error becomes one short message
        raise TargetError(f"importing {path} failed: {summarize_exception(exc)}") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise TargetError(f"{path} has no callable {factory_name!r} "
                          f"(callables found: {', '.join(sorted(found)[:10]) or 'none'})")
    accepted = inspect.signature(factory).parameters
    given = {"batch": batch, "seq_len": seq_len}
    kwargs = {k: v for k, v in given.items() if v is not None and k in accepted}
    try:
        result = factory(**kwargs)
    except Exception as exc:  # user code
        raise TargetError(f"factory {path.name}:{factory_name}() failed: "
                          f"{summarize_exception(exc)}") from exc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TargetError(f"factory {path.name}:{factory_name}() must return "
                          f"(model, example_inputs), got {type(result).__name__}")
    return LoadedTarget(f"{path.stem}:{factory_name}", result[0], result[1])
