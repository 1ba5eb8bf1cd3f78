"""The bundled LLM model catalog (``models/*.yaml``): lookup, listing, suggestions."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from perfcast.frontends.llm.config import ModelConfig
from perfcast.frontends.llm.errors import ModelConfigError, UnknownModelError
from perfcast.frontends.llm.hf import load_hf_config

MODELS_DIR = Path(__file__).with_name("models")


def model_names() -> list[str]:
    """Sorted names of all catalog models (the YAML file stems)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


@cache
def _load_catalog_model(name: str) -> ModelConfig:
    path = MODELS_DIR / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        model = ModelConfig.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ModelConfigError(f"invalid catalog model {path}: {exc}") from None
    if model.name != name:
        raise ModelConfigError(f"{path}: name {model.name!r} must equal the file stem")
    return model


def list_models() -> list[ModelConfig]:
    """All catalog models, sorted by name."""
    return [_load_catalog_model(n) for n in model_names()]


def _key(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")


@cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for model in list_models():
        for alias in (model.name, model.display_name, *model.aliases):
            index.setdefault(_key(alias), model.name)
            index.setdefault(_key(alias.rsplit("/", 1)[-1]), model.name)
    return index


def _exists(path: Path) -> bool:
    """Whether ``path`` is a file or folder; False for text no file system takes as a
    path (too long a name, a NUL byte)."""
    try:
        return path.is_dir() or path.is_file()
    except (OSError, ValueError):
        return False


def load_model(name_or_path: str | Path) -> ModelConfig:
    """A catalog model by name or alias (case-insensitive), or a config.json path."""
    text = str(name_or_path)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "~user" of no user: not a path, so maybe a name
        path = Path(text)
    if text.endswith(".json") or _exists(path):
        return load_hf_config(path)
    found = _alias_index().get(_key(text))
    if found is None:
        close = difflib.get_close_matches(_key(text), list(_alias_index()), n=5, cutoff=0.5)
        names = list(dict.fromkeys(_alias_index()[c] for c in close))[:3]
        raise UnknownModelError(text, names)
    return _load_catalog_model(found)
