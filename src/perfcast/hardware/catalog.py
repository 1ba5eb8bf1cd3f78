"""The bundled hardware catalog: lookup by name or alias, listing, and suggestions."""

from __future__ import annotations

from difflib import SequenceMatcher
from functools import cache, lru_cache
from pathlib import Path

from perfcast.hardware.errors import UnknownHardwareError
from perfcast.hardware.loader import load_spec_file
from perfcast.hardware.spec import HardwareSpec

CATALOG_DIR = Path(__file__).with_name("catalog")
LOCAL_NAMES = frozenset({"local", "this"})
# Characters people (and OCR) confuse in part numbers: "h1OO" -> "h100".
_CONFUSABLES = str.maketrans({"o": "0", "l": "1", "i": "1"})


def catalog_names() -> list[str]:
    """Sorted names of all bundled specs (the YAML file stems)."""
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


@cache
def _load_catalog_spec(name: str) -> HardwareSpec:
    return load_spec_file(CATALOG_DIR / f"{name}.yaml")


def list_specs() -> list[HardwareSpec]:
    """All bundled specs, sorted by name."""
    return [_load_catalog_spec(n) for n in catalog_names()]


def _key(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", "-").split())


@lru_cache(maxsize=1)
def alias_index() -> dict[str, str]:
    """Lower-cased names, aliases and display names mapped to canonical catalog names."""
    index: dict[str, str] = {}
    for spec in list_specs():
        for key in (spec.name, spec.display_name, *spec.aliases):
            index.setdefault(_key(key), spec.name)
    return index


def resolve_name(name: str) -> str | None:
    """Canonical catalog name for a name or alias (case-insensitive), or None."""
    key = _key(name)
    if key in catalog_names():  # a listing, not a file probe: any text is a safe name
        return key
    return alias_index().get(key)


def _shared_prefix(a: str, b: str) -> int:
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def suggest(name: str, limit: int = 3) -> list[str]:
    """Closest catalog names to ``name``: fuzzy ratio, shared prefix, confusable digits."""
    query = _key(name)
    variants = {query, query.translate(_CONFUSABLES)} - {""}
    scores: dict[str, float] = {}
    for key, canon in alias_index().items():
        for v in variants:
            shared = _shared_prefix(v, key) / len(v)
            score = max(SequenceMatcher(None, v, key).ratio(), 0.5 + 0.45 * shared)
            scores[canon] = max(scores.get(canon, 0.0), score)
    ranked = sorted(scores, key=lambda n: (-scores[n], n))
    close = [n for n in ranked if scores[n] >= 0.6][:limit]
    return close or ranked[:limit]


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def load_spec(name_or_path: str | Path) -> HardwareSpec:
    """A spec from a catalog name/alias, a YAML path, or ``local``/``this`` (this machine)."""
    if isinstance(name_or_path, Path):
        return load_spec_file(name_or_path)
    if _key(name_or_path) in LOCAL_NAMES:
        from perfcast.hardware.detect import detect_local

        return detect_local()
    if _looks_like_path(name_or_path):
        return load_spec_file(name_or_path)
    canon = resolve_name(name_or_path)
    if canon is None:
        raise UnknownHardwareError(name_or_path, suggest(name_or_path), len(catalog_names()))
    return _load_catalog_spec(canon)
