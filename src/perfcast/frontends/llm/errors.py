"""Errors of the LLM model catalog and config loading; all are ``ValueError`` subclasses."""

from __future__ import annotations

from collections.abc import Sequence


class ModelConfigError(ValueError):
    """A model config (catalog YAML or Hugging Face config.json) that cannot be used."""


class UnknownModelError(ModelConfigError):
    """A model name that is neither in the catalog nor a readable config.json path."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = f"did you mean {', '.join(self.suggestions)}? " if self.suggestions else ""
        shown = name if len(name) <= 100 else f"{name[:60]}...({len(name)} characters)"
        super().__init__(
            f"unknown model {shown!r}: {hint}(perfcast llm models lists the catalog; "
            "a path to a Hugging Face config.json also works)"
        )
