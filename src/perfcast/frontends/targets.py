"""Resolve a TARGET string to ``(model, example_inputs)``.

TARGET is ``examples:NAME`` (a built-in example) or ``path/to/file.py:factory``
where ``factory()`` returns ``(model, example_inputs)``; a factory that accepts
``batch`` receives the requested batch size.
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


def load_target(target: str, *, batch: int = 1, seq_len: int = 128,
                device: str = "meta") -> LoadedTarget:
    """Build the model named by ``target``; see the module docstring for the forms."""
    if target.startswith("examples:"):
        from perfcast.examples import UnknownExampleError, build_example

        name = target.split(":", 1)[1]
        try:
            model, inputs = build_example(name, batch=batch, seq_len=seq_len, device=device)
        except UnknownExampleError as exc:
            raise TargetError(str(exc)) from None
        return LoadedTarget(name, model, inputs)
    path_text, sep, factory_name = target.rpartition(":")
    if not sep or not path_text.endswith(".py") or not factory_name.isidentifier():
        raise TargetError(f"target {target!r} is not of the form examples:NAME or "
                          "path/to/file.py:factory")
    return _call_factory(Path(path_text), factory_name, batch)


def _call_factory(path: Path, factory_name: str, batch: int) -> LoadedTarget:
    if not path.is_file():
        raise TargetError(f"target file {str(path)!r} does not exist")
    try:
        module = import_file(path, f"perfcast_target_{path.stem}")
    except Exception as exc:  # user code: any error becomes one short message
        raise TargetError(f"importing {path} failed: {summarize_exception(exc)}") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise TargetError(f"{path} has no callable {factory_name!r} "
                          f"(callables found: {', '.join(sorted(found)[:10]) or 'none'})")
    kwargs = {"batch": batch} if "batch" in inspect.signature(factory).parameters else {}
    try:
        result = factory(**kwargs)
    except Exception as exc:  # user code
        raise TargetError(f"factory {path.name}:{factory_name}() failed: "
                          f"{summarize_exception(exc)}") from exc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TargetError(f"factory {path.name}:{factory_name}() must return "
                          f"(model, example_inputs), got {type(result).__name__}")
    return LoadedTarget(f"{path.stem}:{factory_name}", result[0], result[1])
