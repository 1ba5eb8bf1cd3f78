"""One clear line for a model torch.export cannot capture: where, why, and what to do.

torch.export reports failures from deep inside its tracer. This module finds the user's
module that was running (the innermost traceback frame whose ``self`` is a submodule of
the model), classifies the cause by the exception's type and text, and adds a hint.
"""

from __future__ import annotations

from typing import Any

# (cause, markers in the exception's type name or text, hint)
_CAUSES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("data-dependent control flow",
     ("GuardOnDataDependentSymNode", "data-dependent", "Data dependent", "data dependent"),
     "branch on shapes, not tensor values, or use torch.cond / torch._check"),
    ("unsupported output type",
     ("in output, which is not a known type", "register a pytree"),
     "return tensors, or tuples/dicts of tensors"),
    ("unsupported input type",
     ("is not a known type", "pytree", "Unsupported input type"),
     "pass tensors, or tuples/dicts of tensors, as example inputs"),
    ("a Python op torch.export cannot trace",
     ("Unsupported", "not supported", "UserError"),
     "check the model in eager mode first; the op named above is the one to replace"),
)


def explain_export_failure(exc: BaseException, model: Any) -> str:
    """``torch.export failed for M at module 'a.b' (Cls.forward, file:line): cause: msg; hint``."""
    where = _failing_module(exc, model)
    text = f"{type(exc).__name__}: {exc}"
    cause, hint = "", ""
    for name, markers, advice in _CAUSES:
        if any(m in text for m in markers):
            cause, hint = name, advice
            break
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [repr(exc)]
    first = f"{type(exc).__name__}: {lines[0][:300]}"
    parts = [f"torch.export failed for {type(model).__name__}{where}: "]
    if cause:
        parts.append(f"{cause}: ")
    parts.append(first)
    if hint:
        parts.append(f" (hint: {hint})")
    return "".join(parts)


def _failing_module(exc: BaseException, model: Any) -> str:
    """`` at module 'path' (Class.method, file:line)`` for the innermost frame in the model."""
    try:
        names = {id(m): n for n, m in model.named_modules()}
    except AttributeError:
        return ""
    tb = exc.__traceback__
    hit = ""
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            code = frame.f_code
            path = names[id(owner)] or "<root>"
            hit = (f" at module {path!r} ({type(owner).__name__}.{code.co_name}, "
                   f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno})")
        tb = tb.tb_next
    return hit
