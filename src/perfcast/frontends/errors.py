"""Errors raised while turning a user's model into an IR graph."""

from __future__ import annotations


class CaptureError(RuntimeError):
    """The model could not be captured; the message says why in a few lines."""


def summarize_exception(exc: BaseException, max_lines: int = 6, max_chars: int = 600) -> str:
    """``Type: message`` trimmed to a few lines, without the traceback."""
    text = str(exc).strip() or repr(exc)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    short = "\n".join(lines[:max_lines])
    if len(short) > max_chars:
        short = short[: max_chars - 3] + "..."
    elif len(lines) > max_lines:
        short += f"\n  ... ({len(lines) - max_lines} more lines)"
    return f"{type(exc).__name__}: {short}"
